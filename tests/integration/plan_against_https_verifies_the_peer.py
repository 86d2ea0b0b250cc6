#!/usr/bin/env python3
"""`albd plan --against https://...` (albd's own HTTP client over OpenSSL,
no libcurl): it reads /config through TLS when the server's certificate is
trusted (SSL_CERT_FILE names our test CA) and names the host of the URL (an
IP address or a DNS name); it refuses an untrusted certificate and a name
mismatch (exit 1, with the reason); over plain HTTP it reads chunked and
Content-Length answers alike; a non-2xx answer is an error."""
import http.server
import json
import os
import ssl
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import albd_binary, free_ports, http_listener, instance, run, scaled, server_group  # noqa: E402


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    config = b"{}"
    chunked = False
    seen = []

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        Handler.seen.append((self.path, self.headers.get("Host")))
        if self.path != "/config":
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if Handler.chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(self.config), 100):
                part = self.config[i:i + 100]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(self.config)))
            self.end_headers()
            self.wfile.write(self.config)


def serve(tls_ctx=None):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls_ctx:
        srv.socket = tls_ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def plan(mdir, url, env=None):
    e = dict(os.environ)
    e.pop("SSL_CERT_FILE", None)
    e.pop("SSL_CERT_DIR", None)
    e.update(env or {})
    r = subprocess.run([albd_binary(), "plan", "-m", mdir, "--against", url], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=e, timeout=scaled(60))
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def body(env):
    c = env.check
    certs = env.certs()  # a CA; server certificates for albd.test, localhost and IP 127.0.0.1
    be = env.backend("a")
    (port,) = free_ports(1)
    env.write_manifests(instance(), server_group("web", [be.addr]), http_listener("web", port, "web"))
    albd = env.start_albd(ports=(port,))
    _, cfg = albd.admin_get("/config")
    albd.check_clean_exit(c)
    Handler.config = cfg
    json.loads(cfg)

    plain = serve()
    p = plain.server_address[1]
    rc, out, err = plan(env.manifest_dir, f"http://127.0.0.1:{p}")
    c.ok(rc == 0 and "No changes" in out, "plain HTTP, Content-Length: no changes, exit 0", 0, (rc, out[-300:], err))
    c.eq(Handler.seen[-1], ("/config", f"127.0.0.1:{p}"), "GET /config with the URL's host and port in Host")
    Handler.chunked = True
    rc, out, err = plan(env.manifest_dir, f"http://127.0.0.1:{p}/")
    c.ok(rc == 0, "plain HTTP, chunked: exit 0", 0, (rc, err))
    rc, out, err = plan(env.manifest_dir, f"http://127.0.0.1:{p}/prefix")
    c.ok(rc == 1 and "HTTP 404" in err, "a 404 is an error, exit 1", "1, HTTP 404", (rc, err))
    plain.shutdown()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs.rsa.cert, certs.rsa.key)
    tls = serve(ctx)
    t = tls.server_address[1]
    trust = {"SSL_CERT_FILE": certs.ca.cert}
    rc, out, err = plan(env.manifest_dir, f"https://127.0.0.1:{t}", trust)
    c.ok(rc == 0 and "No changes" in out, "HTTPS to an IP the certificate names, CA trusted: exit 0", 0, (rc, err))
    rc, out, err = plan(env.manifest_dir, f"https://localhost:{t}", trust)
    c.ok(rc == 0, "HTTPS to a DNS name the certificate names: exit 0", 0, (rc, err))
    rc, out, err = plan(env.manifest_dir, f"https://127.0.0.1:{t}")
    c.ok(rc == 1 and "not trusted" in err, "HTTPS with an untrusted certificate: refused, exit 1", "not trusted",
         (rc, err))
    rc, out, err = plan(env.manifest_dir, f"https://[::ffff:127.0.0.1]:{t}", trust)
    c.ok(rc == 1 and "not trusted" in err, "HTTPS to an address the certificate does not name: refused",
         "not trusted", (rc, err))
    tls.shutdown()


run("plan_against_https_verifies_the_peer", body)
