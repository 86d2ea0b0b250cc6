#!/usr/bin/env python3
"""X-Forwarded-For in its three modes (Append, Remove, Preserve),
X-Forwarded-Proto on and off, and hop-by-hop headers not forwarded."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (certificate, echo_header, echo_of, free_ports, http_listener,  # noqa: E402
                          https_listener, instance, run, server_group)


def body(env):
    c = env.check
    certs = env.certs()
    be = env.backend("a")
    p_app, p_rem, p_pre = free_ports(3)
    env.write_manifests(
        instance(),
        certificate("rsa", certs.rsa),
        server_group("web", [be.addr]),
        https_listener("append", p_app, "rsa", "web", xForwardedFor={"mode": "Append"},
                       headers={"proto": True}),
        https_listener("remove", p_rem, "rsa", "web", xForwardedFor={"mode": "Remove"},
                       headers={"proto": False}),
        http_listener("preserve", p_pre, "web", xForwardedFor={"mode": "Preserve"}))
    albd = env.start_albd(ports=(p_app, p_rem, p_pre))

    def seen(port, headers, tls=True):
        st, _, b = env.request("GET", port, "/h", headers=headers, tls=tls)
        c.eq(st, 200, f"request through port {port} answers 200")
        return echo_of(b)

    # Append (the default behaviour of the reference product).
    e = seen(p_app, {"X-Forwarded-For": "1.2.3.4"})
    c.eq(echo_header(e, "X-Forwarded-For"), ["1.2.3.4, 127.0.0.1"], "Append adds the client address to a sent XFF")
    e = seen(p_app, {})
    c.eq(echo_header(e, "X-Forwarded-For"), ["127.0.0.1"], "Append creates XFF when the client sent none")
    e = seen(p_app, {"X-Forwarded-Proto": "http"})
    c.eq(echo_header(e, "X-Forwarded-Proto"), ["https"], "proto on: X-Forwarded-Proto https replaces a sent http")
    e = seen(p_app, {})
    c.eq(echo_header(e, "X-Forwarded-Proto"), ["https"], "proto on: X-Forwarded-Proto https is added")

    # Remove.
    e = seen(p_rem, {"X-Forwarded-For": "1.2.3.4"})
    c.eq(echo_header(e, "X-Forwarded-For"), [], "Remove strips the client's XFF")
    c.eq(echo_header(e, "X-Forwarded-Proto"), [], "proto off: no X-Forwarded-Proto added")

    # Preserve: untouched either way.
    e = seen(p_pre, {"X-Forwarded-For": "1.2.3.4"}, tls=False)
    c.eq(echo_header(e, "X-Forwarded-For"), ["1.2.3.4"], "Preserve passes the client's XFF untouched")
    e = seen(p_pre, {}, tls=False)
    c.eq(echo_header(e, "X-Forwarded-For"), [], "Preserve adds no XFF")

    # Hop-by-hop: Connection and the headers it names stay on this hop.
    e = seen(p_app, {"Connection": "keep-alive, X-Foo", "X-Foo": "secret-hop", "Keep-Alive": "timeout=5",
                     "Proxy-Connection": "keep-alive", "X-Bar": "end-to-end"})
    c.eq(echo_header(e, "X-Foo"), [], "a header named in Connection is not forwarded")
    c.eq(echo_header(e, "Keep-Alive"), [], "Keep-Alive is not forwarded")
    c.ok("keep-alive, x-foo" not in ",".join(echo_header(e, "Connection")).lower(),
         "the client's Connection header is not forwarded as is", "no 'keep-alive, X-Foo'",
         echo_header(e, "Connection"))
    c.eq(echo_header(e, "X-Bar"), ["end-to-end"], "an end-to-end header is forwarded")

    albd.check_clean_exit(c)


run("forwards_client_headers", body)
