#!/usr/bin/env python3
"""A backend whose TCP connect never completes (its SYNs are dropped: a
listening socket with backlog 0 whose accept queue is full and never
accepted, which works on loopback without privileges) gets the client a 504
after albd's 5 s connect timeout, over HTTP/1.1 and HTTP/2; with a second,
working server in the group the request fails over to it and answers 200."""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import h2_frames as h2  # noqa: E402
from albd_harness import (certificate, free_ports, http_listener, https_listener, instance, run,  # noqa: E402
                          scaled, server_group)
from raw_backend import RawBackend, Unconnectable, h2_collect  # noqa: E402

CONNECT_TIMEOUT = 5.0  # PX_UPSTREAM_CONNECT_MS, fixed


def timed(fn):
    t = time.monotonic()
    r = fn()
    return r, time.monotonic() - t


def body(env):
    c = env.check
    certs = env.certs()
    hole = Unconnectable()
    c.require(hole.works, "a port whose connects hang exists here (backlog 0, accept queue full)",
              "connect times out", "connect completed or was refused")
    good = RawBackend()
    env.backends.append(good)
    p_hang, p_h2, p_fail = free_ports(3)
    env.write_manifests(
        instance(),
        certificate("rsa", certs.rsa),
        server_group("hang", [hole.addr]),
        server_group("failover", [hole.addr, good.addr]),
        http_listener("hang", p_hang, "hang"),
        https_listener("hang-h2", p_h2, "rsa", "hang", http2=True),
        http_listener("failover", p_fail, "failover"))
    albd = env.start_albd(ports=(p_hang, p_h2, p_fail))

    res = {}

    def h1():
        res["h1"] = timed(lambda: env.http("GET", p_hang, "/hang", timeout=scaled(20)))

    def over_h2():
        def go():
            conn = h2.H2Conn.connect(env, p_h2)
            try:
                conn.request(1, "GET", env.host, "/hang-h2")
                return h2_collect(conn, 1, scaled(20))
            finally:
                conn.close()
        res["h2"] = timed(go)

    def failover():
        res["fail"] = [timed(lambda i=i: env.http("GET", p_fail, f"/f{i}", timeout=scaled(20))) for i in range(2)]

    threads = [threading.Thread(target=f, daemon=True) for f in (h1, over_h2, failover)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(scaled(30))

    (st, _, _), took = res.get("h1", ((None, None, None), None))
    c.eq(st, 504, "HTTP/1.1: a backend connect that never completes answers 504")
    c.within(took and round(took, 2), CONNECT_TIMEOUT - 0.5, CONNECT_TIMEOUT + scaled(1.5),
             "... after the 5 s connect timeout")
    (how, _, data, _), took = res.get("h2", ((None, None, b"", None), None))
    c.eq((how, data[:4]), ("end", b"504 "), "HTTP/2: 504 too")
    c.within(took and round(took, 2), CONNECT_TIMEOUT - 0.5, CONNECT_TIMEOUT + scaled(1.5), "... after 5 s")

    fail = res.get("fail", [])
    statuses = [r[0][0] for r in fail]
    c.eq(statuses, [200, 200], "a group with a hanging and a working server: both requests 200")
    # Each worker's round robin may try the hanging server first: a request
    # waits out at most one connect timeout, then fails over.
    c.ok(len(fail) == 2 and all(t < CONNECT_TIMEOUT + scaled(1.5) for _, t in fail),
         "... each after at most one connect timeout", "< 6.5 s each", [round(t, 2) for _, t in fail])
    c.ok(good.count() == 2, "the working server answered both", 2, good.count())
    albd.check_clean_exit(c)
    hole.close()


run("answers_504_on_backend_connect_timeout", body)
