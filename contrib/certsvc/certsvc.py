#!/usr/bin/env python3
"""A small reference certificate service (schemas/api/certsvc.md).

Serves DIR/ID/cert.pem (PEM chain, leaf first) and DIR/ID/key.pem over HTTPS:

  python3 contrib/certsvc/certsvc.py --dir DIR --listen 127.0.0.1:PORT \
      --cert SERVER.pem --key SERVER.key [--token-file F] [--client-ca CA.pem] \
      [--fail MODE] [--control FILE]

A certificate's version is derived from its files' bytes, so rewriting
DIR/ID/cert.pem and key.pem publishes a new version.

--fail MODE makes every certificate request fail one way (for tests):
  timeout   read the request, never answer
  refuse    close the connection without an answer
  401 403 404 500   answer that status
  badjson   200 with a body that is not JSON
  mismatch  200 with a private key that does not match the certificate
  expired   200 with a certificate (same key) that expired in 2000
  notyet    200 with a certificate (same key) valid from 2099
  wrongid   200 with another certificate's ID
  slow      200, the body drip-fed one byte every 0.5 s
  endless   200, a body that never ends
--control FILE: the mode is read from FILE before every request (a missing
or empty file, or "ok", means no failure), so a test switches modes at run
time without a restart; it overrides --fail.

Python 3 standard library and the openssl command (for expired/notyet).
"""
import argparse
import hashlib
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODES = ("ok", "timeout", "refuse", "401", "403", "404", "500", "badjson", "mismatch",
         "expired", "notyet", "wrongid", "slow", "endless")
ID_OK = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")


def valid_id(i):
    return 0 < len(i) <= 128 and i[0] != "." and set(i) <= ID_OK


class Service:
    def __init__(self, args):
        self.dir = args.dir
        self.fail = args.fail or "ok"
        self.control = args.control
        self.token = None
        if args.token_file:
            with open(args.token_file) as f:
                self.token = f.read().strip()
        self.server_key = args.key
        self.tmp = tempfile.mkdtemp(prefix="certsvc-")
        self.lock = threading.Lock()
        self.counts = {}

    def mode(self):
        if self.control:
            try:
                with open(self.control) as f:
                    m = f.read().strip()
                return m or "ok"
            except FileNotFoundError:
                return "ok"
        return self.fail

    def read(self, cid):
        d = os.path.join(self.dir, cid)
        with open(os.path.join(d, "cert.pem"), "rb") as f:
            cert = f.read()
        with open(os.path.join(d, "key.pem"), "rb") as f:
            key = f.read()
        version = hashlib.sha256(cert + b"\0" + key).hexdigest()[:16]
        return cert.decode(), key.decode(), version

    def not_after(self, cert_pem):
        p = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-dateopt", "iso_8601"],
                           input=cert_pem.encode(), capture_output=True)
        s = p.stdout.decode().strip()  # notAfter=2027-03-01 12:00:00Z
        if s.startswith("notAfter="):
            return s[len("notAfter="):].replace(" ", "T")
        return "1970-01-01T00:00:00Z"

    def odd_dates(self, cid, key_pem, start, end):
        """A self-signed certificate for cid with key_pem, valid start..end."""
        d = tempfile.mkdtemp(dir=self.tmp)
        kf = os.path.join(d, "key.pem")
        with open(kf, "w") as f:
            f.write(key_pem)
        os.chmod(kf, 0o600)
        for name, data in (("index.txt", ""), ("serial", "1000\n")):
            with open(os.path.join(d, name), "w") as f:
                f.write(data)
        cnf = os.path.join(d, "ca.cnf")
        with open(cnf, "w") as f:
            f.write("[ca]\ndefault_ca=c\n[c]\ndir=%s\ndatabase=$dir/index.txt\n"
                    "serial=$dir/serial\nnew_certs_dir=$dir\ndefault_md=sha256\n"
                    "policy=p\nunique_subject=no\n[p]\ncommonName=supplied\n"
                    "[req]\ndistinguished_name=dn\n[dn]\n"
                    "[ext]\nsubjectAltName=DNS:%s.test\n" % (d, cid))
        csr = os.path.join(d, "csr.pem")
        out = os.path.join(d, "cert.pem")
        subprocess.run(["openssl", "req", "-new", "-key", kf, "-subj", "/CN=%s.test" % cid,
                        "-config", cnf, "-out", csr], check=True, capture_output=True)
        subprocess.run(["openssl", "ca", "-batch", "-config", cnf, "-selfsign", "-keyfile", kf,
                        "-in", csr, "-out", out, "-startdate", start, "-enddate", end,
                        "-extensions", "ext", "-notext"], check=True, capture_output=True)
        with open(out) as f:
            return f.read()

    def count(self, what):
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + 1


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "certsvc/1"

    def log_message(self, fmt, *args):
        sys.stderr.write("certsvc: %s\n" % (fmt % args))

    def reply(self, status, body=b"", ctype="application/json", headers=()):
        self.send_response(status)
        if status != 304:
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if status != 304 and self.command != "HEAD":
            self.wfile.write(body)

    def error(self, status, msg):
        self.reply(status, json.dumps({"error": msg}).encode())

    def do_GET(self):
        svc = self.server.svc
        u = urllib.parse.urlsplit(self.path)
        if svc.token is not None and \
                self.headers.get("Authorization", "") != "Bearer " + svc.token:
            svc.count("401")
            return self.error(401, "a bearer token is required")
        if u.path == "/v1/certificates":
            prefix = urllib.parse.parse_qs(u.query).get("prefix", [""])[0]
            out = []
            for cid in sorted(os.listdir(svc.dir)):
                if cid.startswith(prefix) and valid_id(cid):
                    try:
                        cert, _, version = svc.read(cid)
                    except OSError:
                        continue
                    out.append({"id": cid, "version": version, "notAfter": svc.not_after(cert)})
            svc.count("list")
            return self.reply(200, json.dumps({"certificates": out}).encode())
        if not u.path.startswith("/v1/certificates/"):
            return self.error(404, "no such path")
        cid = urllib.parse.unquote(u.path[len("/v1/certificates/"):])
        mode = svc.mode()
        svc.count("mode:" + mode)
        if mode == "timeout":
            time.sleep(3600)
            return
        if mode == "refuse":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if mode in ("401", "403", "404", "500"):
            return self.error(int(mode), "failing on purpose (--fail %s)" % mode)
        if not valid_id(cid):
            return self.error(404, "no such certificate")
        try:
            cert, key, version = svc.read(cid)
        except OSError:
            svc.count("404")
            return self.error(404, "no such certificate")
        if mode == "badjson":
            return self.reply(200, b'{"id": "' + cid.encode() + b'", "certificate": ')
        if mode in ("ok", "slow", "endless") and \
                self.headers.get("If-None-Match") == '"%s"' % version:
            svc.count("304")
            return self.reply(304, headers=[("ETag", '"%s"' % version)])
        rid = cid
        if mode == "mismatch":
            with open(svc.server_key) as f:
                key = f.read()
            version += "-mismatch"
        elif mode == "expired":
            cert = svc.odd_dates(cid, key, "20000101000000Z", "20000201000000Z")
            version += "-expired"
        elif mode == "notyet":
            cert = svc.odd_dates(cid, key, "20990101000000Z", "20991231000000Z")
            version += "-notyet"
        elif mode == "wrongid":
            rid = cid + "-other"
        body = json.dumps({"id": rid, "version": version, "notAfter": svc.not_after(cert),
                           "certificate": cert, "privateKey": key}).encode()
        if mode == "slow":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for b in body:
                self.wfile.write(bytes([b]))
                self.wfile.flush()
                time.sleep(0.5)
            return
        if mode == "endless":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.close_connection = True
            self.wfile.write(b'{"id": "' + cid.encode() + b'", "certificate": "')
            chunk = b"A" * 16384
            while True:
                self.wfile.write(chunk)
                time.sleep(0.01)
        svc.count("200")
        self.reply(200, body, headers=[("ETag", '"%s"' % version)])

    do_HEAD = do_GET


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # a client that went away (timeout, size cap) is expected here


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--listen", required=True, help="HOST:PORT (PORT 0: any; printed)")
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--token-file")
    ap.add_argument("--client-ca", help="require a client certificate signed by this CA")
    ap.add_argument("--fail", choices=MODES)
    ap.add_argument("--control", help="file holding the failure mode, read per request")
    args = ap.parse_args()
    host, _, port = args.listen.rpartition(":")
    httpd = Server((host.strip("[]"), int(port)), Handler)
    httpd.svc = Service(args)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    if args.client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(args.client_ca)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True,
                                   do_handshake_on_connect=False)
    print("certsvc: listening on %s:%d" % (host, httpd.server_address[1]), flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
