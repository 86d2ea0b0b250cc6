#!/usr/bin/env python3
"""Retrieve Client IP (xForwardedFor.clientSourceIps), end to end over
HTTP/1.1 and HTTP/2: 0.0.0.0/0 takes the leftmost X-Forwarded-For address;
a trusted list (IPv4 and IPv6 ranges) walks from the right and takes the
first address not in it; several X-Forwarded-For fields are one list;
ports and brackets are stripped; an unparsable element, an all-trusted
chain longer than 64 hops or no header gives the peer; 1,000 entries are
handled. albd's debug log names the retrieved address per request (the
address SourceIp, Sch and access logs use); the recording backend checks
that X-Forwarded-For still gains the last hop (the peer, as the reference
says of Append) and that nothing else changes. A listener without the
feature always uses the peer, and /config shows the settings."""
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (certificate, echo_of, free_ports, https_listener, instance,  # noqa: E402
                          run, scaled, server_group)
from raw_backend import curl_run  # noqa: E402


def body(env):
    c = env.check
    certs = env.certs()
    be = env.backend("rec")
    p_left, p_walk, p_off = free_ports(3)
    env.write_manifests(
        instance(),
        certificate("rsa", certs.rsa),
        server_group("web", [be.addr]),
        https_listener("left", p_left, "rsa", "web", http2=True,
                       xForwardedFor={"clientSourceIps": {"enabled": True, "trusted": ["0.0.0.0/0"]}}),
        https_listener("walk", p_walk, "rsa", "web", http2=True,
                       xForwardedFor={"clientSourceIps": {
                           "enabled": True, "trusted": ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]}}),
        https_listener("off", p_off, "rsa", "web", http2=True,
                       xForwardedFor={"clientSourceIps": {"enabled": False, "trusted": ["10.0.0.0/8"]}}))
    albd = env.start_albd(ports=(p_left, p_walk, p_off), args=("--log-level", "debug"))

    st, raw = albd.admin_get("/config")
    seen = json.dumps(json.loads(raw))
    c.ok('"trusted": ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]' in seen,
         "/config shows the trusted list", seen=seen[:300])

    seq = [0]

    def h1(port, fields):
        seq[0] += 1
        path = f"/ip/{seq[0]}"
        conn = env.connection(port)
        try:
            conn.putrequest("GET", path)
            for f in fields:
                conn.putheader("X-Forwarded-For", f)
            conn.endheaders()
            r = conn.getresponse()
            return path, r.status, echo_of(r.read())
        finally:
            conn.close()

    def h2(port, fields):
        seq[0] += 1
        path = f"/ip/{seq[0]}"
        args = []
        for f in fields:
            args += ["-H", f"X-Forwarded-For: {f}"]
        rc, code, b, err, version = curl_run(env, env.url(port, path), *args, http2=True,
                                             timeout=scaled(10))
        return path, (code if version == "2" else f"{code} over HTTP/{version}"), echo_of(b)

    def retrieved(path):
        """The client IP albd's debug log names for path (waits a little)."""
        end = time.monotonic() + scaled(5)
        pat = re.compile(r"client IP (\S+) for " + re.escape(path) + r" \((.*?); peer")
        while time.monotonic() < end:
            m = pat.search(albd.stderr())
            if m:
                return m.group(1)
            time.sleep(0.05)
        return None

    # 1,000 entries, as four fields of 250 (one field line stays under
    # albd's 8 KiB limit per HTTP/1.1 field; the fields are one list).
    many = [", ".join(f"10.{i // 250}.{i % 250}.1" for i in range(k, k + 250))
            for k in range(0, 1000, 250)]
    cases = [
        # (listener, X-Forwarded-For fields, the retrieved address)
        (p_left, ["203.0.113.9, 10.0.0.1, 10.0.0.2"], "203.0.113.9"),
        (p_left, ["2001:db8:1::9, 10.0.0.1"], "2001:db8:1::9"),
        (p_left, ["198.51.100.1", "10.0.0.1"], "198.51.100.1"),
        (p_left, ["garbage, 203.0.113.9"], "127.0.0.1"),
        (p_left, ["203.0.113.9:8080, 10.0.0.1"], "203.0.113.9"),
        (p_left, [" , 198.51.100.3"], "198.51.100.3"),
        (p_left, [], "127.0.0.1"),
        (p_left, many, "10.0.0.1"),
        (p_walk, ["203.0.113.9, 10.0.0.1, 10.0.0.2"], "203.0.113.9"),
        (p_walk, ["203.0.113.9, 198.51.100.4, 10.0.0.2"], "198.51.100.4"),
        (p_walk, ["203.0.113.9, 192.0.2.7"], "203.0.113.9"),
        (p_walk, ["203.0.113.9, 192.0.2.8"], "192.0.2.8"),
        (p_walk, ["2400:cb00::1, 2001:db8::5, 10.9.9.9"], "2400:cb00::1"),
        (p_walk, ["[2400:cb00::2]:443, [2001:db8::5]"], "2400:cb00::2"),
        (p_walk, ["203.0.113.9", "10.0.0.1, 10.0.0.2"], "203.0.113.9"),
        (p_walk, ["10.0.0.3, 10.0.0.1"], "10.0.0.3"),
        (p_walk, ["203.0.113.9, unknown, 10.0.0.1"], "127.0.0.1"),
        (p_walk, ["203.0.113.9, 10.0.0.1, fe80::1%eth0"], "127.0.0.1"),
        (p_walk, ["203.0.113.9, [10.0.0.1]"], "127.0.0.1"),
        (p_walk, ["203.0.113.9:99999"], "127.0.0.1"),
        (p_walk, many, "127.0.0.1"),
        (p_walk, ["198.51.100.200"] + many, "127.0.0.1"),
        (p_walk, many + ["198.51.100.201"], "198.51.100.201"),
        (p_walk, ["198.51.100.200, " + ", ".join(f"10.0.0.{i}" for i in range(1, 64))],
         "198.51.100.200"),
        (p_walk, [], "127.0.0.1"),
    ]
    for proto, call in (("HTTP/1.1", h1), ("HTTP/2", h2)):
        for port, fields, want in cases:
            what = f"{proto} {'leftmost' if port == p_left else 'walk'} {[f[:60] for f in fields]}"
            path, status, echo = call(port, fields)
            c.eq(status, 200, f"{what}: 200")
            c.eq(retrieved(path), want, f"{what}: the client IP is {want}")
            xff = [v for k, v in echo.get("headers", []) if k.lower() == "x-forwarded-for"]
            sent = ", ".join(fields)
            c.ok(len(xff) == 1 and xff[0].endswith("127.0.0.1"),
                 f"{what}: X-Forwarded-For ends with the last hop (the peer)", seen=[x[-80:] for x in xff])
            if fields and len(sent) < 200:
                c.eq(xff, [", ".join(f.strip() for f in fields if f.strip()) + ", 127.0.0.1"],
                     f"{what}: the client's chain is passed on, then the peer")
        # The feature off: the peer, no log line.
        path, status, _ = call(p_off, ["203.0.113.9"])
        c.eq(status, 200, f"{proto} off: 200")
        time.sleep(0.2)
        c.ok(f" for {path} " not in albd.stderr(), f"{proto} off: no client-IP retrieval")
    be.stop()
    albd.check_clean_exit(c)


run("retrieves_client_ip_from_x_forwarded_for", body)
