#!/usr/bin/env python3
"""Expect: 100-continue and the body limit. albd answers "100 Continue"
itself once a backend can take the body (so a client never waits on a
backend that ignores Expect), strips Expect toward the backend, and the body
then arrives whole. A Content-Length over limits.maxRequestBodyBytes is
answered 413 at once, without a 100 and without the backend; a chunked body
is answered 413 when it crosses the limit. Bodies within the limit pass."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (echo_header, free_ports, http_listener, instance, read_response,  # noqa: E402
                          run, scaled, server_group, socket, wait_closed)

LIMIT = 100000


def body(env):
    c = env.check
    be = env.backend("a")
    (port,) = free_ports(1)
    env.write_manifests(instance(), server_group("web", [be.addr]),
                        http_listener("web", port, "web", limits={"maxRequestBodyBytes": LIMIT}))
    albd = env.start_albd(ports=(port,))

    def conn():
        s = socket.create_connection(("127.0.0.1", port), timeout=scaled(10))
        return s, s.makefile("rb")

    # 100-continue: the client sends only the head and waits.
    s, f = conn()
    s.sendall(b"PUT /upload HTTP/1.1\r\nHost: albd.test\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n")
    _, st, _, _, _ = read_response(f)
    c.eq(st, 100, "the client waiting on Expect gets 100 Continue")
    s.sendall(b"u" * 5000)
    _, st, _, b, _ = read_response(f)
    echo = json.loads(b) if st == 200 else {}
    c.eq((st, echo.get("body_len")), (200, 5000), "then its body is forwarded whole")
    c.eq(echo_header(echo, "Expect"), [], "the backend does not see Expect")
    # Same connection, a second request without Expect: no stray 100.
    s.sendall(b"GET /after HTTP/1.1\r\nHost: albd.test\r\n\r\n")
    _, st, _, _, _ = read_response(f)
    c.eq(st, 200, "the connection is reused after a 100-continue exchange")
    f.close()
    s.close()

    # Over the limit with Expect: 413 at once, no 100, no backend.
    s, f = conn()
    s.sendall(b"PUT /too-big HTTP/1.1\r\nHost: albd.test\r\nExpect: 100-continue\r\n"
              b"Content-Length: %d\r\n\r\n" % (LIMIT + 1))
    _, st, hdrs, b, _ = read_response(f)
    c.eq(st, 413, "Content-Length over the limit is answered 413 before any body")
    c.eq([v for k, v in hdrs if k.lower() == "cache-control"], ["no-store"], "the 413 is not cacheable")
    c.eq(wait_closed(s, scaled(3))[0], True, "the connection is closed after the 413")
    f.close()
    s.close()

    # Chunked, crossing the limit: 413 when crossed.
    s, f = conn()
    s.sendall(b"POST /chunks HTTP/1.1\r\nHost: albd.test\r\nTransfer-Encoding: chunked\r\n\r\n")
    try:
        for _ in range(LIMIT // 10000 + 2):
            s.sendall(b"%x\r\n%s\r\n" % (10000, b"c" * 10000))
    except OSError:
        pass
    _, st, _, _, _ = read_response(f)
    c.eq(st, 413, "a chunked body crossing the limit is answered 413")
    c.eq(wait_closed(s, scaled(3))[0], True, "the connection is closed after it")
    f.close()
    s.close()
    # Each request has its own path, so what reached the backend is told
    # apart: the Expect request over the limit never, the chunked one at
    # most its head (sent before the body crossed the limit).
    time.sleep(scaled(0.3))  # a head albd sent would have arrived by now
    paths = [r["path"] for r in be.requests]
    c.eq(paths.count("/too-big"), 0, "the Expect request over the limit never reached the backend")
    c.ok(paths.count("/chunks") <= 1, "the backend saw at most the chunked request's head", "<= 1",
         paths.count("/chunks"))

    # Exactly at the limit: served.
    st, _, b = env.http("POST", port, "/at-limit", body=b"l" * LIMIT)
    c.eq((st, json.loads(b).get("body_len") if st == 200 else None), (200, LIMIT),
         "a body of exactly the limit is served")
    albd.check_clean_exit(c)


run("answers_expect_continue_and_413", body)
