#!/usr/bin/env python3
"""The forwarding headers albd sets, end to end over HTTP/1.1 and HTTP/2:
X-Forwarded-For (Append, Remove, Preserve), X-Forwarded-Proto, -Port,
-Host, X-Forwarded-Client-srcport and SLB-ID exactly as the listener's
`headers` enable them, each exactly once, with the values of this
connection (scheme, listener port, Host or :authority, the client's own
source port, the Instance's id); a listener that enables none adds none."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (certificate, echo_of, free_port, free_ports, http_listener,  # noqa: E402
                          release_port,
                          https_listener, instance, run, scaled, server_group)
from raw_backend import curl_run  # noqa: E402

ALL = {"slbId": True, "proto": True, "port": True, "host": True, "clientSrcPort": True}
NAMES = ("X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Port", "X-Forwarded-Host",
         "X-Forwarded-Client-srcport", "SLB-ID")


def forwarding(echo):
    """{header name: [values]} of the forwarding headers the backend saw."""
    out = {n: [] for n in NAMES}
    for k, v in echo.get("headers", []):
        for n in NAMES:
            if k.lower() == n.lower():
                out[n].append(v)
    return out


def body(env):
    c = env.check
    certs = env.certs()
    be = env.backend("echo")
    p_tls, p_plain, p_none, p_rem, p_pre = free_ports(5)
    env.write_manifests(
        instance(id="alb-edge-01"),
        certificate("rsa", certs.rsa),
        server_group("web", [be.addr]),
        https_listener("tls", p_tls, "rsa", "web", http2=True, headers=ALL,
                       xForwardedFor={"mode": "Append"}),
        http_listener("plain", p_plain, "web", headers=ALL),
        https_listener("none", p_none, "rsa", "web", http2=True),
        https_listener("remove", p_rem, "rsa", "web", http2=True, xForwardedFor={"mode": "Remove"},
                       headers={"proto": True}),
        https_listener("preserve", p_pre, "rsa", "web", http2=True, xForwardedFor={"mode": "Preserve"},
                       headers={"proto": True}))
    albd = env.start_albd(ports=(p_tls, p_plain, p_none, p_rem, p_pre))

    def h1(port, tls, xff=None):
        """One HTTP/1.1 request from a socket whose source port we know."""
        conn = env.connection(port, tls=tls)
        conn.connect()
        src = conn.sock.getsockname()[1]
        try:
            conn.request("GET", "/h1", headers={"X-Forwarded-For": xff} if xff else {})
            r = conn.getresponse()
            return r.status, forwarding(echo_of(r.read())), src
        finally:
            conn.close()

    def h2(port, xff=None):
        """One HTTP/2 request (curl) from a source port we choose."""
        for _ in range(5):
            src = free_port()
            release_port(src)  # curl binds it without SO_REUSEPORT
            args = ["--local-port", str(src)] + (["-H", f"X-Forwarded-For: {xff}"] if xff else [])
            rc, code, b, err, version = curl_run(env, env.url(port, "/h2"), *args, http2=True,
                                                 timeout=scaled(10))
            # 45: curl could not bind the port: between its release and
            # curl's bind another process took it. Choose another.
            if rc != 45:
                break
        return (code if version == "2" else f"{code} over HTTP/{version}"), forwarding(echo_of(b)), src

    # Everything enabled: each header once, with this connection's values.
    for proto, (status, fwd, src) in (("HTTP/1.1", h1(p_tls, True)), ("HTTP/2", h2(p_tls))):
        c.eq(status, 200, f"{proto} over TLS: 200")
        c.eq(fwd, {"X-Forwarded-For": ["127.0.0.1"], "X-Forwarded-Proto": ["https"],
                   "X-Forwarded-Port": [str(p_tls)], "X-Forwarded-Host": [f"{env.host}:{p_tls}"],
                   "X-Forwarded-Client-srcport": [str(src)], "SLB-ID": ["alb-edge-01"]},
             f"{proto} over TLS: every enabled forwarding header once, with this connection's values")
    status, fwd, src = h1(p_plain, False)
    c.eq((status, fwd), (200, {"X-Forwarded-For": ["127.0.0.1"], "X-Forwarded-Proto": ["http"],
                               "X-Forwarded-Port": [str(p_plain)], "X-Forwarded-Host": [f"127.0.0.1:{p_plain}"],
                               "X-Forwarded-Client-srcport": [str(src)], "SLB-ID": ["alb-edge-01"]}),
         "HTTP/1.1 plain: proto http, the plain listener's port, the Host sent")

    # Append keeps the client's chain and adds the peer, over both protocols.
    for proto, (status, fwd, _) in (("HTTP/1.1", h1(p_tls, True, "192.0.2.1, 198.51.100.2")),
                                    ("HTTP/2", h2(p_tls, "192.0.2.1, 198.51.100.2"))):
        c.eq(fwd["X-Forwarded-For"], ["192.0.2.1, 198.51.100.2, 127.0.0.1"],
             f"{proto} Append: the client's X-Forwarded-For, then the peer address")

    # Nothing enabled: albd adds no forwarding header but the default XFF.
    for proto, (status, fwd, _) in (("HTTP/1.1", h1(p_none, True)), ("HTTP/2", h2(p_none))):
        c.eq((status, fwd), (200, {"X-Forwarded-For": ["127.0.0.1"], "X-Forwarded-Proto": [],
                                   "X-Forwarded-Port": [], "X-Forwarded-Host": [],
                                   "X-Forwarded-Client-srcport": [], "SLB-ID": []}),
             f"{proto}, headers all off: only X-Forwarded-For (Append is the default)")

    # Remove and Preserve, over both protocols.
    for proto, call in (("HTTP/1.1", lambda p, x=None: h1(p, True, x)), ("HTTP/2", h2)):
        _, fwd, _ = call(p_rem, "192.0.2.1")
        c.eq((fwd["X-Forwarded-For"], fwd["X-Forwarded-Proto"]), ([], ["https"]),
             f"{proto} Remove: no X-Forwarded-For at all (the client's is dropped), proto still set")
        _, fwd, _ = call(p_pre, "192.0.2.1")
        c.eq(fwd["X-Forwarded-For"], ["192.0.2.1"], f"{proto} Preserve: the client's X-Forwarded-For untouched")
        _, fwd, _ = call(p_pre)
        c.eq(fwd["X-Forwarded-For"], [], f"{proto} Preserve: no X-Forwarded-For added")

    albd.check_clean_exit(c)


run("sets_forwarding_headers_over_http1_and_http2", body)
