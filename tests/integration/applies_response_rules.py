#!/usr/bin/env python3
"""Response-direction rules over HTTP/1.1 and HTTP/2: a fixedResponse rule
on responseStatusCode 500-599 and a path replaces a backend's 5xx (status,
Content-Type, body; the backend's body, even a large one, is dropped and
the connection keeps serving), also for HEAD (no body) and for a request
whose path a request rule rewrote into the condition (response rules see
the rewritten path); a rule on a responseHeader value and status inserts
and removes response headers; responses no rule matches are unchanged;
/config shows the rules with direction Response."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (certificate, free_ports, http_listener, https_listener,  # noqa: E402
                          instance, run, scaled, server_group)


def rules():
    return [
        {"name": "rw", "priority": 5, "conditions": {"path": ["/old/*"]},
         "actions": {"forward": {"serverGroups": [{"name": "web"}]}, "rewrite": {"path": "/api${path}"}}},
        {"name": "hide-errors", "priority": 10, "direction": "Response",
         "conditions": {"path": ["/api/*"], "responseStatusCode": ["500-599"]},
         "actions": {"fixedResponse": {"code": 503, "contentType": "text/plain", "content": "sorry"}}},
        {"name": "tag-json", "priority": 20, "direction": "Response",
         "conditions": {"responseHeader": {"name": "content-type", "values": ["application/js*"]},
                        "responseStatusCode": ["200", "201-204"]},
         "actions": {"insertHeaders": [{"name": "X-Served", "value": "albd"}], "removeHeaders": ["Server"]}},
    ]


def body(env):
    c = env.check
    certs = env.certs()
    be = env.backend("web")
    p_h1, p_h2 = free_ports(2)
    env.write_manifests(instance(), certificate("rsa", certs.rsa), server_group("web", [be.addr]),
                        http_listener("h1", p_h1, "web", rules=rules()),
                        https_listener("h2", p_h2, "rsa", "web", http2=True, rules=rules()))
    albd = env.start_albd(ports=(p_h1, p_h2))
    cfg = json.loads(albd.admin_get("/config")[1])
    lr = cfg["resources"]["Listener"]["h1"]["spec"]["rules"]
    c.eq([(r["name"], r.get("direction")) for r in lr],
         [("rw", None), ("hide-errors", "Response"), ("tag-json", "Response")],
         "/config lists the response rules after the request rules")
    c.eq(lr[1]["conditions"].get("responseStatusCode"), ["500-599"], "/config: responseStatusCode")
    c.eq(lr[2]["actions"].get("removeHeaders"), ["Server"], "/config: a response rule's removeHeaders")

    def req(proto, paths, *args):
        """[(status, {lowercased name: [values]}, body)] of requests on one connection."""
        port = p_h1 if proto == "h1" else p_h2
        base = f"http://{env.host}:{port}" if proto == "h1" else f"https://{env.host}:{port}"
        argv = ["curl", "-sS", "--max-time", str(int(scaled(15))), "--cacert", certs.ca.cert,
                "--resolve", f"{env.host}:{port}:127.0.0.1", "-w", "%{http_code}\\n",
                "--http2" if proto == "h2" else "--http1.1", *args]
        hfile = os.path.join(env.dir, "h.txt")
        argv += ["-D", hfile]
        bodies = []
        for i, p in enumerate(paths):
            b = os.path.join(env.dir, f"b{i}.txt")
            if os.path.exists(b):
                os.unlink(b)
            argv += ["-o", b, base + p]
            bodies.append(b)
        r = subprocess.run(argv, capture_output=True, text=True, timeout=scaled(30))
        codes = [int(x) for x in r.stdout.split()]
        heads = []  # one dict per response head, in order (curl writes them all to one file)
        with open(hfile) as f:
            for line in f:
                if line.startswith("HTTP/"):
                    heads.append({})
                elif ":" in line and heads:
                    n, v = line.split(":", 1)
                    heads[-1].setdefault(n.strip().lower(), []).append(v.strip())
        res = []
        for k, b in enumerate(bodies):
            data = open(b, "rb").read() if os.path.exists(b) else b""
            res.append((codes[k] if k < len(codes) else 0, heads[k] if k < len(heads) else {}, data))
        return res

    for proto in ("h1", "h2"):
        (st, f, b), (st2, f2, b2) = req(proto, ["/api/a?status=500", "/api/big?bytes=300000&status=502"])
        c.eq((st, b, f.get("content-type")), (503, b"sorry", ["text/plain"]),
             f"{proto}: a backend 500 on /api/* is replaced by the fixed response")
        c.eq((st2, b2, f2.get("content-length")), (503, b"sorry", ["5"]),
             f"{proto}: ... a 502 with a 300 KB body too (its body dropped)")
        (st, f, b), = req(proto, ["/api/a?status=500"], "-I")
        c.eq((st, b"sorry" in b), (503, False), f"{proto}: HEAD gets the fixed status without body")
        (st, f, b), = req(proto, ["/old/y?status=504"])
        c.eq((st, b), (503, b"sorry"), f"{proto}: a path rewritten into /api/* is matched as rewritten")
        (st, f, b), = req(proto, ["/web/a?status=500"])
        c.eq(st, 500, f"{proto}: a 500 outside /api/* is unchanged")
        c.eq(f.get("x-served"), None, f"{proto}: ... and gets no inserted header")
        (st, f, b), = req(proto, ["/web/a"])
        c.eq(st, 200, f"{proto}: a 200 JSON response is forwarded")
        c.eq(f.get("x-served"), ["albd"], f"{proto}: ... with the inserted X-Served")
        c.eq(f.get("server"), None, f"{proto}: ... without the removed Server")
        c.eq(json.loads(b or b"{}").get("path"), "/web/a", f"{proto}: ... and the backend's body")
        (st, f, b), = req(proto, ["/web/a?status=404"])
        c.eq((st, f.get("x-served")), (404, None), f"{proto}: a 404 (status not in the rule) is unchanged")
        c.ok(f.get("server") is not None, f"{proto}: ... Server kept", "a Server field", f)
        (st, f, b), = req(proto, ["/web/big?bytes=1000"])
        c.eq((st, f.get("x-served")), (200, None),
             f"{proto}: a 200 of another Content-Type is unchanged")


run("applies_response_rules", body)
