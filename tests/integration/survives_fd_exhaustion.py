#!/usr/bin/env python3
"""albd under a low RLIMIT_NOFILE, flooded with more connections than it has
file descriptors: accept fails with EMFILE, yet albd does not crash or spin
(CPU stays low while the flood holds: it pauses accepting and tries again
every 100 ms, the extra connections waiting in the kernel's backlog), and
once the clients leave it serves again and is back to its own descriptors
(none leaked)."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (albd_binary, free_ports, http_listener, instance, run, scaled,  # noqa: E402
                          server_group)

LIMIT = 64
CLIENTS = 150


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def busy_seconds(pid):
    """Seconds the process's threads spent running or runnable (waiting
    for a CPU), summed: a spinning thread accrues about the wall time even
    on a loaded machine, where its CPU time alone may be small."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                run_ns, wait_ns = f.read().split()[:2]
            total += int(run_ns) + int(wait_ns)
        except (OSError, ValueError):
            pass
    return total / 1e9


def closed_by_peer(s):
    s.setblocking(False)
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def body(env):
    c = env.check
    be = env.backend("echo")
    (port,) = free_ports(1)
    env.write_manifests(instance(), server_group("web", [be.addr]), http_listener("web", port, "web"))
    # albd with RLIMIT_NOFILE = LIMIT: a wrapper sets it, then execs albd
    # (same PID, so the harness signals and waits for albd itself).
    wrapper = os.path.join(env.dir, "albd-nofile")
    with open(wrapper, "w") as f:
        f.write(f"#!/bin/sh\nulimit -n {LIMIT} || exit 111\nexec '{albd_binary()}' \"$@\"\n")
    os.chmod(wrapper, 0o755)
    real = os.environ.get("ALBD")
    os.environ["ALBD"] = wrapper
    try:
        albd = env.start_albd(ports=(port,))
    finally:
        if real is None:
            del os.environ["ALBD"]
        else:
            os.environ["ALBD"] = real
    with open(f"/proc/{albd.pid}/limits") as f:
        lim = [line for line in f if line.startswith("Max open files")]
    c.require(lim and lim[0].split()[3] == str(LIMIT), f"albd runs with RLIMIT_NOFILE {LIMIT}", LIMIT, lim)
    st, _, _ = env.http("GET", port, "/before")
    c.eq(st, 200, "before the flood: 200")
    time.sleep(0.2)
    base = fds(albd.pid)
    c.require(base < LIMIT - 10, "albd's own descriptors leave room for clients", f"< {LIMIT - 10}", base)

    socks, failed = [], 0
    for _ in range(CLIENTS):
        try:
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=scaled(2)))
        except OSError:
            failed += 1
    # albd takes what it can; the rest wait in the backlog (or, with an
    # accept that sheds, are closed at once).
    end = time.monotonic() + scaled(5)
    while time.monotonic() < end and fds(albd.pid) < LIMIT - 2:
        time.sleep(0.05)
    time.sleep(scaled(0.3))
    peak = fds(albd.pid)
    shed = sum(closed_by_peer(s) for s in socks) + failed
    print(f"  descriptors: {base} before, {peak} at the flood's peak (limit {LIMIT}); "
          f"{shed} of {CLIENTS} connections shed")
    emfile = "Too many open files" in albd.stderr()
    c.require(peak >= LIMIT - 2 and (shed > 0 or emfile),
              "the flood really exhausted albd's descriptors (EMFILE on accept)",
              f"~{LIMIT} descriptors and shed connections or albd's EMFILE warning",
              (peak, shed, emfile))
    busy0 = busy_seconds(albd.pid)
    time.sleep(2.0)
    used = busy_seconds(albd.pid) - busy0
    print(f"  albd running or runnable {used:.2f} s of the 2 s while out of descriptors")
    c.ok(used < 0.5, "albd does not spin while out of descriptors (running or runnable over 2 s)",
         "< 0.5 s", round(used, 2))
    c.ok(albd.alive(), "albd is still running")

    for s in socks:
        s.close()
    end = time.monotonic() + scaled(5)
    st = None
    while time.monotonic() < end:
        try:
            st = env.http("GET", port, "/after", timeout=scaled(2))[0]
            if st == 200:
                break
        except OSError:
            pass
        time.sleep(0.1)
    c.eq(st, 200, "once the clients leave, albd serves again")
    ok = sum(env.http("GET", port, f"/again{i}")[0] == 200 for i in range(20))
    c.eq(ok, 20, "... 20 of 20 further requests answer 200")
    c.eq(albd.admin_get("/healthz")[0], 200, "... and the admin endpoint answers")
    time.sleep(scaled(0.5))
    after = fds(albd.pid)
    c.ok(after <= base + 2, "albd's descriptors are back to where they were (none leaked)", f"<= {base + 2}", after)
    albd.check_clean_exit(c)


run("survives_fd_exhaustion", body)
