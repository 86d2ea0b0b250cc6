#!/usr/bin/env python3
"""A certificate rewritten on disk is served after the watcher reconciles:
new handshakes see the new certificate, while a keep-alive connection
opened before keeps working (nothing is dropped)."""
import hashlib
import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (CertPair, certificate, echo_of, free_ports, https_listener, instance,  # noqa: E402
                          read_response, run, server_group)


def der_sha256(pem_path):
    import ssl
    with open(pem_path) as f:
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()


def get(f, sock, path):
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: albd.test\r\n\r\n".encode())
    return read_response(f)


def body(env):
    c = env.check
    certs = env.certs()
    v2 = certs.issue("v2", ["albd.test", "localhost"])
    be = env.backend("a")
    (port,) = free_ports(1)
    # The served files live under the manifest folder, which the watcher watches.
    live = CertPair(os.path.join(env.manifest_dir, "server.pem"), os.path.join(env.manifest_dir, "server.key"))
    shutil.copy(certs.rsa.cert, live.cert)
    shutil.copy(certs.rsa.key, live.key)
    env.write_manifests(instance(), certificate("main", live), server_group("web", [be.addr]),
                        https_listener("web", port, "main", "web", idleTimeoutSeconds=60))
    albd = env.start_albd(ports=(port,))

    s = env.tls_socket(port)
    f = s.makefile("rb")
    old_fp = hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()
    c.eq(old_fp, der_sha256(certs.rsa.cert), "the first certificate is served")
    _, st, _, b, _ = get(f, s, "/before")
    c.eq(st, 200, "keep-alive connection: request before the change")

    # Rewrite both files (each replaced atomically), as a deploy would.
    gen = albd.generation()
    for src, dst in ((v2.key, live.key), (v2.cert, live.cert)):
        tmp = dst + ".tmp"
        shutil.copy(src, tmp)
        os.replace(tmp, dst)
    new_gen = albd.wait_generation(gen)
    c.ok(new_gen is not None, "the watcher reconciled the rewritten certificate", f"> {gen}", new_gen)

    fresh = env.tls_socket(port)
    try:
        c.eq(hashlib.sha256(fresh.getpeercert(binary_form=True)).hexdigest(), der_sha256(v2.cert),
             "a new handshake sees the new certificate")
    finally:
        fresh.close()
    _, st, _, b, _ = get(f, s, "/after")
    c.eq(st, 200, "the keep-alive connection opened before the change still works")
    c.eq(echo_of(b).get("path"), "/after", "... and reaches the backend")
    _, st, _, _, _ = get(f, s, "/again")
    c.eq(st, 200, "... for more than one request")
    f.close()
    s.close()
    code, _, _ = env.curl(env.url(port, "/curl"))
    c.eq(code, 200, "curl (verifying the new certificate) gets 200")
    albd.check_clean_exit(c)


run("tls_reloads_certificates", body)
