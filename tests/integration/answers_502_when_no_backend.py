#!/usr/bin/env python3
"""A group whose servers all refuse connections answers 502; a group with
one dead and one live server always answers 200 (albd fails over)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (certificate, echo_of, free_ports, http_listener, https_listener,  # noqa: E402
                          instance, run, server_group)


def body(env):
    c = env.check
    certs = env.certs()
    live = env.backend("live")
    # Ports nobody listens on: connecting there is refused.
    p_dead, p_mixed, p_http, dead1, dead2 = free_ports(5)
    env.write_manifests(
        instance(),
        certificate("rsa", certs.rsa),
        server_group("dead", [("127.0.0.1", dead1), ("127.0.0.1", dead2)]),
        server_group("mixed", [("127.0.0.1", dead1), live.addr]),
        https_listener("dead", p_dead, "rsa", "dead"),
        http_listener("dead-http", p_http, "dead"),
        https_listener("mixed", p_mixed, "rsa", "mixed"))
    albd = env.start_albd(ports=(p_dead, p_mixed, p_http))

    codes = [env.https("GET", p_dead, f"/d{i}")[0] for i in range(5)]
    c.eq(codes, [502] * 5, "every request to a group of refusing servers answers 502 (HTTPS)")
    st, _, _ = env.http("GET", p_http, "/d")
    c.eq(st, 502, "a group of refusing servers answers 502 (HTTP)")
    st, _, _ = env.https("POST", p_dead, "/post", body=b"x" * 1000)
    c.eq(st, 502, "a POST to a group of refusing servers answers 502")

    # One connection, several requests: the 502 does not break keep-alive.
    conn = env.connection(p_dead)
    try:
        seen = []
        for i in range(3):
            conn.request("GET", f"/k{i}")
            r = conn.getresponse()
            r.read()
            seen.append(r.status)
        c.eq(seen, [502] * 3, "502 answers on one keep-alive connection")
    finally:
        conn.close()

    results = []
    for i in range(30):
        st, _, b = env.https("GET", p_mixed, f"/m{i}")
        results.append((st, echo_of(b).get("backend")))
    c.eq(results, [(200, "live")] * 30, "one dead + one live server: every request answers 200 from the live one")
    # Also on one connection.
    conn = env.connection(p_mixed)
    try:
        ok = 0
        for i in range(20):
            conn.request("GET", f"/mk{i}")
            r = conn.getresponse()
            ok += r.status == 200 and echo_of(r.read()).get("backend") == "live"
        c.eq(ok, 20, "failover on one keep-alive connection: 20 of 20 answer 200")
    finally:
        conn.close()

    c.ok(albd.alive(), "albd is still running")
    albd.check_clean_exit(c)


run("answers_502_when_no_backend", body)
