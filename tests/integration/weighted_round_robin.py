#!/usr/bin/env python3
"""Wrr with weights 100 and 50 splits requests about 2:1; a weight-0 server
gets none."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (certificate, echo_of, free_ports, https_listener, instance, run,  # noqa: E402
                          server_group)


def body(env):
    c = env.check
    certs = env.certs()
    a, b, z = env.backend("a"), env.backend("b"), env.backend("zero")
    (port,) = free_ports(1)
    env.write_manifests(
        instance(), certificate("rsa", certs.rsa),
        server_group("web", [(*a.addr, 100), (*b.addr, 50), (*z.addr, 0)], scheduler="Wrr"),
        https_listener("web", port, "rsa", "web"))
    albd = env.start_albd(ports=(port,))

    counts = {"a": 0, "b": 0, "zero": 0, "other": 0}
    # 3 keep-alive connections x 80 requests, plus 60 new connections = 300.
    for k in range(3):
        conn = env.connection(port)
        try:
            for i in range(80):
                conn.request("GET", f"/c{k}/{i}")
                r = conn.getresponse()
                name = echo_of(r.read()).get("backend") if r.status == 200 else None
                counts[name if name in counts else "other"] += 1
        finally:
            conn.close()
    for i in range(60):
        st, _, body_ = env.https("GET", port, f"/n{i}")
        name = echo_of(body_).get("backend") if st == 200 else None
        counts[name if name in counts else "other"] += 1

    print("split:", counts)
    c.eq(counts["other"], 0, "all 300 requests answered 200 by a backend")
    c.within(counts["a"], 180, 220, "weight 100 gets about two thirds of 300 requests")
    c.within(counts["b"], 80, 120, "weight 50 gets about one third of 300 requests")
    c.eq(counts["zero"], 0, "weight 0 gets no request")
    c.eq(z.count(), 0, "the weight-0 backend saw no request at all")
    albd.check_clean_exit(c)


run("weighted_round_robin", body)
