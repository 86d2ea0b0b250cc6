#!/usr/bin/env python3
"""/readyz says ready only while a configuration serves: not before the
first one (a manifest folder that does not exist yet; an invalid one under
--strict) and not while draining after SIGTERM. The active-connections gauge
in /metrics returns to 0 once clients leave (closed, reset, or gone during
a slow request). --drain-timeout ends requests still running at its
deadline: albd exits 0 about then, the clients (HTTP/1.1 and HTTP/2) see
their connection end without a complete response, and an idle keep-alive
connection is closed at once."""
import os
import shutil
import signal
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import h2_frames as h2  # noqa: E402
from albd_harness import (Albd, certificate, free_ports, http_listener, https_listener, instance,  # noqa: E402
                          read_response, run, scaled, server_group, wait_closed)
from raw_backend import metrics  # noqa: E402

ACTIVE = "albd_connections_active"


def readyz(albd):
    """/readyz status, or 'refused' when the admin endpoint is closed."""
    try:
        return albd.admin_get("/readyz", timeout=1.0)[0]
    except OSError:
        return "refused"


def healthz(albd):
    try:
        return albd.admin_get("/healthz", timeout=1.0)[0]
    except OSError:
        return "refused"


def wait_for(pred, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    return pred()


def can_connect(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def body(env):
    c = env.check
    certs = env.certs()
    be = env.backend("echo")
    p_web, p_h2, p_strict = free_ports(3)
    docs = (instance(), certificate("rsa", certs.rsa), server_group("web", [be.addr]),
            http_listener("web", p_web, "web"), https_listener("h2", p_h2, "rsa", "web", http2=True))

    # 1. The manifest folder does not exist yet: alive, not ready, serves
    #    nothing; once it exists and SIGHUP reconciles, ready and serving.
    shutil.rmtree(env.manifest_dir)
    albd = env.start_albd(ready=False)
    wait_for(lambda: healthz(albd) == 200, scaled(10))
    c.eq((albd.alive(), healthz(albd), readyz(albd)), (True, 200, 503),
         "no manifest folder: albd runs, /healthz 200, /readyz 503")
    os.makedirs(env.manifest_dir)
    env.write_manifests(*docs)
    time.sleep(scaled(0.3))
    c.eq(readyz(albd), 503, "the folder appears (unwatched): still not ready before a reconcile")
    albd.signal(signal.SIGHUP)
    c.eq(wait_for(lambda: readyz(albd) == 200, scaled(5)), True, "after SIGHUP applies it: /readyz 200")
    code, _, _ = env.curl(env.url(p_web, "/first", tls=False))
    c.eq(code, 200, "... and the listener serves")
    albd.check_clean_exit(c)

    # 2. --strict with an invalid manifest at start: nothing applied, not
    #    ready; fixing the file (watched) makes it ready.
    sdir = os.path.join(env.dir, "strict")
    os.makedirs(sdir)
    good = os.path.join(env.manifest_dir, "albd.yaml")
    with open(good) as f:
        text = f.read()
    with open(os.path.join(sdir, "albd.yaml"), "w") as f:
        f.write(text.replace(f"port: {p_web}", f"port: {p_strict}") + "---\nkind: Bogus\n")
    strict_albd = Albd(env, sdir, args=("--strict",))
    env.albds.append(strict_albd)
    wait_for(lambda: healthz(strict_albd) == 200, scaled(10))
    c.eq((strict_albd.alive(), readyz(strict_albd), can_connect(p_strict)), (True, 503, False),
         "--strict, invalid manifest at start: alive, /readyz 503, the listener not bound")
    with open(os.path.join(sdir, "albd.yaml"), "w") as f:
        f.write(text.replace(f"port: {p_web}", f"port: {p_strict}"))
    c.eq(wait_for(lambda: readyz(strict_albd) == 200, scaled(5)), True, "the manifest fixed: /readyz 200")
    strict_albd.check_clean_exit(c)

    # 3. Connections counted while open, back to 0 once clients leave.
    albd = env.start_albd(ports=(p_web, p_h2), args=("--drain-timeout", "2"))
    c.eq(wait_for(lambda: metrics(albd).get(ACTIVE) == 0, scaled(3)), True, "no client yet: active connections 0")
    socks = []
    for _ in range(4):
        s = socket.create_connection(("127.0.0.1", p_web), timeout=scaled(10))
        s.sendall(b"GET /keep HTTP/1.1\r\nHost: albd.test\r\n\r\n")
        read_response(s.makefile("rb"))
        socks.append(s)
    h2conns = [h2.H2Conn.connect(env, p_h2) for _ in range(3)]
    slow = socket.create_connection(("127.0.0.1", p_web), timeout=scaled(10))
    slow.sendall(b"GET /slow?delay=1 HTTP/1.1\r\nHost: albd.test\r\n\r\n")
    c.eq(wait_for(lambda: metrics(albd).get(ACTIVE) == 8, scaled(3)), True,
         "4 HTTP/1.1 + 3 HTTP/2 + 1 in-flight connections: active connections 8")
    for s in socks[:2]:
        s.close()
    for s in socks[2:]:  # gone with a reset
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    for conn in h2conns:
        conn.close()
    slow.close()  # gone while its request is at the backend
    c.eq(wait_for(lambda: metrics(albd).get(ACTIVE) == 0, scaled(5)), True,
         "all clients gone (closed, reset, mid-request): active connections back to 0")
    print(f"  metrics now: active {metrics(albd).get(ACTIVE)}, "
          f"accepted {metrics(albd).get('albd_connections_accepted_total')}")

    # 4. --drain-timeout 2 with requests that would take 30 s.
    result = {}

    def h1_client():
        s = socket.create_connection(("127.0.0.1", p_web), timeout=scaled(20))
        s.sendall(b"GET /drain?delay=30 HTTP/1.1\r\nHost: albd.test\r\n\r\n")
        closed, _, data = wait_closed(s, scaled(20))
        result["h1"] = (closed, data, time.monotonic())
        s.close()

    def h2_client():
        conn = h2.H2Conn.connect(env, p_h2)
        conn.request(1, "GET", env.host, "/drain-h2?delay=30")
        ended, goaway = None, None
        for f in conn.frames(scaled(20)):
            if f.type == h2.GOAWAY:
                goaway = f.goaway()
            if f.stream == 1 and (f.flags & h2.END_STREAM or f.type == h2.RST_STREAM):
                ended = f
        result["h2"] = (conn.closed, goaway, ended, time.monotonic())
        conn.close()

    idle = socket.create_connection(("127.0.0.1", p_web), timeout=scaled(10))
    idle.sendall(b"GET /idle HTTP/1.1\r\nHost: albd.test\r\n\r\n")
    read_response(idle.makefile("rb"))
    n0 = be.count()
    threads = [threading.Thread(target=h1_client, daemon=True), threading.Thread(target=h2_client, daemon=True)]
    for t in threads:
        t.start()
    c.require(be.wait_requests(n0 + 2, scaled(10)), "both slow requests reached the backend")
    t0 = time.monotonic()
    albd.signal(signal.SIGTERM)
    closed, took_idle, _ = wait_closed(idle, scaled(1.5))
    c.ok(closed and took_idle < scaled(1.0), "an idle keep-alive connection is closed at once on SIGTERM",
         "closed < 1 s", (closed, round(took_idle, 2)))
    states = set()
    while albd.alive() and time.monotonic() - t0 < scaled(1.5):
        states.add(readyz(albd))
        time.sleep(0.05)
    c.ok(states and 200 not in states, "while draining /readyz never says ready", "503 or refused", states)
    try:
        albd.proc.wait(timeout=scaled(10))
    except Exception:
        pass
    exited = time.monotonic() - t0
    c.within(round(exited, 2), 1.8, 2.0 + scaled(1.5), "albd exits about 2 s (--drain-timeout) after SIGTERM")
    for t in threads:
        t.join(scaled(10))
    h1r = result.get("h1")
    c.ok(h1r and h1r[0] and not h1r[1] and h1r[2] - t0 < 2.0 + scaled(1.5),
         "HTTP/1.1: the connection ends at the deadline with no response", "closed, no bytes",
         h1r and (h1r[0], h1r[1][:60], round(h1r[2] - t0, 2)))
    h2r = result.get("h2")
    c.ok(bool(h2r and h2r[0] and (h2r[2] is None or h2r[2].type == h2.RST_STREAM)),
         "HTTP/2: the stream never ends cleanly; the connection is closed", "closed, no END_STREAM",
         h2r and (h2r[0], h2r[2]))
    c.ok(h2r and h2r[1] is not None and h2r[1][1] == h2.NO_ERROR, "HTTP/2: GOAWAY NO_ERROR at SIGTERM", "GOAWAY",
         h2r and h2r[1])
    albd.check_clean_exit(c)


run("drains_and_reports_readiness", body)
