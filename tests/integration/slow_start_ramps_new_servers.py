#!/usr/bin/env python3
"""Slow start (Wrr, slowStart.durationSeconds 30, the minimum): the first
servers of a group take their full weight at once; a server added to the
serving group ramps its weight linearly from ~0 to full over 30 s, so its
share of requests at t seconds is f/(2+f) with f = t/30 next to two
full-weight servers (measured in bursts of 60 requests, within 0.08);
after 30 s it has its full third."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import echo_of, free_ports, http_listener, instance, run, server_group  # noqa: E402

DURATION = 30


def body(env):
    c = env.check
    a, b, n = env.backend("a"), env.backend("b"), env.backend("new")
    (port,) = free_ports(1)

    def write(servers):
        env.write_manifests(
            instance(),
            server_group("web", [(*s.addr, 100) for s in servers],
                         slowStart={"enabled": True, "durationSeconds": DURATION}),
            http_listener("web", port, "web"))

    def burst(k=60):
        conn = env.connection(port, tls=False)
        out = []
        try:
            for i in range(k):
                conn.request("GET", f"/b{i}")
                r = conn.getresponse()
                out.append(echo_of(r.read()).get("backend") if r.status == 200 else r.status)
        finally:
            conn.close()
        return out

    write([a, b])
    albd = env.start_albd(ports=(port,), workers=1)  # one rotation to measure
    first = burst(40)
    c.eq((first.count("a"), first.count("b")), (20, 20), "the first servers take full weight at once")

    gen = albd.generation()
    write([a, b, n])
    c.require(albd.wait_generation(gen) is not None, "the reload adding a server serves")
    t0 = time.monotonic()
    samples = []
    while True:
        start = time.monotonic() - t0
        got = burst()
        mid = (start + time.monotonic() - t0) / 2
        share = got.count("new") / len(got)
        f = min(1.0, mid / DURATION)
        samples.append((round(mid, 1), round(share, 3), round(f / (2 + f), 3)))
        c.eq([x for x in got if x not in ("a", "b", "new")], [], f"burst at {mid:.1f} s all answered")
        if len(samples) == 1:  # /status says which server ramps, and for how long still
            e = albd.server_health().get(("web", f"{n.addr[0]}:{n.addr[1]}"), {})
            c.ok(e.get("slowStart") is True and 0 < e.get("slowStartRemainingSeconds", 0) <= DURATION,
                 "/status: the new server is in slow start, with the seconds it has left",
                 "slowStart true", e)
            e = albd.server_health().get(("web", f"{a.addr[0]}:{a.addr[1]}"), {})
            c.eq((e.get("slowStart"), e.get("draining")), (False, False),
                 "/status: a server that serves at full weight is in neither slow start nor draining")
        if mid > DURATION + 3:
            break
        time.sleep(max(0.0, 3.0 - (time.monotonic() - t0 - start)))
    print("(seconds, share of the new server, expected):", samples)
    off = [s for s in samples if abs(s[1] - s[2]) > 0.08]
    c.eq(off, [], "the new server's share follows the linear ramp (within 0.08 per burst)")
    c.ok(samples[0][1] < 0.1, "right after it joins, the new server gets little", "< 0.1", samples[0][1])
    c.ok(abs(samples[-1][1] - 1 / 3) < 0.05, "after the duration it gets its full third",
         "about 0.333", samples[-1][1])
    e = albd.server_health().get(("web", f"{n.addr[0]}:{n.addr[1]}"), {})
    c.eq(e.get("slowStart"), False, "/status: after the duration the server is out of slow start")
    albd.check_clean_exit(c)


run("slow_start_ramps_new_servers", body)
