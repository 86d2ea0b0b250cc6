#!/usr/bin/env python3
"""With idleTimeoutSeconds 1, albd closes a keep-alive connection on which
nothing arrives for about a second; a connection in use stays open."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (certificate, echo_of, free_ports, http_listener, https_listener,  # noqa: E402
                          instance, read_response, run, scaled, server_group, socket, wait_closed)


def body(env):
    c = env.check
    certs = env.certs()
    be = env.backend("a")
    port, p_http = free_ports(2)
    env.write_manifests(instance(), certificate("rsa", certs.rsa), server_group("web", [be.addr]),
                        https_listener("web", port, "rsa", "web", idleTimeoutSeconds=1),
                        http_listener("web-http", p_http, "web", idleTimeoutSeconds=1))
    albd = env.start_albd(ports=(port, p_http))
    host = f"{env.host}:{port}"

    # After one request, the idle connection is closed after ~1 s.
    s = env.tls_socket(port)
    f = s.makefile("rb")
    try:
        s.sendall(f"GET /one HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        ver, st, hdrs, b, framing = read_response(f)
        c.eq((st, echo_of(b).get("path")), (200, "/one"), "the request before idling is answered")
        closed, waited, extra = wait_closed(s, scaled(6))
        c.ok(closed, "albd closes the idle keep-alive TLS connection", "closed", f"open after {waited:.1f}s")
        c.within(round(waited, 2), 0.8, scaled(3), "the idle TLS connection is closed after about 1 s")
        c.eq(extra, b"", "nothing is sent on the idle connection before it closes")
    finally:
        f.close()
        s.close()

    # Same on plain HTTP.
    s = socket.create_connection(("127.0.0.1", p_http), timeout=scaled(10))
    f = s.makefile("rb")
    try:
        s.sendall(f"GET /plain HTTP/1.1\r\nHost: 127.0.0.1:{p_http}\r\n\r\n".encode())
        ver, st, hdrs, b, framing = read_response(f)
        c.eq(st, 200, "plain HTTP request before idling is answered")
        closed, waited, _ = wait_closed(s, scaled(6))
        c.ok(closed and 0.8 <= waited <= scaled(3), "the idle HTTP connection is closed after about 1 s",
             "closed within 0.8..3 s", (closed, round(waited, 2)))
    finally:
        f.close()
        s.close()

    # A connection that never sends a request is closed too.
    s = env.tls_socket(port)
    try:
        closed, waited, _ = wait_closed(s, scaled(6))
        c.ok(closed and waited <= scaled(3), "a connection that sends nothing is closed after about 1 s",
             "closed within 3 s", (closed, round(waited, 2)))
    finally:
        s.close()

    # Requests every 0.4 s keep the connection alive past the idle timeout.
    s = env.tls_socket(port)
    f = s.makefile("rb")
    try:
        ok = 0
        start = time.monotonic()
        for i in range(6):
            s.sendall(f"GET /busy{i} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            try:
                ver, st, hdrs, b, framing = read_response(f)
                ok += st == 200
            except OSError:
                break
            time.sleep(0.4)
        c.eq(ok, 6, f"a connection used every 0.4 s stays open ({time.monotonic() - start:.1f}s > idle timeout)")
    finally:
        f.close()
        s.close()

    albd.check_clean_exit(c)


run("closes_idle_connections", body)
