#!/usr/bin/env python3
"""Wlc (weighted least connections, counted over every worker): while one
server holds a slow request, new requests go to the idle one; with no
request in flight the ties go round in proportion to weight (100:50 about
2:1 over 300 requests, within 10 %); a weight-0 server gets nothing."""
import os
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import echo_of, free_ports, http_listener, instance, run, scaled, server_group  # noqa: E402


def body(env):
    c = env.check
    a, b, z = env.backend("a"), env.backend("b"), env.backend("zero")
    (port,) = free_ports(1)
    env.write_manifests(
        instance(),
        server_group("web", [(*a.addr, 100), (*b.addr, 50), (*z.addr, 0)], scheduler="Wlc"),
        http_listener("web", port, "web"))
    albd = env.start_albd(ports=(port,))

    def served_by(path, conn=None):
        if conn is None:
            st, _, body_ = env.http("GET", port, path)
        else:
            conn.request("GET", path)
            r = conn.getresponse()
            st, body_ = r.status, r.read()
        return echo_of(body_).get("backend") if st == 200 else f"status {st}"

    # Ties: sequential requests never overlap, so every pick is a tie.
    counts = {}
    for k in range(3):  # keep-alive connections land on either worker
        conn = env.connection(port, tls=False)
        try:
            for i in range(80):
                n = served_by(f"/t{k}/{i}", conn)
                counts[n] = counts.get(n, 0) + 1
        finally:
            conn.close()
    for i in range(60):
        n = served_by(f"/n{i}")
        counts[n] = counts.get(n, 0) + 1
    print("ties:", counts)
    c.within(counts.get("a", 0), 180, 220, "weight 100 gets about two thirds of 300 (ties by weight)")
    c.within(counts.get("b", 0), 80, 120, "weight 50 gets about one third of 300")
    c.eq(counts.get("zero", 0), 0, "weight 0 gets no request")

    # Load: two slow requests (3 s) in flight at once: the first goes to an
    # idle server, the second to the other (still idle) one.
    slow = scaled(3)
    held = {}

    def hold(tag):
        held[tag] = served_by(f"/slow{tag}?delay={slow}")

    before_a, before_b = a.count(), b.count()
    ts = [threading.Thread(target=hold, args=(i,)) for i in range(2)]
    for t in ts:
        t.start()
    c.require(a.wait_requests(before_a + 1, scaled(5)) or b.wait_requests(before_b + 1, scaled(5)),
              "the slow requests reached a backend")
    # Wait until both slow requests are in (one each: a 0/100 then b 0/50).
    end_a = a.wait_requests(before_a + 1, scaled(5))
    end_b = b.wait_requests(before_b + 1, scaled(5))
    c.ok(end_a and end_b, "two slow requests on idle servers: one each (the least loaded)")
    # Now a has 1 in flight per weight 100, b 1 per 50: a is less loaded,
    # so the quick requests (one at a time) all go to a, where Wrr would
    # send b a third of them.
    quick = [served_by(f"/q{i}") for i in range(20)]
    print("while b holds a slow request:", quick)
    c.ok(quick.count("a") >= 19, "while both hold one slow request, weight 100 takes the quick ones",
         ">= 19 of 20 to a", quick.count("a"))
    for t in ts:
        t.join(scaled(10))
    c.eq(sorted(held.values()), ["a", "b"], "both slow requests answered")
    c.eq(z.count(), 0, "the weight-0 backend saw no request at all")
    albd.check_clean_exit(c)


run("least_connections_prefers_idle_servers", body)
