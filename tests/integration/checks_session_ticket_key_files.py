#!/usr/bin/env python3
"""--session-ticket-key files are checked before use: a key file readable by
group or others loads with a warning naming the file and its mode (never the
key); a 0600 file loads silently; a FIFO (or anything but a regular file) is
refused at once with a clear error instead of blocking the agent in open(2)
forever."""
import binascii
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import free_ports, http_listener, instance, run, scaled, server_group  # noqa: E402

WARNING = "readable by"


def key_leaked(err, key):
    return any(k in err for k in (binascii.hexlify(key).decode(), binascii.hexlify(key).decode().upper(),
                                  key.decode("latin-1")))


def body(env):
    c = env.check
    be = env.backend("a")
    (p_web,) = free_ports(1)
    env.write_manifests(instance(), server_group("web", [be.addr]), http_listener("web", p_web, "web"))

    key = os.urandom(80)
    for mode, warned in ((0o644, True), (0o640, True), (0o600, False), (0o400, False)):
        path = os.path.join(env.dir, f"ticket-{mode:o}.key")
        with open(path, "wb") as f:
            f.write(key)
        os.chmod(path, mode)
        a = env.start_albd(ports=[p_web], args=["--session-ticket-key", path])
        err = a.stderr()
        lines = [ln for ln in err.splitlines() if WARNING in ln]
        if warned:
            c.ok(len(lines) == 1 and path in lines[0] and f"{mode:04o}" in lines[0],
                 f"a {mode:04o} key file loads with a warning naming it and its mode",
                 f"one line with {path} and {mode:04o}", lines or err[-500:])
        else:
            c.eq(lines, [], f"a {mode:04o} key file loads without warning")
        c.ok(not key_leaked(err, key), f"{mode:04o}: the key is not in the log")
        a.check_clean_exit(c)

    fifo = os.path.join(env.dir, "ticket.fifo")
    os.mkfifo(fifo, 0o600)
    t0 = time.monotonic()
    a = env.start_albd(ports=[p_web], ready=False, args=["--session-ticket-key", fifo])
    try:
        a.proc.wait(timeout=scaled(5))
    except Exception:
        pass
    waited = time.monotonic() - t0
    rc = a.proc.poll()
    err = a.stderr()
    c.ok(rc == 1, "a FIFO as key file: albd exits 1", 1, f"{rc} after {waited:.1f} s")
    c.ok(rc is not None and waited < scaled(5), "... promptly", f"< {scaled(5)} s", f"{waited:.1f} s")
    c.ok(fifo in err and "not a regular file" in err, "... saying the file is not a regular file",
         f"{fifo}: not a regular file", err[-400:])
    a.stop()


if __name__ == "__main__":
    run("checks_session_ticket_key_files", body)
