#!/usr/bin/env python3
"""The admin endpoint is bounded and answers only for this machine: a request
head that never ends is closed after the 5 s deadline; one larger than 8 KiB
gets 431; the 65th concurrent connection is refused at once (503) while
/healthz is served again as soon as a slot frees; HEAD answers with the GET's
headers (same Content-Length) and no body; a Host naming another machine
(DNS rebinding) gets 421 and nothing from /config, while IP literals,
localhost, a name given with --admin-host and a request without Host are
served. The probe address (--probe) serves /healthz and /readyz only — not
/config, /status or /metrics — and keeps answering while the admin endpoint
is full."""
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (albd_binary, free_port, free_ports, http_listener, instance, log, run,  # noqa: E402
                          scaled, server_group, wait_closed)

HEAD_DEADLINE = 5.0  # agent/admin.c HEAD_TIMEOUT_MS
MAX_CONNS = 64       # agent/admin.c MAX_CONNS


def exchange(port, raw, timeout=None):
    """Send raw bytes, read until the server closes: (status, {header: value}, body) or
    (None, {}, b"") when nothing came back."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout or scaled(5))
    try:
        s.sendall(raw)
        closed, _, data = wait_closed(s, timeout or scaled(5))
    finally:
        s.close()
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return None, {}, b""
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


def get(port, path, host=None, method="GET", version="1.1"):
    h = f"Host: {host}\r\n" if host is not None else ""
    return exchange(port, f"{method} {path} HTTP/{version}\r\n{h}\r\n".encode())


def hold(port, n):
    """n connections to port, each with half a request head sent, all
    accepted by the agent. The agent closes each one at its 5 s head
    deadline, so on a machine slow enough to take most of that for the n
    connects the episode is started again (a few times at most): a slot
    freed by the deadline would let connection n+1 in."""
    for _ in range(4):
        t0 = time.monotonic()
        socks = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            socks.append(s)
        accepted_all(port)
        if time.monotonic() - t0 < HEAD_DEADLINE / 2:
            return socks
        log(f"holding {n} connections took {time.monotonic() - t0:.1f} s; again")
        for s in socks:
            s.close()
        time.sleep(0.5)
    return socks


def accept_queue(port):
    """Connections waiting in the kernel's accept queue of the listening
    socket on 127.0.0.1:port (a LISTEN socket's rx_queue in /proc/net/tcp)."""
    with open("/proc/net/tcp") as fh:
        for ln in fh.readlines()[1:]:
            f = ln.split()
            if f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:
                return int(f[4].split(":")[1], 16)
    return 0


def accepted_all(port):
    """Waits until the agent has accepted every connection made so far (the
    accept queue is empty), then a little for their first reads; a loaded
    machine may take long, so no fixed sleep decides it."""
    end = time.monotonic() + scaled(10)
    while accept_queue(port) and time.monotonic() < end:
        time.sleep(0.02)
    time.sleep(scaled(0.2))


def healthz_ok(port, within):
    """Whether GET /healthz answers 200 on some try within `within` seconds."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            st, _, _ = get(port, "/healthz", host="127.0.0.1", )
            if st == 200:
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def body(env):
    c = env.check
    be = env.backend("a")
    (p_web,) = free_ports(1)
    env.write_manifests(instance(), server_group("web", [be.addr]), http_listener("web", p_web, "web"))
    albd = env.start_albd(ports=[p_web])
    ap = albd.admin_port
    me = f"127.0.0.1:{ap}"

    # HEAD: the GET's headers, no body.
    for path in ("/status", "/config", "/metrics", "/healthz"):
        gst, gh, gbody = get(ap, path, host=me)
        hst, hh, hbody = get(ap, path, host=me, method="HEAD")
        c.eq(hst, gst, f"HEAD {path} answers the GET's status")
        c.eq(hbody, b"", f"HEAD {path} has no body")
        if path != "/metrics":  # counters may move between the two requests
            c.ok(hh.get("content-length") == gh.get("content-length") == str(len(gbody)),
                 f"HEAD {path} has the GET's Content-Length", gh.get("content-length"), hh.get("content-length"))

    # Host: only this machine's names.
    for host in (me, "127.0.0.1", f"[::1]:{ap}", "[::1]", f"localhost:{ap}", "LOCALHOST"):
        st, _, _ = get(ap, "/status", host=host)
        c.eq(st, 200, f"Host: {host} is served")
    st, _, b = get(ap, "/healthz", version="1.0")
    c.eq(st, 200, "an HTTP/1.0 request without Host is served")
    for host in ("evil.example", f"evil.example:{ap}", "127.0.0.1.evil.example", "localhost.evil.example",
                 "[::1].evil.example", "127.0.0.1:99999", ""):
        st, _, b = get(ap, "/config", host=host)
        c.eq(st, 421, f"Host: {host!r} gets 421")
        c.ok(b"generation" not in b, f"Host: {host!r} gets nothing from /config", "no model", b[:200])
    st, _, _ = exchange(ap, f"GET /status HTTP/1.1\r\nHost: {me}\r\nHost: evil.example\r\n\r\n".encode())
    c.eq(st, 400, "two Host headers get 400")

    # Bounded request head.
    t0 = time.monotonic()
    st, _, _ = exchange(ap, b"GET /healthz HTTP/1.1\r\nX-Pad: " + b"a" * 9000)
    c.eq(st, 431, "a request head past 8 KiB gets 431")
    c.ok(time.monotonic() - t0 < scaled(2), "... at once", f"< {scaled(2)} s", time.monotonic() - t0)

    # Read deadline: half a request head is closed after 5 s.
    s = socket.create_connection(("127.0.0.1", ap), timeout=scaled(5))
    s.sendall(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    closed, waited, data = wait_closed(s, HEAD_DEADLINE + scaled(4))
    s.close()
    c.ok(closed and HEAD_DEADLINE - 0.5 <= waited, "a half-sent request is closed after the 5 s deadline",
         f"closed after {HEAD_DEADLINE} s", f"closed={closed} after {waited:.1f} s")
    c.eq(data, b"", "... without an answer")

    # Connection cap: the 65th is refused at once; a freed slot serves again.
    held = hold(ap, MAX_CONNS)
    try:
        t0 = time.monotonic()
        # The next connection is refused. On a loaded sanitizer build the
        # agent was once seen a slot short of the cap when connection 65
        # came, so up to 3 more may be needed; each is its own slot, so a
        # refusal among them still shows a cap of 64-68, and none at all
        # (no cap) fails.
        extra, seen = [], []
        for k in range(4):
            s = socket.create_connection(("127.0.0.1", ap), timeout=scaled(5))
            closed, waited, data = wait_closed(s, 1.0 if k < 3 else scaled(2))
            seen.append((closed, round(waited, 1), data[:40]))
            if closed and data.startswith(b"HTTP/1.1 503 "):
                s.close()
                break
            extra.append(s)
        held.extend(extra)
        c.ok(seen[-1][0] and seen[-1][2].startswith(b"HTTP/1.1 503 "),
             f"a connection past {MAX_CONNS} is answered 503 and closed at once",
             "503 then close", seen)
        if len(seen) > 1:
            log(f"  the refusal came at connection {MAX_CONNS + len(seen)}: {seen}")
        held.pop().close()
        held.pop().close()
        c.ok(healthz_ok(ap, scaled(2)), "once held connections close, /healthz is served again")
        c.ok(time.monotonic() - t0 < HEAD_DEADLINE, "... before the held ones' deadline",
             f"< {HEAD_DEADLINE} s", time.monotonic() - t0)
        end = time.monotonic() + HEAD_DEADLINE + scaled(4)
        open_left = 0
        for h in held:
            cl, _, _ = wait_closed(h, max(0.1, end - time.monotonic()))
            open_left += not cl
        c.eq(open_left, 0, "the held connections are all closed by the deadline")
    finally:
        for h in held:
            h.close()
    c.ok(healthz_ok(ap, scaled(2)), "/healthz is served after the cap episode")
    albd.check_clean_exit(c)

    # The probe address: /healthz and /readyz only; its own connection cap.
    p_probe = free_port()
    albd = env.start_albd(ports=[p_web], args=["--probe", f"127.0.0.1:{p_probe}", "--admin-host", "albd.internal"])
    ap = albd.admin_port
    pp = f"127.0.0.1:{p_probe}"
    for path in ("/healthz", "/readyz"):
        st, _, _ = get(p_probe, path, host=pp)
        c.eq(st, 200, f"probe address serves {path}")
        st, _, b = get(p_probe, path, host=pp, method="HEAD")
        c.ok(st == 200 and b == b"", f"probe address answers HEAD {path} without body", "200, no body", (st, b))
    st, _, _ = get(p_probe, "/healthz", version="1.0")
    c.eq(st, 200, "probe address serves HTTP/1.0 /healthz without Host (docker HEALTHCHECK)")
    for path in ("/config", "/status", "/metrics", "/"):
        st, _, b = get(p_probe, path, host=pp)
        c.eq(st, 404, f"probe address does not serve {path}")
        c.ok(b"generation" not in b and b"albd_" not in b, f"probe address gives nothing of {path}", "", b[:200])
    st, _, _ = get(p_probe, "/healthz", host="evil.example")
    c.eq(st, 421, "probe address checks Host too")
    st, _, _ = get(ap, "/status", host="albd.internal:9901")
    c.eq(st, 200, "a name given with --admin-host is served")
    st, _, _ = get(ap, "/status", host="other.internal")
    c.eq(st, 421, "... and only that name")
    st, _, _ = get(ap, "/config", host=f"127.0.0.1:{ap}")
    c.eq(st, 200, "the admin endpoint still serves /config next to a probe address")
    held = hold(ap, MAX_CONNS)
    try:
        st, _, _ = get(p_probe, "/readyz", host=pp)
        c.eq(st, 200, "probe address answers while the admin endpoint is full")
    finally:
        for h in held:
            h.close()
    albd.check_clean_exit(c)

    r = subprocess.run([albd_binary(), "run", "-m", env.manifest_dir, "--admin-host", "evil.example:80"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=scaled(10))
    c.ok(r.returncode == 64 and b"--admin-host takes a host name" in r.stderr,
         "--admin-host with a port is refused with a clear error", "exit 64", (r.returncode, r.stderr[-200:]))


if __name__ == "__main__":
    run("admin_endpoint_is_hardened", body)
