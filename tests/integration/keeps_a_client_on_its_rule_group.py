#!/usr/bin/env python3
"""Group-level stickiness of a forward rule (forward.stickySession) over
HTTP/1.1 and HTTP/2: a first request gets Set-Cookie
albd-group-<rule>=<group>; Max-Age=<timeoutSeconds>; requests carrying the
cookie all go to that group (whatever the weights say) and get no new
group cookie; a cookie naming a group the rule does not have is ignored
(a new choice, a new cookie); /config shows the setting."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (certificate, free_ports, http_listener, https_listener,  # noqa: E402
                          instance, run, scaled, server_group)

N = 16


def rules():
    return [{"name": "sticky", "priority": 1, "conditions": {"path": ["/s/*"]},
             "actions": {"forward": {"serverGroups": [{"name": "ga", "weight": 50}, {"name": "gb", "weight": 50}],
                                     "stickySession": {"enabled": True, "timeoutSeconds": 120}}}}]


def body(env):
    c = env.check
    certs = env.certs()
    ba, bb = env.backend("a"), env.backend("b")
    p_h1, p_h2 = free_ports(2)
    st = {"enabled": True, "type": "Insert", "cookieTimeoutSeconds": 100}
    env.write_manifests(instance(), certificate("rsa", certs.rsa),
                        server_group("ga", [ba.addr], stickySession=st),
                        server_group("gb", [bb.addr], stickySession=st),
                        http_listener("h1", p_h1, "ga", rules=rules()),
                        https_listener("h2", p_h2, "rsa", "ga", http2=True, rules=rules()))
    albd = env.start_albd(ports=(p_h1, p_h2))
    cfg = json.loads(albd.admin_get("/config")[1])
    fwd = cfg["resources"]["Listener"]["h1"]["spec"]["rules"][0]["actions"]["forward"]
    c.eq(fwd.get("stickySession"), {"enabled": True, "timeoutSeconds": 120}, "/config shows stickySession")

    def run_curl(proto, n, *args):
        """n requests on one connection: (codes, every Set-Cookie value)."""
        port = p_h1 if proto == "h1" else p_h2
        base = f"http://{env.host}:{port}" if proto == "h1" else f"https://{env.host}:{port}"
        hfile = os.path.join(env.dir, "h.txt")
        argv = ["curl", "-sS", "--max-time", str(int(scaled(15))), "--cacert", certs.ca.cert,
                "--resolve", f"{env.host}:{port}:127.0.0.1", "-w", "%{http_code}\\n", "-D", hfile,
                "--http2" if proto == "h2" else "--http1.1", *args]
        for i in range(n):
            argv += ["-o", os.devnull, f"{base}/s/{i}"]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=scaled(30))
        cookies = []
        with open(hfile) as f:
            for line in f:
                if line.lower().startswith("set-cookie:"):
                    cookies.append(line.split(":", 1)[1].strip())
        return [int(x) for x in r.stdout.split()], cookies

    for proto in ("h1", "h2"):
        codes, cookies = run_curl(proto, 1)
        gc = [x for x in cookies if x.startswith("albd-group-sticky=")]
        c.eq(codes, [200], f"{proto}: a first request is served")
        c.ok(len(gc) == 1 and gc[0].split(";")[0] in ("albd-group-sticky=ga", "albd-group-sticky=gb")
             and "Max-Age=120" in gc[0], f"{proto}: ... and gets the group cookie", "one albd-group-sticky", cookies)
        for g, be, other in (("ga", ba, bb), ("gb", bb, ba)):
            n0, o0 = be.count(), other.count()
            codes, cookies = run_curl(proto, N, "-H", f"Cookie: albd-group-sticky={g}")
            c.eq(codes, [200] * N, f"{proto}: {N} requests with the {g} cookie are served")
            c.eq((be.count() - n0, other.count() - o0), (N, 0), f"{proto}: ... all by group {g}")
            c.eq([x for x in cookies if x.startswith("albd-group-")], [],
                 f"{proto}: ... with no new group cookie")
        codes, cookies = run_curl(proto, 1, "-H", "Cookie: albd-group-sticky=nope")
        c.eq(len([x for x in cookies if x.startswith("albd-group-sticky=g")]), 1,
             f"{proto}: a cookie naming another group gets a new choice and cookie")


run("keeps_a_client_on_its_rule_group", body)
