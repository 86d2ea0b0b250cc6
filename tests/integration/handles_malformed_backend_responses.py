#!/usr/bin/env python3
"""A backend that answers with malformed or truncated responses (both
Content-Length and Transfer-Encoding, duplicate or invalid Content-Length, a
transfer coding other than chunked, a bad chunk size, a close or reset
mid-body) never gives the client a clean end: before albd relayed the head
the client gets 502, after it the client sees the transfer cut (curl fails
over HTTP/1.1, RST_STREAM over HTTP/2, a TCP reset for an HTTP/1.0 client,
whose body is close-delimited).
Interim 1xx responses (100, 103 Early Hints, several in a row) come before
the final one, and bytes a backend sends after its response never reach
another request."""
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import h2_frames as h2  # noqa: E402
from albd_harness import (certificate, free_ports, header, http_listener, https_listener,  # noqa: E402
                          instance, read_response, run, scaled, server_group)
from raw_backend import CLOSE, RESET, RawBackend, curl_run, h2_collect, response  # noqa: E402

HEAD_CL100 = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n"
HEAD_CHUNKED = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
OK = response(200, b"final")
PAUSE = ("sleep", 0.05)  # the head leaves albd before the bad bytes arrive

# path -> (backend steps, what the client must see). "502": albd answers
# 502 itself; "abort": the head was relayed and the body is cut; "ok": a
# clean 200 with body b"final" (or the body given).
CASES = {
    "/cl-and-te": ([b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"5\r\nhello\r\n0\r\n\r\n"], "502"),
    "/te-and-cl": ([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
                    b"5\r\nhello\r\n0\r\n\r\n"], "502"),
    "/duplicate-cl": ([b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello!!"], "502"),
    "/cl-list": ([b"HTTP/1.1 200 OK\r\nContent-Length: 5, 7\r\n\r\nhello!!"], "502"),
    "/cl-not-a-number": ([b"HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\nhello"], "502"),
    "/cl-negative": ([b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nhello"], "502"),
    "/bad-status-line": ([b"HTTP/1.1 2x0 OK\r\nContent-Length: 5\r\n\r\nhello"], "502"),
    "/unsolicited-101": ([b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
                          b"raw bytes"], "502"),
    # albd decodes only chunked: another coding would reach the client
    # still encoded, its Transfer-Encoding dropped (nginx answers 502 too).
    "/te-gzip-chunked": ([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                          b"5\r\n\x1f\x8b\x08\x00\x00\r\n0\r\n\r\n"], "502"),
    "/te-gzip-close": ([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n\x1f\x8b\x08\x00\x00", CLOSE],
                       "502"),
    "/te-two-fields": ([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
                        b"5\r\nhello\r\n0\r\n\r\n"], "502"),
    "/close-before-head-end": ([b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", CLOSE], "502"),
    "/bad-chunk-size": ([HEAD_CHUNKED, PAUSE, b"5\r\nhello\r\nzz\r\nmore\r\n0\r\n\r\n"], "abort"),
    "/chunk-size-overflow": ([HEAD_CHUNKED, PAUSE, b"5\r\nhello\r\n1ffffffffffffffff\r\nx\r\n0\r\n\r\n"], "abort"),
    "/chunk-without-crlf": ([HEAD_CHUNKED, PAUSE, b"5\r\nhelloXX3\r\nabc\r\n0\r\n\r\n"], "abort"),
    "/close-mid-length": ([HEAD_CL100, PAUSE, b"x" * 50, CLOSE], "abort"),
    "/reset-mid-length": ([HEAD_CL100, PAUSE, b"x" * 50, ("sleep", 0.05), RESET], "abort"),
    "/close-mid-chunked": ([HEAD_CHUNKED, PAUSE, b"a\r\n0123456789\r\n", CLOSE], "abort"),
    "/close-mid-chunk": ([HEAD_CHUNKED, PAUSE, b"a\r\n01234", CLOSE], "abort"),
    "/reset-mid-chunked": ([HEAD_CHUNKED, PAUSE, b"a\r\n0123456789\r\n", ("sleep", 0.05), RESET], "abort"),
    "/close-delimited": ([b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nfinal", CLOSE], "ok"),
    "/interim-100": ([b"HTTP/1.1 100 Continue\r\n\r\n", OK], "ok"),
    "/early-hints": ([b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n", OK], "ok"),
    "/two-interims": ([b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n",
                       b"HTTP/1.1 103 Early Hints\r\nLink: </b.js>; rel=preload\r\n\r\n", OK], "ok"),
}
# A response followed by the head and body of a second one nobody asked
# for: if albd pooled that connection, the next request would get it.
SMUGGLED = response(200, b"first") + response(200, b"SMUGGLED")


def script(req):
    path = req.path.split("?")[0]
    if path in CASES:
        return CASES[path][0]
    if path == "/extra-response":
        return [SMUGGLED]
    return [response(200, f"fresh conn={req.conn} index={req.index}".encode())]


def body(env):
    c = env.check
    certs = env.certs()
    be = RawBackend(script)
    env.backends.append(be)
    p_http, p_h2 = free_ports(2)
    env.write_manifests(
        instance(),
        certificate("rsa", certs.rsa),
        server_group("raw", [be.addr]),
        http_listener("plain", p_http, "raw"),
        https_listener("h2", p_h2, "rsa", "raw", http2=True))
    albd = env.start_albd(ports=(p_http, p_h2), workers=1)

    # HTTP/1.1 clients (curl): exit 0 only for a complete response.
    for path, (_, want) in CASES.items():
        rc, code, got, err, _ = curl_run(env, env.url(p_http, path, tls=False), timeout=scaled(10))
        if want == "502":
            c.eq((rc, code), (0, 502), f"HTTP/1.1 {path}: albd answers 502")
        elif want == "abort":
            c.ok(rc != 0 and code == 200, f"HTTP/1.1 {path}: the 200 head is relayed, then the transfer is cut",
                 "curl fails after a 200 head (exit 18 or 56)", (rc, code, err.strip()[-160:]))
        else:
            c.eq((rc, code, got), (0, 200, b"final"), f"HTTP/1.1 {path}: a clean 200 with the final body")

    # HTTP/2 clients (raw frames): RST_STREAM, never END_STREAM, on a cut.
    for path, (_, want) in CASES.items():
        conn = h2.H2Conn.connect(env, p_h2)
        try:
            conn.request(1, "GET", env.host, path)
            how, head, data, code = h2_collect(conn, 1, scaled(10))
        finally:
            conn.close()
        if want == "502":
            c.eq((how, data[:4]), ("end", b"502 "), f"HTTP/2 {path}: albd answers 502")
        elif want == "abort":
            c.eq((how, code), ("rst", h2.INTERNAL_ERROR),
                 f"HTTP/2 {path}: the stream is reset (RST_STREAM INTERNAL_ERROR), never ended cleanly")
        else:
            c.eq((how, h2.status_of(head), data), ("end", 200, b"final"),
                 f"HTTP/2 {path}: a clean 200 with the final body")

    # Interim responses reach an HTTP/1.1 client in order, before the final one.
    for path, n_interim in (("/early-hints", 1), ("/two-interims", 2), ("/interim-100", 1)):
        s = socket.create_connection(("127.0.0.1", p_http), timeout=scaled(10))
        f = s.makefile("rb")
        try:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {env.host}\r\n\r\n".encode())
            seen = []
            while True:
                ver, status, hdrs, b, _ = read_response(f)
                seen.append((status, header(hdrs, "Link"), b))
                if status >= 200:
                    break
        finally:
            f.close()
            s.close()
        statuses = [x[0] for x in seen]
        want_status = {"/interim-100": [100, 200]}.get(path, [103] * n_interim + [200])
        c.eq(statuses, want_status, f"HTTP/1.1 {path}: the interim responses, then 200")
        if path != "/interim-100":
            c.ok(all(x[1] for x in seen[:-1]), f"HTTP/1.1 {path}: each 103 keeps its Link header",
                 "a Link header on every 103", seen)
        c.eq(seen[-1][2], b"final", f"HTTP/1.1 {path}: the final body follows")

    # HTTP/1.0 clients get a chunked backend body close-delimited: a cut one
    # must end in a TCP reset, never a FIN that looks like the end of a
    # complete body. (A Content-Length body keeps its length: the client
    # can count.)
    for path, want in (("/close-mid-chunked", "reset"), ("/reset-mid-chunked", "reset"),
                       ("/close-delimited", "eof")):
        s = socket.create_connection(("127.0.0.1", p_http), timeout=scaled(10))
        got, how = b"", "eof"
        try:
            s.sendall(f"GET {path} HTTP/1.0\r\nHost: {env.host}\r\n\r\n".encode())
            while True:
                d = s.recv(65536)
                if not d:
                    break
                got += d
        except ConnectionResetError:
            how = "reset"
        except (socket.timeout, TimeoutError):
            how = "timeout"
        finally:
            s.close()
        c.eq(how, want, f"HTTP/1.0 {path}: the close-delimited body ends in a "
             + ("TCP reset (cut)" if want == "reset" else "clean FIN (complete)"))
        if want == "eof":
            c.ok(got.startswith(b"HTTP/1.0 200") and got.endswith(b"\r\n\r\nfinal"),
                 f"HTTP/1.0 {path}: the whole body", "HTTP/1.0 200 ... final", got[-80:])

    # Bytes after a complete response: the connection is not pooled, so the
    # next request never gets the unrequested second response.
    s = socket.create_connection(("127.0.0.1", p_http), timeout=scaled(10))
    f = s.makefile("rb")
    try:
        s.sendall(f"GET /extra-response HTTP/1.1\r\nHost: {env.host}\r\n\r\n".encode())
        _, st1, _, b1, _ = read_response(f)
        s.sendall(f"GET /next HTTP/1.1\r\nHost: {env.host}\r\n\r\n".encode())
        _, st2, _, b2, _ = read_response(f)
    finally:
        f.close()
        s.close()
    c.eq((st1, b1), (200, b"first"), "a response with trailing bytes: the client gets the response")
    c.ok(st2 == 200 and b2.startswith(b"fresh"),
         "the next request goes to a fresh backend connection, never gets the trailing bytes",
         "200 fresh conn=...", (st2, b2))
    nxt = [r for r in be.requests if r.path == "/next"]
    extra = [r for r in be.requests if r.path == "/extra-response"]
    c.ok(len(nxt) == 1 and len(extra) == 1 and nxt[0].conn != extra[0].conn,
         "... on another backend connection than the one with trailing bytes", "different conns",
         [(r.path, r.conn) for r in nxt + extra])

    code, _, _ = env.curl(env.url(p_h2, "/after"))
    c.eq(code, 200, "albd still serves after every malformed response")
    albd.check_clean_exit(c)


run("handles_malformed_backend_responses", body)
