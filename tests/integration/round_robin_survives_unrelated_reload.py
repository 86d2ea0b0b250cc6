#!/usr/bin/env python3
"""The weighted-round-robin rotation of a server group lives outside the
snapshot: a reload that does not change the group (another group added)
keeps it where it was, so a 1:1 group keeps alternating across the reload;
a reload that changes the group's weights starts a new rotation."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import echo_of, free_ports, http_listener, instance, run, server_group  # noqa: E402


def body(env):
    c = env.check
    a, b, other = env.backend("a"), env.backend("b"), env.backend("other")
    (port,) = free_ports(1)

    def manifests(weight, extra_group):
        docs = [instance(), server_group("web", [(*a.addr, weight), (*b.addr, weight)], scheduler="Wrr"),
                http_listener("web", port, "web")]
        if extra_group:
            docs.append(server_group("spare", [(*other.addr, 1)]))
        env.write_manifests(*docs)

    def served_by():
        st, _, body_ = env.http("GET", port, "/")
        return echo_of(body_).get("backend") if st == 200 else f"status {st}"

    manifests(10, False)
    # One worker: every request meets the same rotation.
    albd = env.start_albd(ports=(port,), workers=1)
    seq = [served_by() for _ in range(3)]
    c.eq(seq, ["a", "b", "a"], "equal weights alternate, starting with the first server")

    gen = albd.generation()
    manifests(10, True)  # an unrelated change: the group is the same
    c.require(albd.wait_generation(gen) is not None, "the reload with another group serves")
    seq = [served_by() for _ in range(2)]
    c.eq(seq, ["b", "a"], "after an unrelated reload the rotation goes on where it was")

    gen = albd.generation()
    manifests(20, True)  # the group's weights change: a new rotation
    c.require(albd.wait_generation(gen) is not None, "the reload with new weights serves")
    seq = [served_by() for _ in range(3)]
    c.eq(seq, ["a", "b", "a"], "a changed group starts a new rotation")
    c.eq(other.count(), 0, "the unrelated group got nothing")
    albd.check_clean_exit(c)


run("round_robin_survives_unrelated_reload", body)
