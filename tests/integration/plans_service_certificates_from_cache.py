#!/usr/bin/env python3
"""`albd plan` shows a change of a service certificate (a new version in
the certificate cache) by its public facts — names, notAfter, fingerprint —
against a running albd, never needing the service; with the certificate
not in the cache it warns that it could not look and shows no made-up
change; `albd validate` accepts service certificates without a cache.
Also plan in a checkout without private keys: a file certificate whose key
file is missing is compared by its public facts (a warning, no change),
while validate still refuses it."""
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (CertPair, albd_binary, certificate, free_ports, https_listener, instance, run,  # noqa: E402
                          server_group)
from certsvc_support import CertService, cert_service, service_certificate  # noqa: E402
from reconcile_support import fingerprint_sha256, plan  # noqa: E402


def body(env):
    c = env.check
    certs = env.certs()
    svc = CertService(env)
    v1 = certs.issue("v1", ["albd.test", "localhost"])
    svc.publish("www", v1)
    be = env.backend("a")
    (port,) = free_ports(1)
    cache = os.path.join(env.dir, "cache")
    (port2,) = free_ports(1)
    keyless = os.path.join(env.dir, "keyless")
    os.makedirs(keyless)
    shutil.copy(certs.rsa.cert, os.path.join(keyless, "file.pem"))
    shutil.copy(certs.rsa.key, os.path.join(keyless, "file.key"))
    env.write_manifests(instance(), cert_service("cas", svc), service_certificate("www", "cas", "www"),
                        certificate("file", CertPair(os.path.join(keyless, "file.pem"),
                                                     os.path.join(keyless, "file.key"))),
                        server_group("web", [be.addr]), https_listener("svc", port, "www", "web"),
                        https_listener("plain", port2, "file", "web"))
    albd = env.start_albd(ports=(port, port2), args=("--cert-cache", cache))
    svc.stop()  # plan never asks the service
    url = f"http://127.0.0.1:{albd.admin_port}"

    rc, out, err = plan("-m", env.manifest_dir, "--against", url, "--cert-cache", cache)
    c.eq(rc, 0, "plan against the running albd with the same cache: no changes")

    pc = os.path.join(env.dir, "plan-cache")
    shutil.copytree(cache, pc)
    time.sleep(1.1)  # v2's notAfter differs from v1's (second resolution)
    v2 = certs.issue("v2", ["albd.test", "www.albd.test"])
    shutil.copy(v2.cert, os.path.join(pc, "cas", "www", "cert.pem"))
    shutil.copy(v2.key, os.path.join(pc, "cas", "www", "key.pem"))
    rc, out, err = plan("-m", env.manifest_dir, "--against", url, "--cert-cache", pc)
    c.eq(rc, 2, "a new version in the cache: plan exits 2 (changes)")
    c.ok("~ Certificate/www" in out, "the service certificate is shown as changed", "~ Certificate/www", out)
    c.ok(fingerprint_sha256(v2.cert) in out and fingerprint_sha256(v1.cert) in out,
         "... by its old and new fingerprints", "both fingerprints", out)
    c.ok("www.albd.test" in out and "spec.notAfter" in out, "... its names and notAfter", "dnsNames, notAfter", out)
    c.ok("PRIVATE" not in out + err, "no key material in the plan")

    rc, out, err = plan("-m", env.manifest_dir, "--against", url, "--cert-cache", os.path.join(env.dir, "none"))
    c.eq(rc, 0, "not in the cache: no made-up change")
    c.ok("not in the cache" in err and "Certificate/www" in err, "... and a warning says plan could not look",
         "not in the cache", err)

    r = subprocess.run([albd_binary(), "validate", "-m", env.manifest_dir], capture_output=True, timeout=60)
    c.eq(r.returncode, 0, "validate accepts a service certificate without looking at any cache")

    # A CI checkout without private keys.
    os.unlink(os.path.join(keyless, "file.key"))
    rc, out, err = plan("-m", env.manifest_dir, "--against", url, "--cert-cache", cache)
    c.eq(rc, 0, "plan without the private key file: no changes (compared by public facts)")
    c.ok("file.key" in err and "is missing" in err and "warning" in err,
         "... a warning names the missing key", "warning: ... is missing", err)
    r = subprocess.run([albd_binary(), "validate", "-m", env.manifest_dir], capture_output=True, timeout=60)
    c.eq(r.returncode, 1, "validate still refuses a missing private key")
    albd.check_clean_exit(c)


run("plans_service_certificates_from_cache", body)
