#!/usr/bin/env python3
"""A rule's trafficMirror over HTTP/1.1 and HTTP/2: the mirror group's
backend gets a copy of every matching request without a body (same
method, path and headers, X-Forwarded-For included) while the client gets
the primary group's answer; a mirror that never answers or is down does
not slow the client; requests the rule does not match, and requests with
a body (not mirrored, as documented), reach only the primary group;
/metrics counts the copies."""
import os
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (albd_binary, certificate, dead_port, doc, free_ports, header,  # noqa: E402
                          http_listener, https_listener, instance, log, run, scaled, server_group,
                          to_yaml)

N = 5  # requests per slow/down check


class Silent:
    """A backend that accepts, reads, and never answers (for 5 s)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.addr = self.sock.getsockname()
        self.accepted = 0
        self.lock = threading.Lock()
        self.stopping = False
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while not self.stopping:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
            threading.Thread(target=self._hold, args=(s,), daemon=True).start()

    def _hold(self, s):
        try:
            s.recv(65536)
            time.sleep(5)
        except OSError:
            pass
        s.close()

    def stop(self):
        self.stopping = True
        self.sock.close()


def rules(copy_to="mirror"):
    fwd = {"serverGroups": [{"name": "web"}]}
    return [
        {"name": "copy", "priority": 1, "conditions": {"path": ["/m/*"]},
         "actions": {"forward": fwd, "trafficMirror": {"serverGroups": [{"name": copy_to}]}}},
        {"name": "slow", "priority": 2, "conditions": {"path": ["/slow/*"]},
         "actions": {"forward": fwd, "trafficMirror": {"serverGroups": [{"name": "silent"}]}}},
        {"name": "down", "priority": 3, "conditions": {"path": ["/down/*"]},
         "actions": {"forward": fwd, "trafficMirror": {"serverGroups": [{"name": "dead"}]}}},
    ]


def body(env):
    c = env.check
    certs = env.certs()
    web = env.backend("web")
    mirror = env.backend("mirror")
    silent = Silent()
    p_h1, p_h2 = free_ports(2)
    dead = dead_port()
    env.write_manifests(instance(), certificate("rsa", certs.rsa),
                        server_group("web", [web.addr]), server_group("mirror", [mirror.addr]),
                        server_group("silent", [silent.addr]),
                        server_group("dead", [("127.0.0.1", dead)]),
                        http_listener("h1", p_h1, "web", rules=rules()),
                        https_listener("h2", p_h2, "rsa", "web", http2=True, rules=rules()))
    env.start_albd(ports=(p_h1, p_h2))

    def find(backend, path, method="GET"):
        for r in backend.requests:
            if r["path"] == path and r["method"] == method:
                return r
        return None

    def wait_for(backend, path, method="GET", timeout=None):
        end = time.monotonic() + (timeout or scaled(5))
        while time.monotonic() < end:
            r = find(backend, path, method)
            if r:
                return r
            time.sleep(0.05)
        return None

    for proto, base, extra in (("h1", f"http://{env.host}:{p_h1}", ["--http1.1"]),
                               ("h2", f"https://{env.host}:{p_h2}", ["--http2"])):
        path = f"/m/{proto}/a?x=1"
        code, out, _ = env.curl(base + path, *extra, "-H", "X-Test: copied")
        c.eq(code, 200, f"{proto}: a mirrored request is answered")
        c.ok(b'"backend": "web"' in out, f"{proto}: by the primary group", "web", out[:200])
        m = wait_for(mirror, path)
        c.ok(m is not None, f"{proto}: the mirror backend gets a copy", path,
             [r["path"] for r in mirror.requests])
        if m:
            c.eq(header(m["headers"], "X-Test"), ["copied"], f"{proto}: the copy keeps the headers")
            p = find(web, path)
            c.eq(header(m["headers"], "X-Forwarded-For"),
                 header(p["headers"], "X-Forwarded-For") if p else "?",
                 f"{proto}: the copy has the primary's X-Forwarded-For")
            c.ok(header(m["headers"], "X-Forwarded-For"), f"{proto}: ... which is set", "an address",
                 header(m["headers"], "X-Forwarded-For"))
        path = f"/m/{proto}/del"
        code = env.curl(base + path, *extra, "-X", "DELETE")[0]
        c.eq(code, 200, f"{proto}: DELETE answered")
        c.ok(wait_for(mirror, path, "DELETE") is not None, f"{proto}: DELETE is mirrored too",
             "copy", None)
        # A request with a body is not mirrored (README), a request no
        # mirroring rule matches neither.
        post = f"/m/{proto}/post"
        code = env.curl(base + post, *extra, "--data-binary", "hello")[0]
        c.eq(code, 200, f"{proto}: POST with a body answered")
        other = f"/other/{proto}"
        c.eq(env.curl(base + other, *extra)[0], 200, f"{proto}: an unmatched request is answered")
        # Send one more mirrored request after both: once its copy arrived,
        # those would have arrived too.
        marker = f"/m/{proto}/marker"
        env.curl(base + marker, *extra)
        c.ok(wait_for(mirror, marker) is not None, f"{proto}: the marker is mirrored", "copy", None)
        c.ok(find(mirror, post, "POST") is None, f"{proto}: a request with a body is not mirrored",
             None, post)
        c.ok(find(mirror, other) is None, f"{proto}: an unmatched request is not mirrored", None, other)
        c.ok(find(web, post, "POST") is not None, f"{proto}: the POST reached the primary", post, None)
        # A mirror that never answers, and one that is down, cost the
        # client nothing: N requests take far less than the 5 s it holds.
        for what, prefix in (("silent", "/slow/"), ("down", "/down/")):
            t0 = time.monotonic()
            codes = [env.curl(f"{base}{prefix}{proto}{i}", *extra)[0] for i in range(N)]
            spent = time.monotonic() - t0
            c.eq(codes, [200] * N, f"{proto}: a {what} mirror: every request answered")
            bound = scaled(2.5)
            log(f"{proto}: {N} requests with a {what} mirror took {spent:.3f} s")
            c.ok(spent < bound, f"{proto}: a {what} mirror does not slow the client",
                 f"< {bound:.1f} s for {N}", f"{spent:.2f} s")
    c.ok(silent.accepted >= 1, "the silent mirror got connections", ">= 1", silent.accepted)
    sent = env.albds[-1].metric('albd_mirror_requests_total{result="sent"}')
    c.ok(sent is not None and sent >= 6, "/metrics counts the copies answered", ">= 6", sent)
    failed = env.albds[-1].metric('albd_mirror_requests_total{result="failed"}')
    c.ok(failed is not None and failed >= N, "/metrics counts the copies that failed", f">= {N}", failed)
    # A reload that adds a group before the others leaves the listeners
    # unchanged (their rules are kept): the kept rule's mirror group must
    # follow the new configuration's groups.
    albd = env.albds[-1]
    gen = albd.generation()
    env.write_manifests(instance(), certificate("rsa", certs.rsa),
                        server_group("aaa-extra", [web.addr]),
                        server_group("web", [web.addr]), server_group("mirror", [mirror.addr]),
                        server_group("silent", [silent.addr]),
                        server_group("dead", [("127.0.0.1", dead)]),
                        http_listener("h1", p_h1, "web", rules=rules()),
                        https_listener("h2", p_h2, "rsa", "web", http2=True, rules=rules()))
    albd.signal(signal.SIGHUP)
    c.require(albd.wait_generation(gen) is not None, "the reload with another group serves")
    path = "/m/after-reload"
    c.eq(env.curl(f"http://{env.host}:{p_h1}{path}")[0], 200, "after the reload: answered")
    c.ok(wait_for(mirror, path) is not None, "after the reload: still mirrored to the mirror group",
         path, [r["path"] for r in mirror.requests][-3:])
    # /config shows the mirror; albd plan shows a changed mirror group.

    st, cfg = albd.admin_get("/config")
    c.ok(b'"trafficMirror"' in cfg and b'"silent"' in cfg, "/config shows each rule's trafficMirror",
         "trafficMirror", cfg[:300])
    other = os.path.join(env.dir, "plan-manifests")
    os.makedirs(other, exist_ok=True)
    docs = [instance(), certificate("rsa", certs.rsa), server_group("aaa-extra", [web.addr]),
            server_group("web", [web.addr]),
            server_group("mirror", [mirror.addr]), server_group("silent", [silent.addr]),
            server_group("dead", [("127.0.0.1", dead)]),
            http_listener("h1", p_h1, "web", rules=rules("silent")),
            https_listener("h2", p_h2, "rsa", "web", http2=True, rules=rules())]
    with open(os.path.join(other, "albd.yaml"), "w") as fh:
        fh.write("\n".join("---\n" + to_yaml(d) for d in docs) + "\n")
    p = subprocess.run([albd_binary(), "plan", "-m", other, "--against",
                        f"http://127.0.0.1:{albd.admin_port}"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=scaled(30), text=True)
    c.eq(p.returncode, 2, "albd plan exits 2 for a changed mirror group")
    want = 'spec.rules[copy].actions.trafficMirror.serverGroups[silent]: (none) → {"name": "silent"}'
    c.ok(want in p.stdout and "Plan: 0 to add, 1 to change" in p.stdout,
         "albd plan shows the mirror group's change (only)", want, p.stdout + p.stderr)
    silent.stop()


run("mirrors_requests_to_a_group", body)
