#!/usr/bin/env python3
"""Malformed or disallowed requests are answered by albd itself and never
reach the backend: Content-Length with Transfer-Encoding (400, and the
connection is closed), an invalid header name (400), a garbage request line
(400), TRACE (405), headers over 32 KB (431), one header field (name or
value) over 8 KiB (431). Whitespace around a Content-Length value is valid
(RFC 9110 OWS) and accepted."""
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
                        https_listener("web", port, "rsa", "web"), http_listener("web-http", p_http, "web"))
    albd = env.start_albd(ports=(port, p_http))
    host = f"{env.host}:{port}"

    def send(raw, tls=True, closes=False):
        """Send raw bytes on a new connection: (status, closed after it?); the
        closing is only waited for when closes is set."""
        if tls:
            s = env.tls_socket(port)
        else:
            s = socket.create_connection(("127.0.0.1", p_http), timeout=scaled(10))
        f = s.makefile("rb")
        try:
            s.sendall(raw)
            try:
                ver, st, hdrs, b, framing = read_response(f)
            except (OSError, ValueError) as ex:
                return f"no response ({ex!r})", None
            closed = wait_closed(s, scaled(3))[0] if closes else None
            return st, closed
        finally:
            f.close()
            s.close()

    st, closed = send(f"POST /smuggle HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5\r\n"
                      f"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n".encode(), closes=True)
    c.eq(st, 400, "Content-Length together with Transfer-Encoding is rejected with 400")
    c.eq(closed, True, "albd closes the connection after that 400")

    st, closed = send(f"POST /smuggle-http HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5\r\n"
                      f"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n".encode(), tls=False)
    c.eq(st, 400, "Content-Length with Transfer-Encoding is rejected with 400 on plain HTTP too")

    st, _ = send(f"GET /bad-name HTTP/1.1\r\nHost: {host}\r\nBad Header: x\r\n\r\n".encode())
    c.eq(st, 400, "a header name with a space is rejected with 400")
    st, _ = send(f"GET /bad-name2 HTTP/1.1\r\nHost: {host}\r\nX-B\x01d: x\r\n\r\n".encode())
    c.eq(st, 400, "a header name with a control character is rejected with 400")
    st, _ = send(b"GARBAGE\r\n\r\n")
    c.eq(st, 400, "a garbage request line is rejected with 400")

    st, _ = send(f"TRACE /trace HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    c.eq(st, 405, "TRACE is answered 405")

    big = "a" * (40 * 1024)
    st, _ = send(f"GET /big HTTP/1.1\r\nHost: {host}\r\nX-Big: {big}\r\n\r\n".encode())
    c.eq(st, 431, "a 40 KB header is answered 431")
    many = "".join(f"X-H{i}: {'b' * 1000}\r\n" for i in range(40))
    st, _ = send(f"GET /many HTTP/1.1\r\nHost: {host}\r\n{many}\r\n".encode())
    c.eq(st, 431, "40 headers of 1 KB (over 32 KB in all) are answered 431")

    # One field over 8 KiB, though the head stays under 32 KiB in all.
    st, _ = send(f"GET /long-name HTTP/1.1\r\nHost: {host}\r\n{'N' * (20 * 1024)}: x\r\n\r\n".encode())
    c.eq(st, 431, "a 20 KiB header name is answered 431")
    st, _ = send(f"GET /long-name-http HTTP/1.1\r\nHost: {host}\r\n{'N' * (20 * 1024)}: x\r\n\r\n".encode(),
                 tls=False)
    c.eq(st, 431, "a 20 KiB header name is answered 431 on plain HTTP too")
    st, _ = send(f"GET /long-value HTTP/1.1\r\nHost: {host}\r\nX-Long: {'v' * (12 * 1024)}\r\n\r\n".encode())
    c.eq(st, 431, "a 12 KiB header value is answered 431")
    st, _ = send(f"GET /long-line HTTP/1.1\r\nHost: {host}\r\n{'n' * 4100}: {'v' * 4100}\r\n\r\n".encode())
    c.eq(st, 431, "a field of 4100-byte name and 4100-byte value (over 8 KiB together) is answered 431")

    c.eq([r["path"] for r in be.requests], [], "the backend never saw any of those requests")

    # OWS around a Content-Length value is valid (RFC 9110 5.5): served, and
    # the body reaches the backend whole.
    for path, cl in (("/cl-ows", "Content-Length:   5  "), ("/cl-tab", "Content-Length:\t5\t"),
                     ("/cl-split", "content-length: \t 5 \t\t")):
        raw = f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{cl}\r\nConnection: close\r\n\r\nhello".encode()
        s = socket.create_connection(("127.0.0.1", p_http), timeout=scaled(10))
        f = s.makefile("rb")
        try:
            if path == "/cl-split":  # the head arrives in pieces that end on the tabs
                pieces = raw.split(b"\t")
                for i, piece in enumerate(pieces):
                    s.sendall(piece + (b"\t" if i < len(pieces) - 1 else b""))
                    time.sleep(0.05)
            else:
                s.sendall(raw)
            try:
                ver, st, hdrs, b, framing = read_response(f, "POST")
            except (OSError, ValueError) as ex:
                st, b = f"no response ({ex!r})", b""
        finally:
            f.close()
            s.close()
        e = echo_of(b)
        c.eq((st, e.get("path"), e.get("body_len")), (200, path, 5),
             f"{cl!r} is served and the 5-byte body forwarded")

    # Within the limits, the same listener still works (so the checks above
    # could have failed by reaching the backend).
    st, _, b = env.https("GET", port, "/good", headers={"X-Ok": "c" * 8000})
    c.eq((st, echo_of(b).get("path")), (200, "/good"), "a request with an 8 KB header is served")
    st, _ = send(f"POST /cl-inner-tab HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5\t5\r\n\r\nhello".encode(),
                 tls=False)
    c.eq(st, 400, "a tab between Content-Length digits is still answered 400")
    c.eq([r["path"] for r in be.requests], ["/cl-ows", "/cl-tab", "/cl-split", "/good"],
         "only the valid requests reached the backend")
    albd.check_clean_exit(c)


run("rejects_malformed_requests", body)
