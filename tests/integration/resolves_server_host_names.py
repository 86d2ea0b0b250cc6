#!/usr/bin/env python3
"""Servers given by host name: albd resolves them off the request path and
every address becomes a server. "localhost" (127.0.0.1 in /etc/hosts)
serves; a name that does not resolve ("no-such-host.invalid") is reported
in /status for its group and never blocks the rest: its group's other
server serves, other groups serve, and a group whose only server is that
name answers 503. `albd plan` and /config show the name, not addresses."""
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import echo_of, free_ports, http_listener, instance, run, scaled, server_group  # noqa: E402
from reconcile_support import config, plan  # noqa: E402

BAD = "no-such-host.invalid"


def host_names(albd, group):
    st, body = albd.admin_get("/status")
    if st != 200:
        return None
    for r in json.loads(body).get("resources", []):
        if r.get("kind") == "ServerGroup" and r.get("name") == group:
            return r.get("hostNames")
    return None


def wait_host(albd, group, name, resolved, timeout):
    """Polls /status until group's host name `name` shows resolved (True)
    or a failure (False: resolved false and an error); returns the entry."""
    end = time.monotonic() + timeout
    entry = None
    while time.monotonic() < end:
        for e in host_names(albd, group) or []:
            if e.get("name") == name:
                entry = e
                if (resolved and e.get("resolved")) or (not resolved and e.get("error")
                                                        and e.get("error") != "not resolved yet"):
                    return e
        time.sleep(0.05)
    return entry


def body(env):
    c = env.check
    a = env.backend("a")
    b = env.backend("b")
    dead_port, p_name, p_mixed, p_bad, p_ip = free_ports(5)
    env.write_manifests(
        instance(),
        server_group("byname", [("localhost", a.port)]),
        server_group("mixed", [(BAD, dead_port), b.addr]),
        server_group("unresolved", [(BAD, dead_port)]),
        server_group("literal", [a.addr]),
        http_listener("byname", p_name, "byname"),
        http_listener("mixed", p_mixed, "mixed"),
        http_listener("unresolved", p_bad, "unresolved"),
        http_listener("literal", p_ip, "literal"))
    albd = env.start_albd(ports=(p_name, p_mixed, p_bad, p_ip))

    e = wait_host(albd, "byname", "localhost", True, scaled(10))
    c.ok(e and e.get("resolved") is True, "/status reports localhost resolved for group byname", "resolved", e)
    c.ok(e and "127.0.0.1" in e.get("addresses", []), "/status lists 127.0.0.1 among localhost's addresses",
         "127.0.0.1", e)
    c.eq(e and e.get("port"), a.port, "/status shows the server's port with the name")

    # The answer is published as a new snapshot a moment (20 ms) after it
    # arrives: wait for the first 200, then every request must succeed.
    end = time.monotonic() + scaled(5)
    while time.monotonic() < end and env.http("GET", p_name, "/first")[0] != 200:
        time.sleep(0.02)
    seen = [env.http("GET", p_name, f"/n{i}") for i in range(10)]
    c.eq([(s, echo_of(bd).get("backend")) for s, _, bd in seen], [(200, "a")] * 10,
         "a group whose server is 'localhost' forwards to the backend on 127.0.0.1 (10 of 10)")

    e = wait_host(albd, "mixed", BAD, False, scaled(10))
    c.ok(e and e.get("resolved") is False and e.get("error"),
         f"/status reports {BAD} as not resolved, with an error, for group mixed", "resolved false + error", e)
    c.eq(e and e.get("addresses"), [], f"{BAD} has no addresses")
    seen = [env.http("GET", p_mixed, f"/m{i}") for i in range(10)]
    c.eq([(s, echo_of(bd).get("backend")) for s, _, bd in seen], [(200, "b")] * 10,
         "the unresolved name does not block its group: the other server answers (10 of 10)")
    seen = [env.http("GET", p_bad, f"/u{i}")[0] for i in range(3)]
    c.eq(seen, [503] * 3, "a group whose only server does not resolve answers 503")
    st, _, bd = env.http("GET", p_ip, "/l")
    c.eq((st, echo_of(bd).get("backend")), (200, "a"), "another group with an IP literal serves meanwhile")
    c.eq(host_names(albd, "literal"), None, "a group without host names lists none in /status")

    # The name, not its addresses, in /config and plan.
    _, cfg = config(albd)
    servers = cfg["resources"]["ServerGroup"]["byname"]["spec"]["servers"]
    c.eq([s.get("address") for s in servers], ["localhost"], "/config shows the host name as written")
    rc, out, err = plan("-m", env.manifest_dir, "--against", f"http://127.0.0.1:{albd.admin_port}")
    c.ok(rc == 0, "plan against the running albd: no changes (resolution is not a change)", 0, (rc, out[-800:], err[-500:]))
    rc, out, err = plan("-m", env.manifest_dir)
    c.ok("localhost" in out and BAD in out, "plan shows the host names", "localhost and " + BAD, out[-1500:])

    # A name that fails is tried again soon (1 s, then 2 s, ...), not only
    # every 30 s: its lastAttempt moves within a few seconds.
    first = e.get("lastAttempt") if e else None
    later = first
    end = time.monotonic() + scaled(6)
    while time.monotonic() < end and later == first:
        time.sleep(0.2)
        later = next((x.get("lastAttempt") for x in host_names(albd, "mixed") or [] if x.get("name") == BAD), None)
    c.ok(first and later and later != first, f"{BAD} is retried within seconds after a failure",
         "a newer lastAttempt", (first, later))

    log = albd.stderr()
    c.ok(re.search(r"host name addresses changed: published generation \d+", log),
         "a resolution that changes addresses publishes a new generation", "a log line", log[-1500:])
    c.ok(albd.alive(), "albd is still running")
    c.ok(BAD in log, "albd logs the name that does not resolve", BAD, log[-1500:])
    albd.check_clean_exit(c)


run("resolves_server_host_names", body)
