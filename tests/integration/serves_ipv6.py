#!/usr/bin/env python3
"""IPv6: an Instance bound to 127.0.0.1 and ::1 serves HTTP, HTTPS and
HTTP/2 on both; backends on ::1 (alone, and mixed with an IPv4 one in a
group) are reached over IPv6; X-Forwarded-For carries the client's IPv6
address. Skipped, saying so, only when this machine has no ::1."""
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (certificate, free_ports, http_listener, https_listener, instance, run,  # noqa: E402
                          scaled, server_group)
from raw_backend import RawBackend, curl_run, response  # noqa: E402


def have_ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    except OSError:
        return False
    try:
        s.bind(("::1", 0))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_ports_both(n):
    """n ports free on both 127.0.0.1 and ::1 right now."""
    out = []
    while len(out) < n:
        (p,) = free_ports(1)
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        try:
            s.bind(("::1", p))
            out.append(p)
        except OSError:
            pass
        finally:
            s.close()
    return out


def tagged(name):
    def script(req):
        xff = ",".join(req.header("X-Forwarded-For"))
        return [response(200, f"{name} xff={xff}".encode())]
    return script


def body(env):
    c = env.check
    certs = env.certs()
    v6 = RawBackend(tagged("v6"), host="::1")
    v6b = RawBackend(tagged("v6b"), host="::1")
    v4 = RawBackend(tagged("v4"), host="127.0.0.1")
    env.backends += [v6, v6b, v4]
    p_http, p_tls, p_mixed = free_ports_both(3)
    env.write_manifests(
        instance(addresses=("127.0.0.1", "::1")),
        certificate("rsa", certs.rsa),
        server_group("six", [v6.addr]),
        server_group("mixed", [v6b.addr, v4.addr]),
        http_listener("plain", p_http, "six"),
        https_listener("tls", p_tls, "rsa", "six", http2=True),
        http_listener("mixed", p_mixed, "mixed"))
    albd = env.start_albd(ports=(p_http, p_tls, p_mixed))

    # Clients over ::1 and over 127.0.0.1, to an IPv6 backend.
    for addr, xff in (("::1", "::1"), ("127.0.0.1", "127.0.0.1")):
        for what, url, h2 in (("HTTP/1.1", env.url(p_http, "/a", tls=False), False),
                              ("HTTPS", env.url(p_tls, "/b"), False),
                              ("HTTP/2", env.url(p_tls, "/c"), True)):
            rc, code, b, err, version = curl_run(env, url, addr=addr, http2=h2, timeout=scaled(10))
            c.eq((rc, code, version, b), (0, 200, "2" if h2 else "1.1", f"v6 xff={xff}".encode()),
                 f"{what} from {addr} to a backend on ::1: 200, X-Forwarded-For {xff}")
    c.ok(v6.peers and all(p[0] == "::1" for p in v6.peers), "albd reached the ::1 backend over IPv6",
         "peers ::1", v6.peers)

    # A group with one IPv6 and one IPv4 server: both get their share.
    seen = []
    for i in range(6):
        rc, code, b, err, _ = curl_run(env, env.url(p_mixed, f"/m{i}", tls=False), addr="::1", timeout=scaled(10))
        seen.append((code, b.split(b" ")[0]))
    c.eq(sorted(set(seen)), [(200, b"v4"), (200, b"v6b")], "a mixed IPv4/IPv6 group: both servers answer 200")
    albd.check_clean_exit(c)


if not have_ipv6_loopback():
    print("SKIP: this machine has no IPv6 loopback (::1 cannot be bound); serves_ipv6 not run")
    sys.exit(0)
run("serves_ipv6", body)
