#!/usr/bin/env python3
"""When every server of a group fails its health check, whenAllUnhealthy
decides: FailOpen (the default) keeps forwarding by the scheduler to all of
them, Reject answers 503 until one passes again. A group whose servers all
have weight 0, or that has no server, answers 503; weight-0 servers are not
probed."""
import os
import json
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import dead_port, echo_of, free_ports, http_listener, instance, run, server_group  # noqa: E402

HC = {"enabled": True, "path": "/hc", "intervalSeconds": 1, "timeoutSeconds": 1,
      "healthyThreshold": 2, "unhealthyThreshold": 2}


def spread(env, port, n=20):
    """n GETs on new connections: {backend name or status: count}."""
    out = {}
    for i in range(n):
        st, _, b = env.http("GET", port, f"/r{i}")
        k = echo_of(b).get("backend") if st == 200 else st
        out[k] = out.get(k, 0) + 1
    return out


def body(env):
    c = env.check
    a, b = env.backend("a"), env.backend("b")
    r1, r2 = env.backend("r1"), env.backend("r2")
    z = env.backend("zero")
    o = env.backend("o")  # fails its check but serves; its partner refuses connections
    dead = dead_port()
    for be in (a, b, r1, r2, o):
        be.set_status("/hc", 503)
    p_open, p_reject, p_zero, p_empty, p_dead = free_ports(5)
    env.write_manifests(
        instance(),
        server_group("open", [a.addr, b.addr], healthCheck=HC),
        server_group("reject", [r1.addr, r2.addr], healthCheck=HC, whenAllUnhealthy="Reject"),
        server_group("zero", [(*z.addr, 0)], healthCheck=HC),
        server_group("empty", [], healthCheck=HC),
        server_group("open-dead", [o.addr, ("127.0.0.1", dead)], healthCheck=HC),
        http_listener("open-dead", p_dead, "open-dead"),
        http_listener("open", p_open, "open"), http_listener("reject", p_reject, "reject"),
        http_listener("zero", p_zero, "zero"), http_listener("empty", p_empty, "empty"))
    albd = env.start_albd(ports=(p_open, p_reject, p_zero, p_empty, p_dead))

    for g, be in (("open", a), ("open", b), ("reject", r1), ("reject", r2), ("open-dead", o)):
        e = albd.wait_health(g, f"127.0.0.1:{be.port}", "unhealthy")
        # Without a report, go on after the time two probes take: the
        # requests below still show what albd does.
        c.ok(e is not None, f"{be.name} of {g} is reported unhealthy")
    time.sleep(0.1)
    st, body_ = albd.admin_get("/status")
    groups = {g["name"]: g for g in json.loads(body_).get("serverGroups", [])}
    c.eq(groups.get("open", {}).get("whenAllUnhealthy"), "FailOpen", "/status shows FailOpen (the default)")
    c.eq(groups.get("reject", {}).get("whenAllUnhealthy"), "Reject", "/status shows Reject")
    c.eq(groups.get("reject", {}).get("serversUp"), 0, "/status counts no server up in the rejecting group")
    conds = [cond for r in json.loads(body_)["resources"] if r["kind"] == "ServerGroup" and r["name"] == "reject"
             for cond in r["conditions"] if cond["type"] == "Degraded"]
    c.eq([cond["reason"] for cond in conds], ["AllServersDown"], "the rejecting group is Degraded: AllServersDown")
    c.ok(all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", cond.get("lastTransitionTime") or "")
             and cond.get("status") == "True" and cond.get("message") for cond in conds),
         "Degraded has the shape of the other conditions (status, message, RFC 3339 lastTransitionTime)", None, conds)
    st2, body2 = albd.admin_get("/status")
    conds2 = [cond for r in json.loads(body2)["resources"] if r["kind"] == "ServerGroup" and r["name"] == "reject"
              for cond in r["conditions"] if cond["type"] == "Degraded"]
    c.eq([x.get("lastTransitionTime") for x in conds2], [x.get("lastTransitionTime") for x in conds],
         "Degraded's lastTransitionTime stays while the group stays down")

    got = spread(env, p_open)
    print("FailOpen with every server down:", got)
    c.eq(got.get("a", 0) + got.get("b", 0), 20, "FailOpen: every request still forwarded")
    c.ok(got.get("a", 0) >= 5 and got.get("b", 0) >= 5, "FailOpen: the scheduler spreads over all servers",
         ">= 5 each", got)

    got = spread(env, p_dead)
    print("FailOpen, every server down, one refusing connections:", got)
    c.eq(got, {"o": 20}, "FailOpen fails over across the down servers too: every request answered")

    got = spread(env, p_reject)
    print("Reject with every server down:", got)
    c.eq(got, {503: 20}, "Reject: every request answered 503")
    c.eq([r["path"] for r in r1.requests + r2.requests if r["path"] != "/hc"], [],
         "Reject: no request reached a backend")

    r1.set_status("/hc", None)
    c.ok(albd.wait_health("reject", f"127.0.0.1:{r1.port}", "healthy") is not None, "r1 is healthy again")
    got = spread(env, p_reject)
    print("Reject with r1 back:", got)
    c.eq(got, {"r1": 20}, "with one server back, the group serves from it alone")

    got = spread(env, p_zero, 5)
    c.eq(got, {503: 5}, "a group whose servers all have weight 0 answers 503")
    got = spread(env, p_empty, 5)
    c.eq(got, {503: 5}, "a group without servers answers 503")
    time.sleep(1.5)
    c.eq(z.count(), 0, "a weight-0 server is never probed nor sent a request")
    e = albd.server_health().get(("zero", f"127.0.0.1:{z.port}"))
    c.eq(e and e["health"], "unchecked", "/status calls a weight-0 server unchecked")
    albd.check_clean_exit(c)


run("health_checks_fail_open_or_reject", body)
