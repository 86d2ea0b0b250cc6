#!/usr/bin/env python3
"""A rule's trafficLimit over HTTP/1.1 and HTTP/2: a burst of requests in
one second gets at most qps answers from the backend (twice that when the
burst crosses a one-second window), the rest 503 with ALB-QPS-Limited:
Limited, answered by albd itself; perIpQps limits one client address the
same way; a rule without a limit on the same listener is not limited."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (certificate, free_ports, http_listener, https_listener,  # noqa: E402
                          instance, run, scaled, server_group)

QPS, PER_IP, BURST = 4, 3, 24


def rules():
    fwd = {"serverGroups": [{"name": "web"}]}
    return [
        {"name": "total", "priority": 1, "conditions": {"path": ["/total/*"]},
         "actions": {"forward": fwd, "trafficLimit": {"qps": QPS}}},
        {"name": "per-ip", "priority": 2, "conditions": {"path": ["/ip/*"]},
         "actions": {"forward": fwd, "trafficLimit": {"qps": 1000, "perIpQps": PER_IP}}},
    ]


def body(env):
    c = env.check
    certs = env.certs()
    be = env.backend("web")
    p_h1, p_h2 = free_ports(2)
    env.write_manifests(instance(), certificate("rsa", certs.rsa), server_group("web", [be.addr]),
                        http_listener("h1", p_h1, "web", rules=rules()),
                        https_listener("h2", p_h2, "rsa", "web", http2=True, rules=rules()))
    env.start_albd(ports=(p_h1, p_h2))

    def burst(proto, path):
        """BURST requests on one connection: (codes, seconds spanned, header dump)."""
        base = f"http://{env.host}:{p_h1}" if proto == "h1" else f"https://{env.host}:{p_h2}"
        port = p_h1 if proto == "h1" else p_h2
        hdrs = os.path.join(env.dir, "h.txt")
        argv = ["curl", "-sS", "--cacert", certs.ca.cert, "--resolve", f"{env.host}:{port}:127.0.0.1",
                "-D", hdrs, "-w", "%{http_code}\\n"]
        if proto == "h2":
            argv.append("--http2")
        for i in range(BURST):
            argv += ["-o", os.devnull, f"{base}{path}{i}"]
        t0 = time.monotonic()
        r = subprocess.run(argv, capture_output=True, text=True, timeout=scaled(30))
        spanned = time.monotonic() - t0
        with open(hdrs) as f:
            head = f.read().lower()
        return [int(x) for x in r.stdout.split()], spanned, head

    for proto in ("h1", "h2"):
        for what, path, limit in (("qps", "/total/", QPS), ("perIpQps", "/ip/", PER_IP)):
            codes, spanned, head = burst(proto, path)
            ok = codes.count(200)
            windows = int(spanned) + 2  # a burst of s seconds touches at most s + 2 windows
            c.eq(len(codes), BURST, f"{proto} {what}: every request answered")
            c.ok(1 <= ok <= limit * windows, f"{proto} {what}: at most {limit} per second pass",
                 f"1..{limit * windows}", ok)
            c.ok(codes.count(503) == BURST - ok, f"{proto} {what}: the others get 503", BURST - ok, codes)
            c.ok("alb-qps-limited: limited" in head, f"{proto} {what}: 503 says ALB-QPS-Limited: Limited",
                 "alb-qps-limited: limited", head[-400:])
        code = env.curl(f"http://{env.host}:{p_h1}/other")[0]
        c.eq(code, 200, f"{proto}: a request no limited rule matches is served")


run("answers_503_over_rule_qps_limit", body)
