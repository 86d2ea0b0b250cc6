#!/usr/bin/env python3
"""Every error albd answers itself has the reference product's meaning --
400 malformed, 405 TRACE, 408 client too slow, 413 / 414 / 431 limits, 502
backend refused, 503 no server to send to (all weights 0), 504 backend too
slow -- and the same shape: a small text body, Cache-Control: no-store,
Connection: close, and the connection really closed afterwards."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (free_port, free_ports, header, http_listener, instance, read_response,  # noqa: E402
                          run, scaled, server_group, socket, wait_closed)


def body(env):
    c = env.check
    be = env.backend("a")
    dead = free_port()  # nothing listens there
    p_ok, p_dead, p_zero = free_ports(3)
    env.write_manifests(
        instance(),
        server_group("web", [be.addr]), server_group("dead", [("127.0.0.1", dead)]),
        server_group("zero", [(be.addr[0], be.addr[1], 0)]),
        http_listener("web", p_ok, "web", requestTimeoutSeconds=1,
                      limits={"maxRequestBodyBytes": 1000, "headerTimeoutSeconds": 1}),
        http_listener("dead", p_dead, "dead"), http_listener("zero", p_zero, "zero"))
    albd = env.start_albd(ports=(p_ok, p_dead, p_zero))

    def send(port, raw, trickle=False):
        s = socket.create_connection(("127.0.0.1", port), timeout=scaled(10))
        f = s.makefile("rb")
        try:
            if raw:
                s.sendall(raw)
            try:
                _, st, hdrs, b, _ = read_response(f)
            except (OSError, ValueError) as ex:
                return repr(ex), [], b"", None
            return st, hdrs, b, wait_closed(s, scaled(3))[0]
        finally:
            f.close()
            s.close()

    H = b"Host: albd.test\r\n"
    cases = [
        (400, "malformed request", p_ok, b"GET /x HTTP/1.1\r\n" + H + b"Bad Header: 1\r\n\r\n"),
        (405, "TRACE", p_ok, b"TRACE /x HTTP/1.1\r\n" + H + b"\r\n"),
        (408, "head not finished in time", p_ok, b"GET /x HTTP/1.1\r\n" + H),
        (413, "body over the limit", p_ok, b"POST /x HTTP/1.1\r\n" + H + b"Content-Length: 1001\r\n\r\n"),
        (414, "target over 32 KB", p_ok, b"GET /" + b"t" * 40000 + b" HTTP/1.1\r\n" + H + b"\r\n"),
        (431, "headers over 32 KB", p_ok, b"GET /x HTTP/1.1\r\n" + H + b"X-L: " + b"h" * 40000 + b"\r\n\r\n"),
        (502, "backend refuses the connection", p_dead, b"GET /x HTTP/1.1\r\n" + H + b"\r\n"),
        (503, "no server with a weight", p_zero, b"GET /x HTTP/1.1\r\n" + H + b"\r\n"),
        (504, "backend slower than the request timeout", p_ok, b"GET /x?delay=3 HTTP/1.1\r\n" + H + b"\r\n"),
    ]
    for want, what, port, raw in cases:
        st, hdrs, b, closed = send(port, raw)
        c.eq(st, want, f"{what}: {want}")
        c.eq(header(hdrs, "Cache-Control"), ["no-store"], f"{what}: Cache-Control: no-store")
        c.eq(header(hdrs, "Connection"), ["close"], f"{what}: Connection: close")
        c.ok(0 < len(b) < 100 and b.startswith(str(want).encode()), f"{what}: a small text body", None, b)
        c.eq(closed, True, f"{what}: the connection is closed after it")
    albd.check_clean_exit(c)


run("error_responses_have_reference_meaning", body)
