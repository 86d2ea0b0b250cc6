"""Helpers for the certificate-service tests: the reference service
(contrib/certsvc/certsvc.py) as a subprocess with a control file that
switches its failure mode at run time, and the manifests that use it."""

import hashlib
import json
import os
import shutil
import ssl
import subprocess
import sys
import time

from albd_harness import _register, die_with_parent, doc, free_port, scaled, source_dir


class CertService:
    """certsvc.py serving self.dir (ID/cert.pem + ID/key.pem) on 127.0.0.1,
    with a server certificate from env's CA and a bearer token."""

    def __init__(self, env, port=None, token="s3cret-token"):
        certs = env.certs()
        self.env = env
        self.dir = os.path.join(env.dir, "certsvc-data")
        os.makedirs(self.dir, exist_ok=True)
        self.control = os.path.join(env.dir, "certsvc-mode")
        self.token_file = os.path.join(env.dir, "certsvc-token")
        with open(self.token_file, "w") as f:
            f.write(token + "\n")
        os.chmod(self.token_file, 0o600)
        self.server = certs.issue("certsvc-server", ["localhost"])
        # issue() sets no IP SAN: the endpoint uses the name localhost.
        self.ca = certs.ca.cert
        self.port = port or free_port()
        self.proc = None
        self.log_path = os.path.join(env.dir, "certsvc.log")
        self.start()

    @property
    def endpoint(self):
        return f"https://localhost:{self.port}"

    def start(self):
        before = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(source_dir(), "contrib", "certsvc", "certsvc.py"),
             "--dir", self.dir, "--listen", f"127.0.0.1:{self.port}", "--cert", self.server.cert,
             "--key", self.server.key, "--token-file", self.token_file, "--control", self.control],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            preexec_fn=die_with_parent)
        _register(self.proc)
        log.close()
        end = time.monotonic() + scaled(10)
        while time.monotonic() < end:
            with open(self.log_path, "rb") as f:
                f.seek(before)
                if b"listening on" in f.read():
                    return
            time.sleep(0.05)
        raise RuntimeError("certsvc.py did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=scaled(5))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def mode(self, m):
        with open(self.control + ".tmp", "w") as f:
            f.write(m)
        os.replace(self.control + ".tmp", self.control)

    def publish(self, cid, pair):
        """Makes pair the current version of certificate cid."""
        d = os.path.join(self.dir, cid)
        os.makedirs(d, exist_ok=True)
        for src, name in ((pair.key, "key.pem"), (pair.cert, "cert.pem")):
            shutil.copy(src, os.path.join(d, name + ".tmp"))
            os.replace(os.path.join(d, name + ".tmp"), os.path.join(d, name))

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")


def cert_service(name, svc, refresh=10, timeout=2, **spec):
    sp = {"endpoint": svc.endpoint, "caFile": svc.ca, "tokenFile": svc.token_file,
          "refreshIntervalSeconds": refresh, "timeoutSeconds": timeout}
    sp.update(spec)
    return doc("CertificateService", name, sp)


def service_certificate(name, service, cid):
    return doc("Certificate", name, {"source": {"service": {"name": service, "certificateId": cid}}})


def der_sha256(pem_path):
    with open(pem_path) as f:
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()


def served_fp(env, port, name=None):
    """SHA-256 of the leaf albd serves on port (verified against our CA)."""
    s = env.tls_socket(port)
    try:
        return hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()
    finally:
        s.close()


def cert_status(albd, cid):
    """The /status certificateService entry for cid, or None."""
    st, body = albd.admin_get("/status")
    if st != 200:
        return None
    for e in json.loads(body).get("certificateService") or []:
        if e.get("id") == cid:
            return e
    return None
