#!/usr/bin/env python3
"""Mutual TLS: a client certificate from the listener's CA is accepted and
its subject, issuer, fingerprint and verify result reach the backend in the
X-Forwarded-Clientcert-* headers (under the names the listener gives them);
no certificate, or an untrusted one, ends the handshake. A client can never
inject those headers. On a mutual-TLS or strictSni listener, a Host the SNI
certificate does not cover gets 421 (domain fronting)."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (certificate, doc, echo_header, echo_of, free_ports, https_listener,  # noqa: E402
                          instance, run, server_group)


def fingerprint(pem):
    out = subprocess.run(["openssl", "x509", "-in", pem, "-noout", "-fingerprint", "-sha256"],
                         stdout=subprocess.PIPE, check=True, timeout=30).stdout.decode()
    return out.strip().split("=", 1)[1].replace(":", "").lower()


FORGED = ["-H", "X-Forwarded-Clientcert-subjectdn: CN=forged", "-H", "x-forwarded-clientcert-issuerdn: CN=forged",
          "-H", "X-Forwarded-Clientcert-Fingerprint: 00", "-H", "X-Forwarded-Clientcert-clientverify: SUCCESS",
          "-H", "X-Client-Issuer: CN=forged"]


def body(env):
    c = env.check
    certs = env.certs()
    client = certs.issue("client", [], client=True, cn="client one")
    rogue = certs.issue("rogue", [], client=True, cn="rogue", self_signed=True)
    be = env.backend("a")
    p_mtls, p_plain, p_strict = free_ports(3)
    cc_headers = {"clientCert": {"subjectDN": {"enabled": True},
                                 "issuerDN": {"enabled": True, "name": "X-Client-Issuer"},
                                 "fingerprint": {"enabled": True},
                                 "clientVerify": {"enabled": True}}}
    env.write_manifests(
        instance(),
        certificate("main", certs.rsa),
        doc("Certificate", "client-ca", {"type": "CA", "source": {"files": {"certificate": certs.ca.cert}}}),
        server_group("web", [be.addr]),
        https_listener("mtls", p_mtls, "main", "web", headers=cc_headers,
                       tls={"certificate": "main", "policy": "tls_cipher_policy_1_2_strict_with_1_3",
                            "mutualAuthentication": {"enabled": True, "caCertificates": ["client-ca"]}}),
        https_listener("plain", p_plain, "main", "web"),
        https_listener("strict", p_strict, "main", "web", tls={"certificate": "main", "strictSni": True}))
    albd = env.start_albd(ports=(p_mtls, p_plain, p_strict))
    with_cert = ["--cert", client.cert, "--key", client.key]

    # Accepted, with the headers at the backend (TLS 1.3 and 1.2).
    for ver in ("--tlsv1.3", "--tlsv1.2"):
        code, out, err = env.curl(env.url(p_mtls, "/m"), ver, "--tls-max", ver[6:], *with_cert, *FORGED)
        c.eq(code, 200, f"{ver}: a client certificate from the CA is accepted")
        e = echo_of(out)
        c.eq(echo_header(e, "X-Forwarded-Clientcert-subjectdn"), ["CN=client one"],
             f"{ver}: backend sees the subject DN (and not the client's forged copy)")
        c.eq(echo_header(e, "X-Client-Issuer"), ["CN=albd test CA"],
             f"{ver}: backend sees the issuer DN under the listener's name (no forged copy)")
        c.eq(echo_header(e, "X-Forwarded-Clientcert-issuerdn"), [],
             f"{ver}: the default issuer header name is not passed on when renamed")
        c.eq(echo_header(e, "X-Forwarded-Clientcert-fingerprint"), [fingerprint(client.cert)],
             f"{ver}: backend sees the SHA-256 fingerprint")
        c.eq(echo_header(e, "X-Forwarded-Clientcert-clientverify"), ["SUCCESS"],
             f"{ver}: backend sees the verify result SUCCESS")
        if code != 200:
            print(err)

    # Refused: no certificate, an untrusted one.
    before = be.count()
    for ver in ("--tlsv1.3", "--tlsv1.2"):
        code, _, err = env.curl(env.url(p_mtls, "/none"), ver, "--tls-max", ver[6:])
        c.eq(code, 0, f"{ver}: no client certificate: the handshake fails")
        code, _, err = env.curl(env.url(p_mtls, "/rogue"), ver, "--tls-max", ver[6:],
                                "--cert", rogue.cert, "--key", rogue.key)
        c.eq(code, 0, f"{ver}: an untrusted client certificate: the handshake fails")
    c.eq(be.count(), before, "refused clients never reach the backend")

    # Domain fronting on the mutual-TLS listener.
    code, _, _ = env.curl(env.url(p_mtls, "/front"), *with_cert, "-H", "Host: evil.test")
    c.eq(code, 421, "mutual TLS: Host not covered by the SNI certificate -> 421")
    code, _, _ = env.curl(env.url(p_mtls, "/front"), *with_cert, "-H", f"Host: localhost:{p_mtls}")
    c.eq(code, 200, "mutual TLS: another name of the same certificate is fine")
    c.eq(be.count(), before + 1, "the misdirected request never reached the backend")

    # strictSni without mutual TLS; and a listener with neither.
    code, _, _ = env.curl(env.url(p_strict, "/s"), "-H", "Host: evil.test")
    c.eq(code, 421, "strictSni: Host not covered -> 421")
    code, out, _ = env.curl(env.url(p_strict, "/s"))
    c.eq(code, 200, "strictSni: the SNI name as Host -> 200")
    code, out, _ = env.curl(env.url(p_plain, "/p"), "-H", "Host: evil.test", *FORGED)
    c.eq(code, 200, "no mutual TLS, no strictSni: any Host is forwarded")
    e = echo_of(out)
    c.eq([k for k, v in e.get("headers", []) if k.lower().startswith("x-forwarded-clientcert")], [],
         "headers off: client-sent X-Forwarded-Clientcert-* are stripped anyway")
    c.eq(echo_header(e, "X-Client-Issuer"), ["CN=forged"],
         "a header name another listener uses for its alias passes where it means nothing")
    albd.check_clean_exit(c)


run("tls_mutual_auth", body)
