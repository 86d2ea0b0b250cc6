#!/usr/bin/env python3
"""albd owns every forwarding-metadata header: a client's X-Forwarded-*
(Proto, Port, Host, Client-srcport, any other), SLB-ID, Forwarded and
X-Forwarded-Clientcert-* (and the listener's names for them), in any
spelling with '_' for '-', never reach a backend, over HTTP/1.1 and HTTP/2,
whether or not the listener sends the header; albd's own values arrive where
the listener enables them. X-Forwarded-For keeps its mode (Preserve passes
the client's value), but X_Forwarded_For is always dropped."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (certificate, doc, echo_header, echo_of, free_ports, https_listener,  # noqa: E402
                          instance, run, server_group)

# Every value carries "forged": none may arrive at the backend.
SPOOFED = [
    ("X-Forwarded-Proto", "forged-proto"),
    ("X-Forwarded-Port", "forged-1"),
    ("X-Forwarded-Host", "forged.example"),
    ("X-Forwarded-Client-srcport", "forged-2"),
    ("X-Forwarded-Server", "forged-server"),
    ("SLB-ID", "forged-slb"),
    ("Forwarded", "for=203.0.113.9;proto=https;by=forged"),
    ("X_Forwarded_For", "forged-xff"),
    ("X_Forwarded_Proto", "forged-proto2"),
    ("X-Forwarded_Host", "forged-host2"),
    ("slb_id", "forged-slb2"),
    ("X-Forwarded-Clientcert-subjectdn", "CN=forged1"),
    ("X_Forwarded_Clientcert_subjectdn", "CN=forged2"),
    ("X_Forwarded_Clientcert_clientverify", "forged-SUCCESS"),
    # The mtls listener's name for the subject DN: reserved there only
    # (elsewhere an ordinary header). "alias" stands for "forged" there.
    ("X-Client-DN", "CN=alias3"),
    ("X_Client_DN", "CN=alias4"),
]


def body(env):
    c = env.check
    certs = env.certs()
    client = certs.issue("client", [], client=True, cn="client one")
    be = env.backend("a")
    p_off, p_on, p_mtls = free_ports(3)
    env.write_manifests(
        instance(),
        certificate("rsa", certs.rsa),
        doc("Certificate", "client-ca", {"type": "CA", "source": {"files": {"certificate": certs.ca.cert}}}),
        server_group("web", [be.addr]),
        https_listener("off", p_off, "rsa", "web", http2=True, xForwardedFor={"mode": "Preserve"}),
        https_listener("on", p_on, "rsa", "web", http2=True, xForwardedFor={"mode": "Append"},
                       headers={"proto": True, "port": True, "host": True, "clientSrcPort": True,
                                "slbId": True}),
        https_listener("mtls", p_mtls, "rsa", "web", http2=True,
                       headers={"clientCert": {"subjectDN": {"enabled": True, "name": "X-Client-DN"},
                                               "clientVerify": {"enabled": True}}},
                       tls={"certificate": "rsa",
                            "mutualAuthentication": {"enabled": True, "caCertificates": ["client-ca"]}}))
    albd = env.start_albd(ports=(p_off, p_on, p_mtls))
    spoof_args = []
    for k, v in SPOOFED:
        spoof_args += ["-H", f"{k}: {v}"]

    dump = os.path.join(env.dir, "head.txt")

    def send(port, proto, path, *extra, alias_reserved=False):
        """One request with the spoofed headers; the backend's record of it."""
        n = be.count()
        code, out, err = env.curl(env.url(port, path), "--http1.1" if proto == "h1" else "--http2",
                                  "-D", dump, *spoof_args, *extra)
        c.eq(code, 200, f"{proto} {path}: answered 200")
        with open(dump, "rb") as f:
            first = f.readline().decode(errors="replace")
        want = "HTTP/1.1 " if proto == "h1" else "HTTP/2 "
        c.ok(first.startswith(want), f"{proto} {path}: the client spoke {want.strip()}", want, first)
        recs = [r for r in be.requests[n:] if r["path"] == path]
        c.eq(len(recs), 1, f"{proto} {path}: the backend got the request once")
        rec = recs[0] if recs else {"headers": []}
        marks = ("forged", "alias") if alias_reserved else ("forged",)
        forged = [[k, v] for k, v in rec["headers"] if any(m in v.lower() for m in marks)]
        c.eq(forged, [], f"{proto} {path}: no client copy of a forwarding header reaches the backend")
        return {"headers": rec["headers"]}

    for proto in ("h1", "h2"):
        # Nothing enabled: the client's copies still go; Preserve passes XFF.
        e = send(p_off, proto, f"/off-{proto}", "-H", "X-Forwarded-For: 198.51.100.1")
        for name in ("X-Forwarded-Proto", "X-Forwarded-Port", "X-Forwarded-Host", "SLB-ID", "Forwarded",
                     "X-Forwarded-Client-srcport"):
            c.eq(echo_header(e, name), [], f"{proto} off: no {name} at the backend")
        c.eq(echo_header(e, "X-Forwarded-For"), ["198.51.100.1"],
             f"{proto} off: Preserve passes the client's X-Forwarded-For untouched")
        c.eq(echo_header(e, "X_Forwarded_For"), [], f"{proto} off: X_Forwarded_For is dropped even in Preserve")
        c.eq(echo_header(e, "X-Client-DN"), ["CN=alias3"],
             f"{proto} off: another listener's client-certificate header name is an ordinary header here")

        # Everything enabled: albd's values, one of each.
        e = send(p_on, proto, f"/on-{proto}", "-H", "X-Forwarded-For: 198.51.100.1")
        c.eq(echo_header(e, "X-Forwarded-Proto"), ["https"], f"{proto} on: albd's X-Forwarded-Proto")
        c.eq(echo_header(e, "X-Forwarded-Port"), [str(p_on)], f"{proto} on: albd's X-Forwarded-Port")
        c.eq(echo_header(e, "X-Forwarded-Host"), [f"{env.host}:{p_on}"], f"{proto} on: albd's X-Forwarded-Host")
        c.eq(echo_header(e, "SLB-ID"), ["test"], f"{proto} on: albd's SLB-ID (the instance id)")
        srcport = echo_header(e, "X-Forwarded-Client-srcport")
        c.ok(len(srcport) == 1 and srcport[0].isdigit(), f"{proto} on: albd's X-Forwarded-Client-srcport",
             "one port number", srcport)
        c.eq(echo_header(e, "X-Forwarded-For"), ["198.51.100.1, 127.0.0.1"],
             f"{proto} on: Append joins the client's X-Forwarded-For and adds the client address")
        c.eq(echo_header(e, "Forwarded"), [], f"{proto} on: no Forwarded at the backend")

        # Client-certificate headers under the listener's name.
        e = send(p_mtls, proto, f"/mtls-{proto}", "--cert", client.cert, "--key", client.key,
                 alias_reserved=True)
        c.eq(echo_header(e, "X-Client-DN"), ["CN=client one"], f"{proto} mtls: albd's subject DN header")
        c.eq(echo_header(e, "X-Forwarded-Clientcert-clientverify"), ["SUCCESS"],
             f"{proto} mtls: albd's verify header")

    albd.check_clean_exit(c)


run("strips_forwarding_headers_from_clients", body)
