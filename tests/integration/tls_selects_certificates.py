#!/usr/bin/env python3
"""An HTTPS listener serves the certificate the client's SNI names: exact
names, wildcards one level deep, case-insensitive; the default certificate
without SNI or for an unknown name; and for one name with an ECDSA and an
RSA certificate, the one the client's signature algorithms allow."""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (certificate, free_ports, https_listener, instance, run, s_client,  # noqa: E402
                          s_client_ok, server_group)

RSA_ALGS = "rsa_pss_rsae_sha256:rsa_pkcs1_sha256"
EC_ALGS = "ecdsa_secp256r1_sha256"


def served(port, *args):
    """(subject CN, public key bits) of the certificate albd served, or (None, None)."""
    rc, out = s_client(port, *args)
    if not s_client_ok(out):
        return None, None
    cn = re.search(r"^subject=.*?CN\s*=\s*([^,\n]+)", out, re.M)
    bits = re.search(r"Server public key is (\d+) bit", out)
    return (cn.group(1).strip() if cn else None), (int(bits.group(1)) if bits else None)


def body(env):
    c = env.check
    certs = env.certs()  # rsa / ecdsa: CN albd.test, DNS albd.test + localhost
    other = certs.issue("other", ["other.test", "*.wild.test"])
    # Precedence: names x key types (CN tells them apart, key bits the type).
    exact_rsa = certs.issue("exact-rsa", ["exact.prec.test"])
    exact_ec = certs.issue("exact-ec", ["ecx.prec.test", "ecdsa-only.test"], ec=True)
    wild_ec = certs.issue("wild-ec", ["*.prec.test"], ec=True)
    wild_rsa = certs.issue("wild-rsa", ["*.prec.test"])
    be = env.backend("a")
    (port,) = free_ports(1)
    env.write_manifests(
        instance(),
        certificate("main", certs.rsa),
        certificate("main-ec", certs.ecdsa),
        certificate("other", other),
        certificate("exact-rsa", exact_rsa),
        certificate("exact-ec", exact_ec),
        certificate("wild-ec", wild_ec),
        certificate("wild-rsa", wild_rsa),
        server_group("web", [be.addr]),
        https_listener("web", port, "main", "web",
                       tls={"certificate": "main", "extensionCertificates": ["main-ec", "other", "exact-rsa", "exact-ec",
                                                                 "wild-ec", "wild-rsa"],
                            "policy": "tls_cipher_policy_1_2_strict_with_1_3"}))
    albd = env.start_albd(ports=(port,))

    for version in ("-tls1_2", "-tls1_3"):
        cn, bits = served(port, version, "-servername", "albd.test", "-sigalgs", EC_ALGS)
        c.eq((cn, bits), ("albd.test", 256), f"{version} SNI albd.test, ECDSA-only client: the ECDSA certificate")
        cn, bits = served(port, version, "-servername", "albd.test", "-sigalgs", RSA_ALGS)
        c.eq((cn, bits), ("albd.test", 2048), f"{version} SNI albd.test, RSA-only client: the RSA certificate")
    cn, _ = served(port, "-servername", "other.test")
    c.eq(cn, "other.test", "SNI other.test: the extension certificate")
    cn, _ = served(port, "-servername", "OTHER.Test")
    c.eq(cn, "other.test", "SNI matching is case-insensitive")
    cn, _ = served(port, "-servername", "api.wild.test")
    c.eq(cn, "other.test", "SNI api.wild.test: the *.wild.test certificate")
    cn, _ = served(port, "-servername", "a.b.wild.test", "-sigalgs", RSA_ALGS)
    c.eq(cn, "albd.test", "SNI a.b.wild.test (two levels below the wildcard): the default certificate")
    cn, _ = served(port, "-servername", "unknown.example", "-sigalgs", RSA_ALGS)
    c.eq(cn, "albd.test", "unknown SNI: the default certificate")
    cn, bits = served(port, "-noservername", "-sigalgs", RSA_ALGS)
    c.eq((cn, bits), ("albd.test", 2048), "no SNI: the default certificate")

    # name x key type x client capability, over TLS 1.2 and 1.3.
    EXACT_RSA, EXACT_EC = ("exact.prec.test", 2048), ("ecx.prec.test", 256)
    WILD_EC, WILD_RSA = ("*.prec.test", 256), ("*.prec.test", 2048)
    clients = {
        "both": [],
        "RSA-only": ["-sigalgs", RSA_ALGS],
        "ECDSA-only": ["-sigalgs", EC_ALGS],
    }
    table = [
        # SNI, {client: expected (CN, bits)}
        ("exact.prec.test", {"both": EXACT_RSA, "RSA-only": EXACT_RSA, "ECDSA-only": WILD_EC}),
        ("other.prec.test", {"both": WILD_EC, "RSA-only": WILD_RSA, "ECDSA-only": WILD_EC}),
        ("ecx.prec.test", {"both": EXACT_EC, "RSA-only": WILD_RSA, "ECDSA-only": EXACT_EC}),
        # Only an ECDSA certificate covers the name: an RSA-only client's handshake
        # fails rather than getting the default certificate for another name.
        ("ecdsa-only.test", {"both": EXACT_EC, "RSA-only": (None, None), "ECDSA-only": EXACT_EC}),
    ]
    for version in ("-tls1_2", "-tls1_3"):
        for sni, want in table:
            for client, args in clients.items():
                got = served(port, version, "-servername", sni, *args)
                c.eq(got, want[client], f"{version} SNI {sni}, {client} client: {want[client]}")
    # TLS 1.2 clients restricted by cipher suite rather than signature algorithm.
    suites = {"RSA-only": "ECDHE-RSA-AES128-GCM-SHA256", "ECDSA-only": "ECDHE-ECDSA-AES128-GCM-SHA256"}
    for sni, want in table:
        for client, suite in suites.items():
            got = served(port, "-tls1_2", "-cipher", suite, "-servername", sni)
            c.eq(got, want[client], f"-tls1_2 -cipher {suite} SNI {sni}: {want[client]}")

    # A verifying client reaches the backend through the extension certificate.
    code, out, err = env.curl(f"https://other.test:{port}/via-other")
    c.eq(code, 200, "curl https://other.test verifies the extension certificate and gets 200")
    albd.check_clean_exit(c)


run("tls_selects_certificates", body)
