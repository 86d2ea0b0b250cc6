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
    be = env.backend("a")
    (port,) = free_ports(1)
    env.write_manifests(
        instance(),
        certificate("main", certs.rsa),
        certificate("main-ec", certs.ecdsa),
        certificate("other", other),
        server_group("web", [be.addr]),
        https_listener("web", port, "main", "web",
                       tls={"certificate": "main", "extensionCertificates": ["main-ec", "other"],
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

    # A verifying client reaches the backend through the extension certificate.
    code, out, err = env.curl(f"https://other.test:{port}/via-other")
    c.eq(code, 200, "curl https://other.test verifies the extension certificate and gets 200")
    albd.check_clean_exit(c)


run("tls_selects_certificates", body)
