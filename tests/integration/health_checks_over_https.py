#!/usr/bin/env python3
"""HTTPS health checks: the probe speaks TLS (SNI = healthCheck.host,
ALPN http/1.1, the certificate not verified, as the reference's probes do)
and judges the status line inside it; a failing status takes the server
out; a server that speaks no TLS fails with "TLS handshake failed"."""
import os
import ssl
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (_Handler, _Server, free_ports, http_listener, instance, run,  # noqa: E402
                          server_group)


class TlsBackend:
    """The harness's echo backend behind TLS, recording the SNI names of
    its handshakes."""

    def __init__(self, pair):
        self.srv = _Server(("127.0.0.1", 0), _Handler)
        self.srv.name = "secure"
        self.srv.requests = []
        self.srv.statuses = {}
        self.srv.lock = threading.Lock()
        self.srv.arrived = threading.Condition(self.srv.lock)
        self.sni = []
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pair.cert, pair.key)
        ctx.set_alpn_protocols(["http/1.1"])
        ctx.sni_callback = lambda sock, name, c: self.sni.append(name) and None
        self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True, do_handshake_on_connect=False)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    def requests(self):
        with self.srv.lock:
            return list(self.srv.requests)

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


def body(env):
    c = env.check
    secure = TlsBackend(env.certs().rsa)
    plain = env.backend("plain")
    p1, p2 = free_ports(2)
    hc = {"enabled": True, "protocol": "HTTPS", "path": "/hc", "host": "health.internal", "method": "GET",
          "intervalSeconds": 1, "timeoutSeconds": 2, "healthyThreshold": 2, "unhealthyThreshold": 2}
    env.write_manifests(
        instance(),
        server_group("secure", [("127.0.0.1", secure.port)], healthCheck=hc),
        server_group("plain", [plain.addr], healthCheck=hc),
        http_listener("secure", p1, "secure"), http_listener("plain", p2, "plain"))
    albd = env.start_albd(ports=(p1, p2))
    skey = f"127.0.0.1:{secure.port}"
    try:
        e = albd.wait_health("secure", skey, "healthy")
        c.require(e is not None, "a TLS backend passes an HTTPS check")
        c.eq((e["lastProbe"]["result"], e["lastProbe"]["reason"]), ("success", "status code 200"),
             "the probe judged the status line inside TLS")
        reqs = [r for r in secure.requests() if r["path"] == "/hc"]
        c.ok(len(reqs) >= 1, "the backend saw the probe request over TLS", ">= 1", len(reqs))
        if reqs:
            c.eq(reqs[0]["method"], "GET", "the probe method")
            c.eq([v for k, v in reqs[0]["headers"] if k.lower() == "host"], ["health.internal"], "the probe Host")
        c.ok("health.internal" in secure.sni, "the probe sends healthCheck.host as SNI", "health.internal",
             secure.sni[:3])

        with secure.srv.lock:
            secure.srv.statuses["/hc"] = 503
        e = albd.wait_health("secure", skey, "unhealthy")
        c.require(e is not None, "an HTTPS check answered 503 takes the server out")
        c.eq(e["lastProbe"]["reason"], "status code 503", "the reason is the status inside TLS")

        e = albd.wait_health("plain", f"127.0.0.1:{plain.port}", "unhealthy")
        c.require(e is not None, "a backend without TLS fails an HTTPS check")
        c.eq(e["lastProbe"]["reason"], "TLS handshake failed", "the reason says the TLS handshake failed")
        albd.check_clean_exit(c)
    finally:
        secure.stop()


run("health_checks_over_https", body)
