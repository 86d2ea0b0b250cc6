#!/usr/bin/env python3
"""albd terminates TLS (RSA and ECDSA certificates) and plain HTTP, and
forwards requests to the backend: the client gets the backend's answer."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (certificate, echo_header, echo_of, hashlib, http_listener,  # noqa: E402
                          https_listener, instance, free_ports, run, server_group)


def body(env):
    c = env.check
    certs = env.certs()
    be = env.backend("a")
    p_rsa, p_ec, p_http = free_ports(3)
    env.write_manifests(
        instance(),
        certificate("rsa", certs.rsa),
        certificate("ecdsa", certs.ecdsa),
        server_group("web", [be.addr]),
        https_listener("web-rsa", p_rsa, "rsa", "web"),
        https_listener("web-ec", p_ec, "ecdsa", "web"),
        http_listener("web-http", p_http, "web"))
    albd = env.start_albd(ports=(p_rsa, p_ec, p_http))

    # curl verifies the chain against our CA and the name albd.test.
    code, out, err = env.curl(env.url(p_rsa, "/hello?x=1"), "-H", "X-Test: one")
    c.eq(code, 200, "HTTPS (RSA) GET answers 200")
    e = echo_of(out)
    c.eq(e.get("backend"), "a", "the answer comes from the backend")
    c.eq(e.get("method"), "GET", "backend saw method GET")
    c.eq(e.get("path"), "/hello?x=1", "backend saw path and query unchanged")
    c.eq(echo_header(e, "X-Test"), ["one"], "backend saw the client's header")
    c.eq([h.split(":")[0] for h in echo_header(e, "Host")], [env.host], "backend saw the client's Host")
    if code != 200:
        print("curl stderr:", err)

    # ECDSA listener, with a certificate check done by Python's ssl.
    s = env.tls_socket(p_ec)
    try:
        c.ok("ECDSA" in s.cipher()[0] or s.version() == "TLSv1.3", "ECDSA listener negotiates an ECDSA suite",
             "ECDSA cipher (or TLS 1.3)", s.cipher())
        peer = s.getpeercert()
        c.ok(any(v == env.host for k, v in peer.get("subjectAltName", ())), "ECDSA listener presents our certificate",
             env.host, peer.get("subjectAltName"))
    finally:
        s.close()
    st, hdrs, b = env.https("GET", p_ec, "/ec")
    c.eq(st, 200, "HTTPS (ECDSA) GET answers 200")
    c.eq(echo_of(b).get("path"), "/ec", "ECDSA listener reaches the backend")

    # A POST body arrives intact.
    payload = os.urandom(100_000)
    st, hdrs, b = env.https("POST", p_rsa, "/post", body=payload, headers={"Content-Type": "application/octet-stream"})
    e = echo_of(b)
    c.eq(st, 200, "HTTPS POST answers 200")
    c.eq(e.get("body_len"), len(payload), "backend got the whole POST body")
    c.eq(e.get("body_sha256"), hashlib.sha256(payload).hexdigest(), "backend got the POST body unchanged")

    # Backend status codes pass through.
    st, _, _ = env.https("GET", p_rsa, "/missing?status=404")
    c.eq(st, 404, "a backend 404 reaches the client")

    # Plain HTTP listener.
    code, out, err = env.curl(env.url(p_http, "/plain", tls=False))
    c.eq(code, 200, "HTTP GET answers 200")
    c.eq(echo_of(out).get("path"), "/plain", "HTTP listener reaches the backend")

    c.eq(be.count(), 5, "the backend saw each of the 5 requests once")
    albd.check_clean_exit(c)


run("serves_https_through_proxy", body)
