#!/usr/bin/env python3
"""The upstream pool: requests reuse one backend connection (counted by the
backend and by /metrics albd_upstream_connections_total), a pooled
connection the backend closes is dropped and the next request still
succeeds, a GET sent on a pooled connection the backend then drops is
retried once on a fresh one (a POST is not replayed: 502), with
`upstreamKeepalive: false` every request gets its own backend connection,
closed after the response, and HTTP/1.0 clients (sent to the backend as
HTTP/1.0, as the reference says) share pooled connections when the backend
answers "Connection: keep-alive", and only then."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (certificate, free_ports, http_listener, https_listener, instance,  # noqa: E402
                          read_response, run, scaled, server_group)
from raw_backend import CLOSE, DROP, RESET, RawBackend, curl_run, metrics, response  # noqa: E402

NEW = 'albd_upstream_connections_total{kind="new"}'
REUSED = 'albd_upstream_connections_total{kind="reused"}'


def script(req):
    path = req.path.split("?")[0]
    tag = f"conn={req.conn} index={req.index}".encode()
    if path == "/close-after":  # a keep-alive response, then the backend closes
        return [response(200, tag), ("sleep", 0.05), CLOSE]
    if path == "/reset-after":
        return [response(200, tag), ("sleep", 0.05), RESET]
    if path.startswith("/v10-ka"):  # a server that honours HTTP/1.0 keep-alive
        return [response(200, tag, headers=[("Connection", "keep-alive")])]
    if path.startswith("/stale") and req.index > 0:
        # Arrived on a reused connection: the backend had "timed it out".
        return [RESET] if path.endswith("-reset") else [DROP]
    return [response(200, tag)]


class Client:
    """One keep-alive HTTP/1.1 client connection."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=scaled(10))
        self.f = self.s.makefile("rb")

    def get(self, path, method="GET", body=b""):
        extra = f"Content-Length: {len(body)}\r\n" if body or method == "POST" else ""
        self.s.sendall(f"{method} {path} HTTP/1.1\r\nHost: albd.test\r\n{extra}\r\n".encode() + body)
        _, status, _, b, _ = read_response(self.f, method)
        return status, b

    def close(self):
        self.f.close()
        self.s.close()


def body(env):
    c = env.check
    certs = env.certs()
    be = RawBackend(script)
    one = RawBackend(script)
    env.backends += [be, one]
    p_pool, p_once, p_h2 = free_ports(3)
    env.write_manifests(
        instance(),
        certificate("rsa", certs.rsa),
        server_group("pooled", [be.addr]),
        server_group("once", [one.addr], upstreamKeepalive=False),
        http_listener("pool", p_pool, "pooled"),
        https_listener("h2", p_h2, "rsa", "pooled", http2=True),
        http_listener("once", p_once, "once"))
    # One worker: one pool, so "reused" does not depend on which worker
    # accepted a client connection.
    albd = env.start_albd(ports=(p_pool, p_once, p_h2), workers=1)

    # 1. Five requests on one client connection, then five on five client
    #    connections: one backend connection carries all ten.
    m0 = metrics(albd)
    cl = Client(p_pool)
    got = [cl.get(f"/seq{i}") for i in range(5)]
    cl.close()
    for i in range(5):
        cl = Client(p_pool)
        got.append(cl.get(f"/sep{i}"))
        cl.close()
    m1 = metrics(albd)
    c.eq([s for s, _ in got], [200] * 10, "ten requests answered 200")
    c.eq(sorted({r.conn for r in be.requests}), [1], "the backend saw one connection for all ten requests",)
    c.eq((m1[NEW] - m0[NEW], m1[REUSED] - m0[REUSED]), (1, 9),
         "/metrics: upstream connections new +1, reused +9")
    c.ok(all(b.startswith(b"conn=1 ") for _, b in got), "every answer came over backend connection 1",
         "conn=1", [b for _, b in got])

    # 2. The backend closes (FIN, then RST) a pooled connection: albd drops
    #    it from the pool, the next request opens a new one and succeeds.
    for path in ("/close-after", "/reset-after"):
        conns0, m0 = be.connections, metrics(albd)
        cl = Client(p_pool)
        st1, _ = cl.get(path)
        time.sleep(scaled(0.5))  # albd notices the close while the connection is idle
        st2, b2 = cl.get("/after-close")
        cl.close()
        m1 = metrics(albd)
        c.eq((st1, st2), (200, 200), f"{path}: the request and the next one answer 200")
        c.ok(b2.startswith(f"conn={conns0 + 1} index=0".encode()),
             f"{path}: the next request went on a new backend connection", f"conn={conns0 + 1} index=0", b2)
        # The first request reused the pooled connection, the next one
        # could not: the backend had closed it.
        c.eq((m1[REUSED] - m0[REUSED], m1[NEW] - m0[NEW]), (1, 1),
             f"{path}: /metrics reused +1 (the request), new +1 (the next one)")

    # 3. Stale pooled connection: the backend closes (or resets) it when the
    #    next request arrives on it, before answering. A GET is retried
    #    once on a fresh connection; a POST is not replayed.
    for path in ("/stale-get", "/stale-get-reset"):
        cl = Client(p_pool)
        cl.get("/prime")  # leaves a pooled connection behind
        cl.close()
        n0, m0 = len(be.requests), metrics(albd)
        cl = Client(p_pool)
        st, b = cl.get(path)
        cl.close()
        m1 = metrics(albd)
        seen = [(r.conn, r.index) for r in be.requests[n0:] if r.path == path]
        c.eq((st, b[-7:]), (200, b"index=0"), f"{path}: answered 200 from a fresh backend connection")
        c.ok(len(seen) == 2 and seen[0][1] > 0 and seen[1][1] == 0,
             f"{path}: sent on the pooled connection, then retried once on a new one",
             "[(pooled, >0), (new, 0)]", seen)
        c.eq((m1[REUSED] - m0[REUSED], m1[NEW] - m0[NEW]), (1, 1), f"{path}: /metrics reused +1, new +1")

    cl = Client(p_pool)
    cl.get("/prime")
    cl.close()
    n0 = len(be.requests)
    cl = Client(p_pool)
    st, _ = cl.get("/stale-post", method="POST", body=b"pay once")
    cl.close()
    seen = [r for r in be.requests[n0:] if r.path == "/stale-post"]
    c.eq(st, 502, "a POST on a pooled connection the backend drops gets 502")
    c.eq(len(seen), 1, "... and is not sent again")

    # The same retry for an HTTP/2 client (the pool is shared).
    cl = Client(p_pool)
    cl.get("/prime")
    cl.close()
    n0 = len(be.requests)
    rc, code, b, err, version = curl_run(env, env.url(p_h2, "/stale-get-h2"), http2=True)
    seen = [(r.conn, r.index) for r in be.requests[n0:] if r.path == "/stale-get-h2"]
    c.eq((rc, code, version), (0, 200, "2"), "HTTP/2 GET on a stale pooled connection answers 200")
    c.ok(len(seen) == 2 and seen[0][1] > 0 and seen[1][1] == 0, "HTTP/2: retried once on a new connection",
         "[(pooled, >0), (new, 0)]", seen)

    # 4. upstreamKeepalive: false: a new backend connection per request,
    #    each asked to close and closed after its response.
    m0 = metrics(albd)
    cl = Client(p_once)
    got = [cl.get(f"/once{i}") for i in range(4)]
    cl.close()
    m1 = metrics(albd)
    c.eq([s for s, _ in got], [200] * 4, "upstreamKeepalive false: four requests answered 200")
    c.eq([(r.conn, r.index) for r in one.requests], [(1, 0), (2, 0), (3, 0), (4, 0)],
         "upstreamKeepalive false: each request on its own backend connection")
    c.eq([r.header("Connection") for r in one.requests], [["close"]] * 4,
         "upstreamKeepalive false: each request says Connection: close")
    c.eq((m1[NEW] - m0[NEW], m1[REUSED] - m0[REUSED]), (4, 0), "/metrics: new +4, reused +0")
    c.ok(one.wait_open(0, scaled(5)), "albd closed every backend connection after its response",
         0, one.open_connections())

    # 5. HTTP/1.0 clients, one client connection per request (as ab
    #    does): albd asks the backend for keep-alive and reuses the
    #    connection when the answer says keep-alive; an HTTP/1.1 answer
    #    without it (a server that may close after a 1.0 request) is not
    #    reused.
    def get10(path):
        s = socket.create_connection(("127.0.0.1", p_pool), timeout=scaled(10))
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: albd.test\r\n\r\n".encode())
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
        s.close()
        return data

    m0, n0 = metrics(albd), len(be.requests)
    got = [get10(f"/v10-ka{i}") for i in range(4)]
    m1 = metrics(albd)
    seen = be.requests[n0:]
    c.ok(all(b" 200 " in g.split(b"\r\n")[0] for g in got), "HTTP/1.0: four requests answered 200",
         "200", [g[:20] for g in got])
    c.eq([r.version for r in seen], ["HTTP/1.0"] * 4, "HTTP/1.0: the backend got HTTP/1.0 requests")
    c.eq([r.header("Connection") for r in seen], [["keep-alive"]] * 4,
         "HTTP/1.0: each asked the backend for keep-alive")
    c.eq(len({r.conn for r in seen}), 1, "HTTP/1.0: one backend connection carried all four")
    c.ok(m1[REUSED] - m0[REUSED] >= 3 and (m1[NEW] - m0[NEW]) + (m1[REUSED] - m0[REUSED]) == 4,
         "HTTP/1.0: /metrics reused >= 3 of 4", "reused >= 3", (m1[NEW] - m0[NEW], m1[REUSED] - m0[REUSED]))
    n0 = len(be.requests)
    got = [get10(f"/v10-plain{i}") for i in range(3)]
    seen = be.requests[n0:]
    c.eq(len({r.conn for r in seen}), 3,
         "HTTP/1.0: an answer without keep-alive is not reused (three requests, three connections)")

    albd.check_clean_exit(c)


run("reuses_upstream_connections", body)
