#!/usr/bin/env python3
"""A rule's cors action over HTTP/1.1 and HTTP/2: albd answers a preflight
(OPTIONS with Origin and Access-Control-Request-Method) itself with 204
and the configured Access-Control-* fields, never reaching the backend;
an Origin not allowed gets the 204 without them; a forwarded request with
an allowed Origin gets Access-Control-Allow-Origin (the Origin echoed),
-Allow-Credentials, -Expose-Headers and Vary: Origin added to the
backend's response, also when the response is compressed (the two
response filters chained); without Origin or with another one the
response is unchanged; "*" without credentials answers "*"; an OPTIONS
that is not a preflight is forwarded; /config shows the action."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (certificate, free_ports, http_listener, https_listener,  # noqa: E402
                          instance, run, scaled, server_group)

ORIGIN = "https://app.example.com"


def rules():
    fwd = {"serverGroups": [{"name": "web"}]}
    return [
        {"name": "api", "priority": 1, "conditions": {"path": ["/api/*"]},
         "actions": {"forward": fwd, "cors": {
             "allowOrigin": [ORIGIN, "http://other.example:8080"],
             "allowMethods": ["GET", "PUT"], "allowHeaders": ["X-Token", "Content-Type"],
             "exposeHeaders": ["X-Total"], "allowCredentials": True, "maxAge": 600}}},
        {"name": "open", "priority": 2, "conditions": {"path": ["/open/*"]},
         "actions": {"forward": fwd, "cors": {"allowOrigin": ["*"], "allowCredentials": False}}},
    ]


def body(env):
    c = env.check
    certs = env.certs()
    be = env.backend("web")
    p_h1, p_h2 = free_ports(2)
    comp = {"gzip": True, "brotli": True}
    env.write_manifests(instance(), certificate("rsa", certs.rsa), server_group("web", [be.addr]),
                        http_listener("h1", p_h1, "web", rules=rules(), compression=comp),
                        https_listener("h2", p_h2, "rsa", "web", http2=True, rules=rules(),
                                       compression=comp))
    albd = env.start_albd(ports=(p_h1, p_h2))
    cfg = json.loads(albd.admin_get("/config")[1])
    cors = cfg["resources"]["Listener"]["h1"]["spec"]["rules"][0]["actions"].get("cors")
    c.eq(cors, {"allowOrigin": [ORIGIN, "http://other.example:8080"], "allowMethods": ["GET", "PUT"],
                "allowHeaders": ["X-Token", "Content-Type"], "exposeHeaders": ["X-Total"],
                "allowCredentials": True, "maxAge": 600}, "/config shows the cors action")

    def req(proto, path, *args):
        """(status, {lowercased name: [values]}) of one request."""
        port = p_h1 if proto == "h1" else p_h2
        url = f"http://{env.host}:{port}{path}" if proto == "h1" else f"https://{env.host}:{port}{path}"
        hdrs = os.path.join(env.dir, "h.txt")
        argv = ["curl", "-sS", "--max-time", str(int(scaled(15))), "--cacert", certs.ca.cert,
                "--resolve", f"{env.host}:{port}:127.0.0.1", "-D", hdrs, "-o", os.devnull,
                "-w", "%{http_code}"]
        argv.append("--http2" if proto == "h2" else "--http1.1")
        r = subprocess.run(argv + list(args) + [url], capture_output=True, text=True,
                           timeout=scaled(30))
        fields = {}
        with open(hdrs) as f:
            for line in f:
                if ":" in line and not line.startswith("HTTP/"):
                    k, v = line.split(":", 1)
                    fields.setdefault(k.strip().lower(), []).append(v.strip())
        return int(r.stdout or 0), fields

    def one(f, name):
        v = f.get(name, [])
        return v[0] if len(v) == 1 else v

    pre = ["-X", "OPTIONS", "-H", "Access-Control-Request-Method: PUT",
           "-H", "Access-Control-Request-Headers: x-token"]
    for proto in ("h1", "h2"):
        n0 = be.count()
        st, f = req(proto, "/api/items", "-H", f"Origin: {ORIGIN}", *pre)
        c.eq(st, 204, f"{proto}: a preflight is answered 204")
        c.eq(one(f, "access-control-allow-origin"), ORIGIN, f"{proto}: preflight echoes the allowed Origin")
        c.eq(one(f, "access-control-allow-methods"), "GET, PUT", f"{proto}: preflight Allow-Methods")
        c.eq(one(f, "access-control-allow-headers"), "X-Token, Content-Type",
             f"{proto}: preflight Allow-Headers")
        c.eq(one(f, "access-control-max-age"), "600", f"{proto}: preflight Max-Age")
        c.eq(one(f, "access-control-allow-credentials"), "true", f"{proto}: preflight Allow-Credentials")
        c.eq(one(f, "vary"), "Origin", f"{proto}: preflight Vary: Origin")
        st, f = req(proto, "/api/items", "-H", "Origin: https://evil.example", *pre)
        c.eq(st, 204, f"{proto}: a preflight from another Origin is answered 204 too")
        c.eq([k for k in f if k.startswith("access-control-")], [],
             f"{proto}: ... without any Access-Control-* field")
        c.eq(be.count(), n0, f"{proto}: no preflight reached the backend")

        st, f = req(proto, "/api/get", "-H", f"Origin: {ORIGIN}")
        c.eq(st, 200, f"{proto}: a request with an allowed Origin is forwarded")
        c.eq(be.count(), n0 + 1, f"{proto}: ... to the backend")
        c.eq(one(f, "access-control-allow-origin"), ORIGIN, f"{proto}: response gets Allow-Origin")
        c.eq(one(f, "access-control-allow-credentials"), "true", f"{proto}: ... Allow-Credentials")
        c.eq(one(f, "access-control-expose-headers"), "X-Total", f"{proto}: ... Expose-Headers")
        c.ok("Origin" in f.get("vary", []), f"{proto}: ... Vary: Origin", "Origin", f.get("vary"))
        c.eq(one(f, "content-type"), "application/json", f"{proto}: the backend's fields stay")

        st, f = req(proto, "/api/big?bytes=20000", "-H", "Origin: HTTP://OTHER.example:8080",
                    "-H", "Accept-Encoding: br")
        c.eq(st, 200, f"{proto}: a compressed response with an allowed Origin")
        c.eq(one(f, "content-encoding"), "br", f"{proto}: ... is compressed")
        c.eq(one(f, "access-control-allow-origin"), "HTTP://OTHER.example:8080",
             f"{proto}: ... and has Allow-Origin (origins compare case-insensitively)")

        for what, args in (("without Origin", []), ("with another Origin", ["-H", "Origin: https://x.example"])):
            st, f = req(proto, "/api/get", *args)
            c.eq(st, 200, f"{proto}: a request {what} is forwarded")
            c.eq([k for k in f if k.startswith("access-control-")], [],
                 f"{proto}: ... and its response has no Access-Control-* field")

        st, f = req(proto, "/open/x", "-H", f"Origin: {ORIGIN}")
        c.eq(one(f, "access-control-allow-origin"), "*", f"{proto}: allowOrigin * without credentials: *")
        c.eq(f.get("access-control-allow-credentials"), None, f"{proto}: ... and no Allow-Credentials")

        n1 = be.count()
        st, f = req(proto, "/api/opt", "-X", "OPTIONS", "-H", f"Origin: {ORIGIN}")
        c.eq(st, 200, f"{proto}: an OPTIONS without Access-Control-Request-Method is forwarded")
        c.eq(be.count(), n1 + 1, f"{proto}: ... to the backend")
        st, f = req(proto, "/other", "-H", f"Origin: {ORIGIN}", *pre)
        c.eq(be.count(), n1 + 2, f"{proto}: a preflight no cors rule matches is forwarded")


run("answers_cors_preflight_and_adds_cors_headers", body)
