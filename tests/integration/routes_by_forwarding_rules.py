#!/usr/bin/env python3
"""Forwarding rules over HTTP/1.1 (an HTTP listener) and HTTP/2 (an HTTPS
listener with h2): each condition type (host exact and wildcard, path,
header, query, cookie, method, source IP) sends the request to its rule's
group (several python3 backends say which); the first match by priority
wins, not the most specific; fixed responses and redirects are answered by
albd itself on both protocols (HEAD too); path tricks ("..", "//", escaped
letters, an escaped '/') cannot reach a rule they should not; an HTTP
listener whose defaultAction redirects to HTTPS is one line; after a reload
that moves the groups in the model, an unchanged listener's rules still
reach the right backends, and a changed rule applies."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (certificate, doc, echo_of, free_ports, http_listener,  # noqa: E402
                          https_listener, instance, run, server_group)


def fwd(*names):
    return {"forward": {"serverGroups": [{"name": n} for n in names]}}


def rules(moved_priority=60):
    return [
        {"name": "host-exact", "priority": 10, "conditions": {"host": ["API.example.com"]}, "actions": fwd("ga")},
        {"name": "host-wild", "priority": 20, "conditions": {"host": ["*.wild.example.com"]},
         "actions": fwd("gb")},
        {"name": "deny-admin", "priority": 30, "conditions": {"path": ["/admin/*"]},
         "actions": {"fixedResponse": {"code": 403, "contentType": "text/plain", "content": "denied"}}},
        {"name": "rewritten", "priority": 35, "conditions": {"path": ["/rw/*"]},
         "actions": {"forward": {"serverGroups": [{"name": "gc"}]},
                     "rewrite": {"host": "internal.example", "path": "/backend${path}", "query": "x=1&${query}"},
                     "insertHeaders": [{"name": "X-Route", "value": "rw"},
                                       {"name": "X-Ip", "valueType": "SystemDefined", "value": "ClientSrcIp"}],
                     "removeHeaders": ["X-Debug"]}},
        {"name": "public", "priority": 40, "conditions": {"path": ["/public/*"]}, "actions": fwd("gc")},
        {"name": "canary", "priority": 50, "conditions": {"header": {"name": "X-Env", "values": ["can*"]}},
         "actions": fwd("gd")},
        {"name": "moved", "priority": moved_priority, "conditions": {"path": ["/old/*"]},
         "actions": {"redirect": {"code": 308, "host": "new.example.com", "path": "/n${path}"}}},
        {"name": "query", "priority": 70, "conditions": {"query": [{"key": "ver", "value": "2"}]},
         "actions": fwd("ga")},
        {"name": "cookie", "priority": 80, "conditions": {"cookie": [{"key": "beta", "value": "1"}]},
         "actions": fwd("gb")},
        {"name": "no-delete", "priority": 90, "conditions": {"method": ["DELETE"]},
         "actions": {"fixedResponse": {"code": 405, "contentType": "application/json", "content": "{\"no\":1}"}}},
        {"name": "src-other", "priority": 100, "conditions": {"sourceIp": ["10.0.0.0/8"], "path": ["/src"]},
         "actions": fwd("ga")},
        {"name": "src-local", "priority": 110, "conditions": {"sourceIp": ["127.0.0.0/8", "::1"], "path": ["/src"]},
         "actions": fwd("gc")},
        # Broader than "public" but later: never reached for /public/*.
        {"name": "everything", "priority": 120, "conditions": {"path": ["/*"], "method": ["PATCH"]},
         "actions": fwd("gd")},
    ]


def body(env):
    c = env.check
    certs = env.certs()
    be = {n: env.backend(n) for n in ("web", "a", "b", "c", "d")}
    p_h1, p_h2, p_redir = free_ports(3)

    def manifests(extra_groups=(), moved_priority=60):
        groups = [server_group("web", [be["web"].addr])] + [
            server_group("g" + n, [be[n].addr]) for n in "abcd"] + list(extra_groups)
        redir = doc("Listener", "redir", {"instance": "test", "protocol": "HTTP", "port": p_redir,
                                          "defaultAction": {"redirect": {"protocol": "HTTPS", "port": "443", "code": 301}}})
        env.write_manifests(
            instance(), certificate("rsa", certs.rsa), *groups,
            http_listener("h1", p_h1, "web", rules=rules(moved_priority)),
            https_listener("h2", p_h2, "rsa", "web", http2=True, rules=rules(moved_priority)),
            redir)

    manifests()
    albd = env.start_albd(ports=(p_h1, p_h2, p_redir))

    def get(proto, path, *args):
        """(status, backend name or body text, response headers text) over one protocol."""
        hdrs = os.path.join(env.dir, "hdrs.txt")
        if proto == "h1":
            code, out, _ = env.curl(f"http://{env.host}:{p_h1}{path}", "--path-as-is", "-D", hdrs, *args)
        else:
            code, out, _ = env.curl(env.url(p_h2, path), "--http2", "--path-as-is", "-D", hdrs, *args)
        with open(hdrs, "rb") as f:
            head = f.read().decode(errors="replace").lower()
        e = echo_of(out)
        return code, (e["backend"] if "backend" in e else out.decode(errors="replace")), head

    cases = [
        # (what, path, curl args, expected status, expected backend or body)
        ("no rule matches: the default group", "/", (), 200, "web"),
        ("host exact, case-insensitive, port ignored", "/x", ("-H", "Host: api.EXAMPLE.com:1234"), 200, "a"),
        ("host wildcard", "/x", ("-H", "Host: a.b.wild.example.com"), 200, "b"),
        ("host wildcard needs a label before it", "/x", ("-H", "Host: wild.example.com"), 200, "web"),
        ("path wildcard, multi-level", "/public/a/b", (), 200, "c"),
        ("path is case-sensitive", "/PUBLIC/a", (), 200, "web"),
        ("fixed response", "/admin/x", (), 403, "denied"),
        ("header value wildcard", "/x", ("-H", "X-Env: canary-7"), 200, "d"),
        ("query, case-insensitive", "/x?a=1&VER=2", (), 200, "a"),
        ("query value must match", "/x?ver=3", (), 200, "web"),
        ("cookie", "/x", ("-H", "Cookie: a=b; beta=1"), 200, "b"),
        ("method fixed response (JSON)", "/x", ("-X", "DELETE"), 405, "{\"no\":1}"),
        ("source IP: the loopback client is not in 10/8 but in 127/8", "/src", (), 200, "c"),
        ("first match by priority, not specificity", "/public/x", ("-X", "PATCH"), 200, "c"),
        ("a later broad rule still matches the rest", "/other", ("-X", "PATCH"), 200, "d"),
        ("first match by priority: deny before PATCH /*", "/admin/x", ("-X", "PATCH"), 403, "denied"),
        # Path tricks: normalised before matching.
        ("'..' cannot leave the deny rule", "/public/../admin/x", (), 403, "denied"),
        ("escaped dots are dot segments", "/public/%2e%2E/admin/x", (), 403, "denied"),
        ("'//' cannot skip the deny rule", "//admin//x", (), 403, "denied"),
        ("an escaped letter cannot skip it", "/%61dmin/x", (), 403, "denied"),
        ("'..' does not reach public from elsewhere", "/public/../x", (), 200, "web"),
        ("an escaped '/' is refused", "/admin%2Fx", (), 400, None),
        ("a query is not part of the path", "/x?/admin/y", (), 200, "web"),
    ]
    for proto in ("h1", "h2"):
        for what, path, args, want_code, want in cases:
            code, got, _ = get(proto, path, *args)
            c.eq(code, want_code, f"{proto}: {what}: status")
            if want is not None:
                c.eq(got, want, f"{proto}: {what}")
        code, _, head = get(proto, "/old/p?q=1")
        c.eq(code, 308, f"{proto}: redirect status")
        scheme = "http" if proto == "h1" else "https"
        port = p_h1 if proto == "h1" else p_h2
        c.ok(f"location: {scheme}://new.example.com:{port}/n/old/p?q=1" in head,
             f"{proto}: redirect Location with ${{path}} and ${{query}}",
             f"{scheme}://new.example.com:{port}/n/old/p?q=1", head)
        code, _, head = get(proto, "/admin/x", "-I")
        c.eq(code, 403, f"{proto}: HEAD gets the fixed response's head")
        c.ok("content-length: 6" in head, f"{proto}: ... with its length", "content-length: 6", head)

    # Rewrite and header operations: the backend sees the rewritten request.
    for proto in ("h1", "h2"):
        url = f"http://{env.host}:{p_h1}/rw/a?q=2" if proto == "h1" else env.url(p_h2, "/rw/a?q=2")
        extra = () if proto == "h1" else ("--http2",)
        code, out, _ = env.curl(url, *extra, "-H", "X-Debug: 1", "-H", "X-Route: forged")
        e = echo_of(out)
        c.eq((code, e.get("backend"), e.get("path")), (200, "c", "/backend/rw/a?x=1&q=2"),
             f"{proto}: rewrite changes what the backend gets")
        hv = {k.lower(): v for k, v in e.get("headers", [])}
        c.eq(hv.get("host"), "internal.example", f"{proto}: ... its Host too")
        c.eq((hv.get("x-route"), hv.get("x-ip"), "x-debug" in hv), ("rw", "127.0.0.1", False),
             f"{proto}: inserted headers replace the client's, removed ones are gone")

    # HTTP/1.1 keep-alive goes on after an answer albd gave itself.
    conn = env.connection(p_h1, tls=False)
    conn.request("GET", "/admin/x")
    r = conn.getresponse()
    first = (r.status, r.read())
    conn.request("GET", "/public/y")
    r = conn.getresponse()
    second = (r.status, echo_of(r.read()).get("backend"))
    conn.close()
    c.eq((first, second), ((403, b"denied"), (200, "c")),
         "h1: the connection goes on after a fixed response (keep-alive)")

    # The everyday case: one line redirects HTTP to HTTPS.
    code, _, head = None, None, None
    hdrs = os.path.join(env.dir, "r.txt")
    code, _, _ = env.curl(f"http://{env.host}:{p_redir}/a/b?c=d", "-D", hdrs)
    with open(hdrs) as f:
        head = f.read().lower()
    c.eq(code, 301, "HTTP listener's default redirect")
    c.ok(f"location: https://{env.host}/a/b?c=d" in head, "... to HTTPS, same host, path and query",
         f"https://{env.host}/a/b?c=d", head)

    # /config shows the rules by name and priority.
    cfg = json.loads(albd.admin_get("/config")[1])
    lr = cfg["resources"]["Listener"]["h1"]["spec"]["rules"]
    c.eq([(r["name"], r["priority"]) for r in lr][:3], [("host-exact", 10), ("host-wild", 20), ("deny-admin", 30)],
         "/config lists the rules in priority order")

    # Reload: a group that sorts first moves every group in the model; the
    # unchanged listeners are copied and their rules must still reach the
    # same backends. Then a changed priority applies.
    gen = albd.generation()
    manifests(extra_groups=[server_group("a0", [be["web"].addr])])
    albd.wait_generation(gen)
    for proto in ("h1", "h2"):
        c.eq(get(proto, "/x", "-H", "Host: api.example.com")[1], "a", f"{proto}: after an unrelated reload, rules reach their groups")
        c.eq(get(proto, "/public/q")[1], "c", f"{proto}: ... every one")
    gen = albd.generation()
    manifests(extra_groups=[server_group("a0", [be["web"].addr])], moved_priority=5)
    albd.wait_generation(gen)
    # "moved" (/old/*) now comes before host-exact.
    code, _, _ = get("h1", "/old/x", "-H", "Host: api.example.com")
    c.eq(code, 308, "a changed priority applies after the reload")
    albd.check_clean_exit(c)


run("routes_by_forwarding_rules", body)
