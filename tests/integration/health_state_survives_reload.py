#!/usr/bin/env python3
"""A server's health verdict outlives reloads: a reload that changes
something else keeps an unhealthy server down (same verdict, same
transition count, no request to it right after the swap); one that changes
the group's check settings starts the new check from the current verdict;
one that disables the check makes the server usable again."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import echo_of, free_ports, http_listener, instance, run, server_group  # noqa: E402

HC = {"enabled": True, "path": "/hc", "intervalSeconds": 1, "timeoutSeconds": 1,
      "healthyThreshold": 2, "unhealthyThreshold": 2}


def spread(env, port, n=20):
    out = {}
    for i in range(n):
        st, _, b = env.http("GET", port, f"/r{i}")
        k = echo_of(b).get("backend") if st == 200 else st
        out[k] = out.get(k, 0) + 1
    return out


def body(env):
    c = env.check
    a, b = env.backend("a"), env.backend("b")
    b.set_status("/hc", 500)
    p1, p2 = free_ports(2)

    def write(hc, idle=15, extra=False):
        docs = [instance(), server_group("web", [a.addr, b.addr], healthCheck=hc),
                http_listener("web", p1, "web", idleTimeoutSeconds=idle)]
        if extra:
            docs.append(http_listener("other", p2, "web"))
        env.write_manifests(*docs)

    write(HC)
    albd = env.start_albd(ports=(p1, p2))
    bkey = f"127.0.0.1:{b.port}"
    e = albd.wait_health("web", bkey, "unhealthy") or {}
    c.ok(e, "b is unhealthy")  # without a report, go on: the requests below still tell
    c.eq(e.get("transitions"), 1, "b went down once")
    n_probes = len([r for r in b.requests if r["path"] == "/hc"])

    # 1. A reload that changes something else (a listener's idle timeout,
    #    a new listener): b stays down, its record unchanged.
    gen = albd.generation()
    write(HC, idle=30, extra=True)
    albd.signal(signal.SIGHUP)
    c.require(albd.wait_generation(gen) is not None, "the reload applied")
    e = albd.server_health().get(("web", bkey), {})
    c.eq((e.get("health"), e.get("up"), e.get("transitions")), ("unhealthy", False, 1),
         "right after the reload b is still down, no new transition")
    c.ok(e.get("lastProbe") is not None, "its last probe is kept")
    got = spread(env, p1)
    c.eq(got, {"a": 20}, "no request reaches b right after the reload")
    got = spread(env, p2, 10)
    c.eq(got, {"a": 10}, "nor through the new listener")
    # The probes went on at their rhythm (about one per second).
    time.sleep(2.0)
    more = len([r for r in b.requests if r["path"] == "/hc"]) - n_probes
    c.within(more, 1, 6, "probing of b went on across the reload")

    # 2. A reload that changes b's check settings: the new check starts
    #    from the current verdict (down), it does not forget it.
    gen = albd.generation()
    write(dict(HC, intervalSeconds=2, healthyThreshold=3), idle=30, extra=True)
    albd.signal(signal.SIGHUP)
    c.require(albd.wait_generation(gen) is not None, "the second reload applied")
    e = albd.server_health().get(("web", bkey), {})
    c.eq((e.get("health"), e.get("transitions")), ("unhealthy", 1), "a changed check keeps the verdict")
    c.eq(spread(env, p1, 10), {"a": 10}, "b still gets nothing")

    # 3. Disabling the check: always healthy.
    gen = albd.generation()
    write({"enabled": False}, idle=30, extra=True)
    albd.signal(signal.SIGHUP)
    c.require(albd.wait_generation(gen) is not None, "the third reload applied")
    time.sleep(0.3)  # the prober reads the new snapshot on its own thread
    e = albd.server_health().get(("web", bkey), {})
    c.eq((e.get("health"), e.get("up")), ("unchecked", True), "with the check disabled b is unchecked and up")
    got = spread(env, p1)
    c.ok(got.get("b", 0) >= 5 and got.get("a", 0) >= 5, "b takes requests again", ">= 5 each", got)
    albd.check_clean_exit(c)


run("health_state_survives_reload", body)
