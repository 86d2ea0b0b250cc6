#!/usr/bin/env python3
"""Each system TLS policy (and a custom one) accepts exactly its TLS
versions, refuses ciphers it does not list, and renegotiation is refused.
TLS 1.0/1.1 really work where a policy names them (OpenSSL 3 hides them
behind security level 0, so the client asks with @SECLEVEL=0 too)."""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (certificate, doc, free_ports, https_listener, instance, run, s_client,  # noqa: E402
                          s_client_ok, server_group)

VERSIONS = {  # s_client flag -> name in its transcript
    "-tls1": "TLSv1",  # s_client's name for TLS 1.0
    "-tls1_1": "TLSv1.1",
    "-tls1_2": "TLSv1.2",
    "-tls1_3": "TLSv1.3",
}
POLICIES = {  # policy -> the versions it accepts (reference alb-api.md 5.1)
    "tls_cipher_policy_1_0": {"-tls1", "-tls1_1", "-tls1_2"},
    "tls_cipher_policy_1_1": {"-tls1_1", "-tls1_2"},
    "tls_cipher_policy_1_2": {"-tls1_2"},
    "tls_cipher_policy_1_2_strict": {"-tls1_2"},
    "tls_cipher_policy_1_2_strict_with_1_3": {"-tls1_2", "-tls1_3"},
    "modern": {"-tls1_2", "-tls1_3"},
}
LOW = "DEFAULT:@SECLEVEL=0"


def handshake(port, *args):
    """(completed, protocol, cipher) of one s_client handshake."""
    rc, out = s_client(port, "-servername", "albd.test", *args)
    # "Protocol :" is the negotiated version (absent in TLS 1.3 when no
    # ticket arrived before EOF); "New, X, Cipher is" names the cipher's
    # version, which is TLSv1.3 only for TLS 1.3 suites.
    proto = re.search(r"^\s*Protocol\s*:\s*(\S+)", out, re.M) or re.search(r"New, (TLSv1\.3), Cipher is", out)
    cipher = re.search(r"Cipher is (\S+)", out)
    return s_client_ok(out), proto and proto.group(1), cipher and cipher.group(1)


def body(env):
    c = env.check
    certs = env.certs()
    be = env.backend("a")
    ports = dict(zip(POLICIES, free_ports(len(POLICIES))))
    listeners = [https_listener(f"l{i}", ports[p], "main", "web",
                                tls={"certificate": "main", "policy": p}) for i, p in enumerate(POLICIES)]
    env.write_manifests(
        instance(),
        certificate("main", certs.rsa),
        doc("TLSPolicy", "modern", {"tlsVersions": ["TLSv1.2", "TLSv1.3"],
                                    "ciphers": ["ECDHE-RSA-AES128-GCM-SHA256", "TLS_AES_128_GCM_SHA256"]}),
        server_group("web", [be.addr]),
        *listeners)
    albd = env.start_albd(ports=tuple(ports.values()))

    # Versions: accepted exactly as the policy says, and really negotiated.
    for pol, accepted in POLICIES.items():
        for flag, name in VERSIONS.items():
            extra = ["-cipher", LOW] if flag in ("-tls1", "-tls1_1") else []
            ok, proto, _ = handshake(ports[pol], flag, *extra)
            if flag in accepted:
                c.eq((ok, proto), (True, name), f"{pol}: {name} accepted")
            else:
                c.eq(ok, False, f"{pol}: {name} refused")

    # Ciphers outside the policy are refused, those inside accepted.
    p12, strict, strict13, p10 = (ports["tls_cipher_policy_1_2"], ports["tls_cipher_policy_1_2_strict"],
                                  ports["tls_cipher_policy_1_2_strict_with_1_3"], ports["tls_cipher_policy_1_0"])
    c.eq(handshake(p12, "-tls1_2", "-cipher", "AES128-GCM-SHA256")[:1], (True,),
         "tls_cipher_policy_1_2: AES128-GCM-SHA256 (no forward secrecy) accepted")
    c.eq(handshake(strict, "-tls1_2", "-cipher", "AES128-GCM-SHA256")[:1], (False,),
         "tls_cipher_policy_1_2_strict: AES128-GCM-SHA256 refused")
    c.eq(handshake(strict, "-tls1_2", "-cipher", "ECDHE-RSA-AES256-SHA")[2], "ECDHE-RSA-AES256-SHA",
         "tls_cipher_policy_1_2_strict: ECDHE-RSA-AES256-SHA accepted")
    for port, pol in ((p12, "tls_cipher_policy_1_2"), (p10, "tls_cipher_policy_1_0"), (strict13, "strict_with_1_3")):
        c.eq(handshake(port, "-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305")[0],
             False, f"{pol}: DHE and CHACHA20 suites (in no policy) refused")
    c.eq(handshake(p10, "-tls1", "-cipher", "ECDHE-RSA-AES128-SHA:@SECLEVEL=0")[1:], ("TLSv1", "ECDHE-RSA-AES128-SHA"),
         "tls_cipher_policy_1_0: TLS 1.0 with ECDHE-RSA-AES128-SHA")
    c.eq(handshake(p10, "-tls1", "-cipher", "AES128-GCM-SHA256:@SECLEVEL=0")[0], False,
         "tls_cipher_policy_1_0: a TLS 1.2-only suite is refused on TLS 1.0")
    c.eq(handshake(strict13, "-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256")[1:],
         ("TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256"), "strict_with_1_3: TLS_CHACHA20_POLY1305_SHA256 accepted")
    modern = ports["modern"]
    c.eq(handshake(modern, "-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256")[2], "TLS_AES_128_GCM_SHA256",
         "custom policy: its TLS 1.3 suite accepted")
    c.eq(handshake(modern, "-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256")[0],
         False, "custom policy: TLS 1.3 suites it does not list refused")
    c.eq(handshake(modern, "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256")[2], "ECDHE-RSA-AES128-GCM-SHA256",
         "custom policy: its TLS 1.2 cipher accepted")
    c.eq(handshake(modern, "-tls1_2", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384:AES128-GCM-SHA256")[0], False,
         "custom policy: TLS 1.2 ciphers it does not list refused")

    # Renegotiation: the client asks ("R"), albd refuses.
    rc, out = s_client(p10, "-servername", "albd.test", "-tls1_2", data=b"R\n")
    c.ok("RENEGOTIATING" in out and "no renegotiation" in out, "a client-initiated renegotiation is refused",
         "RENEGOTIATING ... no renegotiation", out[-400:])
    c.ok("Compression: NONE" in out, "TLS compression is off", "Compression: NONE", out[-400:])

    # The listeners still serve HTTP after all that.
    code, _, _ = env.curl(env.url(strict13, "/after"))
    c.eq(code, 200, "a normal client still gets 200")
    albd.check_clean_exit(c)


run("tls_enforces_policies", body)
