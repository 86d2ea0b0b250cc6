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
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (certificate, doc, echo_header, echo_of, free_ports, https_listener,  # noqa: E402
                          instance, run, scaled, server_group)


def fingerprint(pem):
    out = subprocess.run(["openssl", "x509", "-in", pem, "-noout", "-fingerprint", "-sha256"],
                         stdout=subprocess.PIPE, check=True, timeout=30).stdout.decode()
    return out.strip().split("=", 1)[1].replace(":", "").lower()


FORGED = ["-H", "X-Forwarded-Clientcert-subjectdn: CN=forged", "-H", "x-forwarded-clientcert-issuerdn: CN=forged",
          "-H", "X-Forwarded-Clientcert-Fingerprint: 00", "-H", "X-Forwarded-Clientcert-clientverify: SUCCESS",
          "-H", "X-Client-Issuer: CN=forged"]


def curl_rc(env, url, *args):
    """curl with our CA: (curl exit status, HTTP code, stderr)."""
    out = os.path.join(env.dir, "curl_rc.out")
    r = subprocess.run(["curl", "-sS", "--max-time", str(int(scaled(20))), "--cacert", env.certs().ca.cert,
                        "--resolve", f"{env.host}:{urllib.parse.urlsplit(url).port}:127.0.0.1", "-o", out,
                        "-w", "%{http_code}", *args, url],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=scaled(20) + 10)
    code = r.stdout.decode()
    return r.returncode, int(code) if code.isdigit() else 0, r.stderr.decode(errors="replace")


def body(env):
    c = env.check
    certs = env.certs()
    client = certs.issue("client", [], client=True, cn="client one")
    rogue = certs.issue("rogue", [], client=True, cn="rogue", self_signed=True)
    be = env.backend("a")
    p_mtls, p_plain, p_strict, p_h2 = free_ports(4)
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
        https_listener("strict", p_strict, "main", "web", tls={"certificate": "main", "strictSni": True}),
        https_listener("mtls-h2", p_h2, "main", "web", headers=cc_headers, http2=True,
                       tls={"certificate": "main",
                            "mutualAuthentication": {"enabled": True, "caCertificates": ["client-ca"]}}))
    albd = env.start_albd(ports=(p_mtls, p_plain, p_strict, p_h2))
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

    # Refused: no certificate, an untrusted one -- by albd's TLS alert,
    # not by any curl failure (a closed port or a client-side error would
    # also give no HTTP code). TLS 1.3 sends the alert after the client's
    # Finished, so curl usually sees it when reading (exit 56), TLS 1.2
    # during the handshake (exit 35). A correct client then succeeds on the
    # same run.
    before = be.count()
    for ver in ("--tlsv1.3", "--tlsv1.2"):
        want_rc = (56, 35) if ver == "--tlsv1.3" else (35,)
        rc, code, err = curl_rc(env, env.url(p_mtls, "/none"), ver, "--tls-max", ver[6:])
        alert = "alert certificate required" if ver == "--tlsv1.3" else "alert handshake failure"
        c.ok(rc in want_rc and alert in err, f"{ver}: no client certificate: albd ends the handshake ({alert})",
             f"curl exit {' or '.join(map(str, want_rc))}, '{alert}'", (rc, code, err.strip()[-200:]))
        rc, code, err = curl_rc(env, env.url(p_mtls, "/rogue"), ver, "--tls-max", ver[6:],
                                "--cert", rogue.cert, "--key", rogue.key)
        c.ok(rc in want_rc and "alert unknown ca" in err,
             f"{ver}: an untrusted client certificate: albd ends the handshake (alert unknown ca)",
             f"curl exit {' or '.join(map(str, want_rc))}, 'alert unknown ca'", (rc, code, err.strip()[-200:]))
        rc, code, err = curl_rc(env, env.url(p_mtls, "/again"), ver, "--tls-max", ver[6:], *with_cert)
        c.eq((rc, code), (0, 200), f"{ver}: a client with a certificate from the CA is served in the same run")
    c.eq(be.count(), before + 2, "refused clients never reach the backend (only the 2 accepted ones did)")
    c.eq([r["path"] for r in be.requests[before:]], ["/again", "/again"], "... and those were the accepted ones")

    # Domain fronting on the mutual-TLS listener.
    code, _, _ = env.curl(env.url(p_mtls, "/front"), *with_cert, "-H", "Host: evil.test")
    c.eq(code, 421, "mutual TLS: Host not covered by the SNI certificate -> 421")
    code, _, _ = env.curl(env.url(p_mtls, "/front"), *with_cert, "-H", f"Host: localhost:{p_mtls}")
    c.eq(code, 200, "mutual TLS: another name of the same certificate is fine")
    c.eq(be.count(), before + 3, "the misdirected request never reached the backend")

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
    # The same rules over HTTP/2 streams.
    # (a later -w replaces the harness's: the "code" is then curl's http_version)
    version, _, _ = env.curl(env.url(p_h2, "/h2"), "--http2", *with_cert, "-w", "%{http_version}")
    c.eq(version, 2, "HTTP/2 is negotiated on the mutual-TLS listener")
    code, out, err = env.curl(env.url(p_h2, "/h2"), "--http2", *with_cert, *FORGED)
    c.eq(code, 200, "HTTP/2: a client certificate from the CA is accepted")
    e = echo_of(out)
    c.eq(echo_header(e, "X-Forwarded-Clientcert-subjectdn"), ["CN=client one"],
         "HTTP/2: backend sees the subject DN and not the client's forged copy")
    c.eq(echo_header(e, "X-Forwarded-Clientcert-clientverify"), ["SUCCESS"],
         "HTTP/2: backend sees the verify result")
    code, _, _ = env.curl(env.url(p_h2, "/front"), "--http2", *with_cert, "-H", "Host: evil.test")
    c.eq(code, 421, "HTTP/2: :authority not covered by the SNI certificate -> 421")
    albd.check_clean_exit(c)


run("tls_mutual_auth", body)
