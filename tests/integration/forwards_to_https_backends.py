#!/usr/bin/env python3
"""HTTPS server groups (end-to-end TLS): albd verifies the backend's
certificate against the group's tls.caCertificates (IP SAN for an IP
literal, the host name or tls.serverName otherwise, sent as SNI), offers
only http/1.1 by ALPN, presents tls.clientCertificate when the backend asks,
resumes TLS sessions on new connections and reuses pooled ones. A
certificate that fails verification (wrong CA, wrong name) answers 502 and
logs one line with the X509 reason. A plain group to the same address never
gets a pooled TLS connection. /config and plan show the tls fields;
validation refuses bad ones with file:line:col.

Backends: python3 ssl servers with certificates made by openssl at test
time in the test's temporary folder."""
import hashlib
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (Certs, _Handler, _Server, albd_binary, doc, echo_of, free_ports,  # noqa: E402
                          http_listener, instance, pattern_chunks, pattern_sha256, run, scaled,
                          server_group)
from reconcile_support import config, plan  # noqa: E402
from ws import OP_BINARY, OP_TEXT, WSBackend, WSClient  # noqa: E402


class _TlsServer(_Server):
    """_Server whose connections are TLS, the handshake done in the
    connection's thread and recorded."""

    def finish_request(self, request, client_address):
        try:
            s = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as ex:
            with self.lock:
                self.failures.append(repr(ex))
            request.close()
            return
        try:
            cert = s.getpeercert()
            cn = None
            for rdn in (cert or {}).get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        cn = v
            with self.lock:
                self.handshakes.append({"reused": s.session_reused, "alpn": s.selected_alpn_protocol(),
                                        "client_cn": cn})
            self.RequestHandlerClass(s, client_address, self)
        finally:
            s.close()


class TlsBackend:
    """An echo backend on 127.0.0.1 speaking TLS with certificate pair;
    client_ca: require a client certificate signed by it."""

    def __init__(self, name, pair, client_ca=None):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pair.cert, pair.key)
        # h2 first: if albd offered it, the server would choose it.
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        if client_ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(client_ca)
        self.snis = []
        ctx.sni_callback = lambda sock, sni, c: self._sni(sni)
        self.name = name
        self.srv = _TlsServer(("127.0.0.1", 0), _Handler)
        self.srv.ctx = ctx
        self.srv.name = name
        self.srv.requests = []
        self.srv.handshakes = []
        self.srv.failures = []
        self.srv.lock = threading.Lock()
        self.srv.arrived = threading.Condition(self.srv.lock)
        self.port = self.srv.server_address[1]
        self.addr = ("127.0.0.1", self.port)
        self.thread = threading.Thread(target=self.srv.serve_forever, kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()

    def _sni(self, sni):
        with self.srv.lock:
            self.snis.append(sni)
        return None

    def handshakes(self):
        with self.srv.lock:
            return list(self.srv.handshakes)

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


class TlsWSBackend(WSBackend):
    """The WebSocket echo backend of ws.py, over TLS."""

    def __init__(self, pair):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(pair.cert, pair.key)
        super().__init__("wss")

    def _serve(self, s):
        try:
            s = self.ctx.wrap_socket(s, server_side=True)
        except (ssl.SSLError, OSError):
            s.close()
            return
        super()._serve(s)


def ca_cert(name, path):
    return doc("Certificate", name, {"type": "CA", "source": {"files": {"certificate": path}}})


def client_cert(name, pair):
    return doc("Certificate", name, {"source": {"files": {"certificate": pair.cert, "privateKey": pair.key}}})


def https_group(name, servers, **tls):
    return server_group(name, servers, protocol="HTTPS", tls=tls)


def get(env, port, path, n=1):
    out = []
    for i in range(n):
        st, _, b = env.http("GET", port, f"{path}{i}")
        out.append((st, echo_of(b).get("backend") if st == 200 else None))
    return out


def body(env):
    c = env.check
    certs = env.certs()  # server certificates: DNS albd.test, localhost; IP 127.0.0.1
    other = Certs(os.path.join(env.dir, "other-ca"))  # an unrelated CA
    client = certs.issue("client", ["client.albd.test"], client=True, cn="albd-proxy")

    be = TlsBackend("tls", certs.rsa)
    mtls = TlsBackend("mtls", certs.rsa, client_ca=certs.ca.cert)
    wsb = TlsWSBackend(certs.rsa)
    env.backends += [be, mtls, wsb]
    ports = free_ports(12)
    p_good, p_name, p_sni, p_wca, p_wname, p_mtls, p_nocert, p_plain, p_nokeep, p_keep, p_ws, p_sys = ports
    env.write_manifests(
        instance(),
        ca_cert("test-ca", certs.ca.cert),
        ca_cert("other-ca", other.ca.cert),
        client_cert("proxy-client", client),
        https_group("good", [be.addr], caCertificates=["test-ca"]),
        https_group("byname", [("localhost", be.port)], caCertificates=["test-ca"]),
        https_group("sni", [be.addr], caCertificates=["test-ca"], serverName="albd.test"),
        https_group("wrongca", [be.addr], caCertificates=["other-ca"]),
        https_group("wrongname", [be.addr], caCertificates=["test-ca"], serverName="wrong.example"),
        https_group("mtls", [mtls.addr], caCertificates=["test-ca"], clientCertificate="proxy-client"),
        https_group("nocert", [mtls.addr], caCertificates=["test-ca"]),
        server_group("plain", [be.addr]),
        server_group("nokeep", [be.addr], protocol="HTTPS", upstreamKeepalive=False,
                     tls={"caCertificates": ["test-ca"]}),
        https_group("keep", [be.addr], caCertificates=["test-ca"]),
        https_group("ws", [wsb.addr], caCertificates=["test-ca"]),
        server_group("system", [be.addr], protocol="HTTPS"),
        http_listener("good", p_good, "good"),
        http_listener("byname", p_name, "byname"),
        http_listener("sni", p_sni, "sni"),
        http_listener("wrongca", p_wca, "wrongca"),
        http_listener("wrongname", p_wname, "wrongname"),
        http_listener("mtls", p_mtls, "mtls"),
        http_listener("nocert", p_nocert, "nocert"),
        http_listener("plain", p_plain, "plain"),
        http_listener("nokeep", p_nokeep, "nokeep"),
        http_listener("keep", p_keep, "keep"),
        http_listener("ws", p_ws, "ws"),
        http_listener("system", p_sys, "system"))
    albd = env.start_albd(ports=ports, workers=2)

    # Good certificate, IP literal: verified against the IP SAN, no SNI.
    c.eq(get(env, p_good, "/g"), [(200, "tls")], "HTTPS group, good certificate, IP literal server: 200")
    hs = be.handshakes()
    c.ok(hs and all(h["alpn"] == "http/1.1" for h in hs), "albd's ALPN offer is http/1.1 only (h2 not chosen)",
         "http/1.1", hs)
    c.eq(be.snis, [None], "no SNI is sent to an IP literal server")

    # Host name: SNI and name checked = the server's name.
    seen = None
    for _ in range(int(scaled(5) / 0.05)):
        seen = get(env, p_name, "/n")
        if seen == [(200, "tls")]:
            break
        time.sleep(0.05)
    c.eq(seen, [(200, "tls")], "HTTPS group with server 'localhost': 200")
    c.ok("localhost" in be.snis, "SNI 'localhost' is sent to a server given by host name", "localhost", be.snis)

    # tls.serverName: SNI and the name checked.
    c.eq(get(env, p_sni, "/s"), [(200, "tls")], "serverName albd.test (a SAN of the certificate): 200")
    c.ok("albd.test" in be.snis, "SNI is tls.serverName", "albd.test", be.snis)

    # Wrong CA, wrong name: 502, one log line with the X509 reason each.
    c.eq(get(env, p_wca, "/wca"), [(502, None)], "a certificate from another CA: 502")
    c.eq(get(env, p_wname, "/wn"), [(502, None)], "a certificate without serverName wrong.example: 502")
    log = albd.stderr()
    key = f"127.0.0.1:{be.port}"
    wca = [ln for ln in log.splitlines() if key in ln and "unable to get local issuer certificate" in ln]
    wname = [ln for ln in log.splitlines() if key in ln and "hostname mismatch" in ln]
    c.eq(len(wca), 1, "one log line says why (wrong CA: unable to get local issuer certificate)")
    c.eq(len(wname), 1, "one log line says why (wrong name: hostname mismatch)")
    c.ok(wca and "certificate verify failed" in wca[0], "the log line names the verification failure",
         "certificate verify failed", wca)

    # Without tls.caCertificates the system's trust store verifies: our
    # test CA is not in it, so verification (on by default) refuses.
    c.eq(get(env, p_sys, "/sys"), [(502, None)], "no caCertificates: verified against the system store: 502")

    # Client certificate.
    c.eq(get(env, p_mtls, "/m", 3), [(200, "mtls")] * 3,
         "a backend that requires a client certificate: 200 with tls.clientCertificate")
    cns = {h["client_cn"] for h in mtls.handshakes()}
    c.eq(cns, {"albd-proxy"}, "the backend saw albd's client certificate (CN albd-proxy)")
    c.eq(get(env, p_nocert, "/nc"), [(502, None)], "the same backend without tls.clientCertificate: 502")

    # Identity: a plain group to the TLS backend's address never gets a
    # pooled TLS connection (one is pooled by the request before).
    c.eq(get(env, p_good, "/g2"), [(200, "tls")], "TLS group again (its connection is pooled)")
    st = get(env, p_plain, "/p")[0][0]
    c.ok(st in (502, 400) or st >= 500, "a plain group to the same addr:port does not reuse the TLS pool "
         "(plain HTTP to a TLS server fails)", "an error", st)
    c.eq(get(env, p_good, "/g3"), [(200, "tls")], "the TLS group still serves after the plain one failed")

    # Pooled connections: 20 requests, far fewer handshakes.
    before = len(be.handshakes())
    c.eq(get(env, p_keep, "/k", 20), [(200, "tls")] * 20, "20 requests through a keep-alive HTTPS group")
    new = len(be.handshakes()) - before
    c.ok(new <= 4, "pooled TLS connections are reused (at most 4 handshakes for 20 requests, 2 workers)",
         "<= 4", new)

    # Session resumption: without upstream keep-alive every request needs a
    # new TLS connection (except the few the groups of the same identity left
    # idle in the pool); after each worker's first, they resume.
    before = len(be.handshakes())
    c.eq(get(env, p_nokeep, "/r", 20), [(200, "tls")] * 20, "20 requests through a group without keep-alive")
    hs = be.handshakes()[before:]
    reused = sum(1 for h in hs if h["reused"])
    c.ok(len(hs) >= 14, "without keep-alive requests open new backend TLS connections", ">= 14", len(hs))
    c.ok(reused >= len(hs) - 4, "TLS sessions to the backend resume (all but the first ones per worker)",
         f">= {len(hs) - 4} resumed", reused)

    # Large bodies both ways through TLS; a slow reader makes albd pause and
    # resume the backend connection (records left in OpenSSL meanwhile).
    n = 6 * 1024 * 1024
    data = b"".join(pattern_chunks(n))
    st, _, b = env.http("POST", p_good, "/big", body=data)
    e = echo_of(b)
    c.eq((st, e.get("body_len"), e.get("body_sha256")), (200, n, pattern_sha256(n)),
         "a 6 MiB request body reaches the HTTPS backend intact")
    conn = env.connection(p_good, tls=False, timeout=scaled(30))
    try:
        conn.request("GET", f"/big?bytes={n}")
        r = conn.getresponse()
        h = hashlib.sha256()
        got = 0
        while True:
            piece = r.read(32768)
            if not piece:
                break
            h.update(piece)
            got += len(piece)
            if got < 2 * 1024 * 1024:
                time.sleep(0.002)
        c.eq((r.status, got, h.hexdigest()), (200, n, pattern_sha256(n)),
             "a 6 MiB response from the HTTPS backend arrives intact at a slow reader")
    finally:
        conn.close()

    # WebSocket to a TLS backend: the tunnel runs over the TLS connection.
    sock = socket.create_connection(("127.0.0.1", p_ws), timeout=scaled(10))
    ws = WSClient(sock, f"127.0.0.1:{p_ws}", "/chat")
    c.eq(ws.status, 101, "WebSocket upgrade through an HTTPS group: 101")
    if ws.status == 101:
        c.eq(ws.recv(), (OP_TEXT, b"hello /chat"), "the TLS backend's first frame arrives")
        blob = os.urandom(200000)
        ws.send(blob)
        c.eq(ws.recv(), (OP_BINARY, blob), "a 200 KB binary message is echoed through the TLS tunnel")
    ws.close_socket()

    # /config and plan show the tls fields.
    _, cfg = config(albd)
    tls = cfg["resources"]["ServerGroup"]["mtls"]["spec"].get("tls")
    c.eq(tls, {"caCertificates": ["test-ca"], "clientCertificate": "proxy-client"},
         "/config shows spec.tls of an HTTPS group")
    c.eq(cfg["resources"]["ServerGroup"]["sni"]["spec"]["tls"].get("serverName"), "albd.test",
         "/config shows tls.serverName")
    c.eq(cfg["resources"]["ServerGroup"]["system"]["spec"].get("tls"), None,
         "/config shows no tls for an HTTPS group without it")
    rc, out, err = plan("-m", env.manifest_dir, "--against", f"http://127.0.0.1:{albd.admin_port}")
    c.ok(rc == 0, "plan against the running albd: no changes", 0, (rc, out[-600:], err[-400:]))
    rc, out, err = plan("-m", env.manifest_dir)
    c.ok("wrong.example" in out and "proxy-client" in out, "plan shows serverName and clientCertificate",
         "both", out[-2000:])

    c.ok(albd.alive(), "albd is still running")
    albd.check_clean_exit(c)

    # Validation: located errors.
    bad = os.path.join(env.dir, "bad")
    os.makedirs(bad)
    env.manifest_dir, keep = bad, env.manifest_dir
    env.write_manifests(
        instance(),
        ca_cert("test-ca", certs.ca.cert),
        client_cert("srv", certs.rsa),
        server_group("tls-on-http", [be.addr], tls={"caCertificates": ["test-ca"]}),
        https_group("ca-not-ca", [be.addr], caCertificates=["srv"]),
        https_group("client-is-ca", [be.addr], caCertificates=["test-ca"], clientCertificate="test-ca"),
        https_group("missing", [be.addr], caCertificates=["nope"]),
        server_group("badname", [("bad..example", 80)]),
        http_listener("l", free_ports(1)[0], "tls-on-http"))
    env.manifest_dir = keep
    r = subprocess.run([albd_binary(), "validate", "-m", bad], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=scaled(30))
    out = r.stdout.decode(errors="replace")
    c.eq(r.returncode, 1, "albd validate exits 1 on bad spec.tls")
    for what, pat in [("tls on an HTTP group", r"albd\.yaml:\d+:\d+: .*tls needs protocol: HTTPS"),
                      ("a Server certificate as CA", r"albd\.yaml:\d+:\d+: .*is a Server certificate, not a CA"),
                      ("a CA as client certificate", r"albd\.yaml:\d+:\d+: .*has no private key"),
                      ("an unknown CA name", r"albd\.yaml:\d+:\d+: .*nope"),
                      ("an invalid host name", r"albd\.yaml:\d+:\d+: .*neither an IP address nor a valid host name")]:
        c.ok(re.search(pat, out), f"validate reports {what} at file:line:col", pat, out[-1500:])


run("forwards_to_https_backends", body)
