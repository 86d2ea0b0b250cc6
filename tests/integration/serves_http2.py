#!/usr/bin/env python3
"""HTTP/2 on an HTTPS listener with http2: true (ALPN h2): requests reach the
backend as HTTP/1.1 with Host from :authority and X-Forwarded-For/-Proto;
request bodies with and without a length arrive intact; response header
names are lowercase, hop-by-hop fields are gone and chunked trailers become
HTTP/2 trailers, also after a 120,000-byte body whose DATA frames albd
writes from its response buffer (nghttp2 NO_COPY); h2load's 2000 requests over 4 connections x 50 streams all
get 200; a slow backend gets a stream 504 after the request timeout while
another stream on the same connection is answered; a listener with
http2: false stays on HTTP/1.1."""
import os
import re
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (certificate, echo_header, echo_of, free_ports, hashlib,  # noqa: E402
                          https_listener, instance, run, scaled, server_group)
import h2_frames as h2  # noqa: E402

RAW_RESPONSE = (b"HTTP/1.1 200 OK\r\nX-Mixed-Case: yes\r\nConnection: keep-alive, X-Hop\r\n"
                b"X-Hop: drop-me\r\nKeep-Alive: timeout=5\r\nTrailer: X-Checksum\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Checksum: abc123\r\n\r\n")
# For /bigtrailer: 120,000 bytes in three chunks, then a trailer with their
# SHA-256 — over HTTP/2 the last DATA frames are written from albd's
# response buffer (nghttp2 NO_COPY), the last one with the trailer after it.
BIG_BODY = bytes(range(256)) * 468 + b"x" * 192
BIG_SUM = hashlib.sha256(BIG_BODY).hexdigest()
BIG_RESPONSE = (b"HTTP/1.1 200 OK\r\nTrailer: X-Checksum\r\nTransfer-Encoding: chunked\r\n\r\n" +
                b"".join(b"%x\r\n" % 40000 + BIG_BODY[i:i + 40000] + b"\r\n" for i in range(0, 120000, 40000)) +
                b"0\r\nX-Checksum: " + BIG_SUM.encode() + b"\r\n\r\n")


def raw_backend():
    """A backend answering every request with RAW_RESPONSE (hop-by-hop
    fields, a mixed-case name, a chunked body with a trailer); returns the
    listening socket and the list of byte strings it received."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    received = []

    def serve(conn):
        buf = b""
        with conn:
            while True:
                try:
                    b = conn.recv(65536)
                except OSError:
                    return
                if not b:
                    return
                buf += b
                received.append(b)
                while b"\r\n\r\n" in buf:
                    head, _, rest = buf.partition(b"\r\n\r\n")
                    if b"transfer-encoding: chunked" in head.lower():
                        # Wait for the last chunk and the trailer section.
                        end = rest.find(b"0\r\n")
                        if end < 0 or rest.find(b"\r\n\r\n", end) < 0 and not rest[end:].startswith(b"0\r\n\r\n"):
                            break
                        tail = rest.find(b"\r\n\r\n", end)
                        rest = rest[(end + 5 if rest[end:].startswith(b"0\r\n\r\n") else tail + 4):]
                    buf = rest
                    conn.sendall(BIG_RESPONSE if b"/bigtrailer" in head else RAW_RESPONSE)

    def accept():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return srv, received


def body(env):
    c = env.check
    certs = env.certs()
    be = env.backend("a")
    raw, raw_received = raw_backend()
    p_h2, p_h1, p_raw, p_slow = free_ports(4)
    env.write_manifests(
        instance(), certificate("rsa", certs.rsa), server_group("web", [be.addr]),
        server_group("raw", [("127.0.0.1", raw.getsockname()[1])]),
        https_listener("h2", p_h2, "rsa", "web", http2=True, headers={"proto": True}),
        https_listener("h1", p_h1, "rsa", "web", http2=False),
        https_listener("raw", p_raw, "rsa", "raw", http2=True),
        https_listener("slow", p_slow, "rsa", "web", http2=True, requestTimeoutSeconds=1))
    albd = env.start_albd(ports=(p_h2, p_h1, p_raw, p_slow))

    # 1. A GET over HTTP/2 reaches the backend as HTTP/1.1 with the forwarded headers.
    code, out, err = env.curl(env.url(p_h2, "/hello?x=1"), "--http2", "-H", "X-Client: one")
    e = echo_of(out)
    c.eq(code, 200, "GET over HTTP/2 answers 200")
    c.eq((e.get("path"), e.get("version")), ("/hello?x=1", "HTTP/1.1"), "the backend sees the path over HTTP/1.1")
    c.eq(echo_header(e, "Host"), [f"{env.host}:{p_h2}"], "Host comes from :authority")
    c.eq(echo_header(e, "X-Forwarded-For"), ["127.0.0.1"], "X-Forwarded-For is the client address")
    c.eq(echo_header(e, "X-Forwarded-Proto"), ["https"], "X-Forwarded-Proto is https")
    c.eq(echo_header(e, "X-Client"), ["one"], "client headers are forwarded")
    r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_version}", "--http2", "--cacert",
                        certs.ca.cert, "--resolve", f"{env.host}:{p_h2}:127.0.0.1", env.url(p_h2, "/v")],
                       capture_output=True, text=True, timeout=scaled(20))
    c.eq(r.stdout, "2", "curl negotiated HTTP/2 (ALPN h2)")

    # 2. Request bodies: with a Content-Length, and without (forwarded chunked).
    data = os.urandom(300000)
    path = os.path.join(env.dir, "body.bin")
    with open(path, "wb") as f:
        f.write(data)
    want = hashlib.sha256(data).hexdigest()
    code, out, _ = env.curl(env.url(p_h2, "/post"), "--http2", "--data-binary", f"@{path}")
    e = echo_of(out)
    c.eq((code, e.get("body_len"), e.get("body_sha256")), (200, len(data), want),
         "a POST body with a length arrives intact")
    with open(path, "rb") as stdin:
        r = subprocess.run(["curl", "-sS", "--http2", "--cacert", certs.ca.cert, "--resolve",
                            f"{env.host}:{p_h2}:127.0.0.1", "-T", "-", "-X", "POST", env.url(p_h2, "/chunked")],
                           stdin=stdin, capture_output=True, timeout=scaled(20))
    e = echo_of(r.stdout)
    c.eq((e.get("body_len"), e.get("body_sha256")), (len(data), want),
         "a POST body without a length arrives intact (chunked to the backend)")
    c.eq(echo_header(e, "Transfer-Encoding"), ["chunked"], "... framed chunked to the backend")

    # 3. Response header names lowercase, hop-by-hop gone, trailers forwarded.
    r = subprocess.run(["nghttp", "-v", f"https://127.0.0.1:{p_raw}/raw"], capture_output=True, text=True,
                       timeout=scaled(20))
    out = r.stdout
    # nghttp prints each received field as "[  0.003] recv (stream_id=13) name: value".
    fields = [m.group(1) for m in re.finditer(r"recv \(stream_id=\d+\) ([^:\n][^\n]*)", out)]
    c.ok("x-mixed-case: yes" in fields, "response header names are lowercased", "x-mixed-case: yes", fields)
    hop = [f for f in fields if f.split(":")[0] in ("connection", "keep-alive", "transfer-encoding", "x-hop",
                                                     "upgrade", "proxy-connection")]
    c.eq(hop, [], "hop-by-hop response fields (and those Connection names) are removed")
    c.ok("x-checksum: abc123" in fields, "a chunked response's trailer arrives as an HTTP/2 trailer",
         "x-checksum: abc123", fields)
    c.ok("hello" in out, "the chunked response body arrives", "hello", out[-500:])
    # Windows large enough that the whole body goes without waiting for a WINDOW_UPDATE.
    r = subprocess.run(["nghttp", "-v", "-n", "-w", "24", "-W", "24", f"https://127.0.0.1:{p_raw}/bigtrailer"],
                       capture_output=True, text=True, timeout=scaled(20))
    fields = [m.group(1) for m in re.finditer(r"recv \(stream_id=\d+\) ([^:\n][^\n]*)", r.stdout)]
    c.ok(f"x-checksum: {BIG_SUM}" in fields, "a large chunked response's trailer follows its last DATA frame",
         f"x-checksum: {BIG_SUM}", fields)
    code, out, _ = env.curl(f"https://{env.host}:{p_raw}/bigtrailer", "--http2")
    c.eq((code, len(out), hashlib.sha256(out).hexdigest()),
         (200, len(BIG_BODY), BIG_SUM), "... and its 120,000-byte body arrives intact over HTTP/2")

    # 3b. Request trailers go to an HTTP/1.1 backend as chunked trailers.
    conn = h2.H2Conn.connect(env, p_raw)
    conn.request(1, "POST", env.host, "/trailers", extra=[("te", "trailers")], end_stream=False)
    conn.send(h2.frame(h2.DATA, 0, 1, b"hello") +
              h2.frame(h2.HEADERS, h2.END_HEADERS | h2.END_STREAM, 1, h2.hpack([("x-req-trailer", "t1")])))
    status = None
    for f in conn.frames(scaled(5)):
        if f.stream == 1 and f.type == h2.HEADERS and status is None:
            status = h2.status_of(f.payload)
        if f.stream == 1 and f.flags & h2.END_STREAM:
            break
    conn.close()
    got = b"".join(raw_received)
    c.eq(status, 200, "a request with trailers is answered")
    c.ok(b"\r\n5\r\nhello\r\n0\r\nx-req-trailer: t1\r\n\r\n" in got,
         "request trailers reach the backend as chunked trailers", "0\\r\\nx-req-trailer: t1", got[-300:])

    # 4. Many concurrent streams on few connections.
    r = subprocess.run(["h2load", "-n", "2000", "-c", "4", "-m", "50", f"https://127.0.0.1:{p_h2}/load"],
                       capture_output=True, text=True, timeout=scaled(60))
    c.ok("2000 succeeded" in r.stdout and "status codes: 2000 2xx" in r.stdout,
         "h2load: 2000 requests over 4 connections x 50 streams all 200", "2000 succeeded, 2000 2xx",
         [ln for ln in r.stdout.splitlines() if ln.startswith(("requests:", "status codes:"))] or r.stderr[-300:])
    c.ok("h2" in r.stdout.split("Application protocol:")[-1][:10], "h2load used h2", "h2", r.stdout[:300])

    # 5. A slow backend gets one stream a 504; another stream on the same
    #    connection is answered meanwhile.
    conn = h2.H2Conn.connect(env, p_slow)
    c.eq(conn.alpn(), "h2", "the raw client negotiated h2")
    t0 = time.monotonic()
    conn.request(1, "GET", env.host, "/slow?delay=4")
    conn.request(3, "GET", env.host, "/fast")
    got, ended = {}, {}
    for f in conn.frames(scaled(8)):
        if f.type == h2.HEADERS and f.stream not in got:
            got[f.stream] = (f.payload, time.monotonic() - t0)
        if f.flags & h2.END_STREAM and f.type in (h2.HEADERS, h2.DATA):
            ended[f.stream] = time.monotonic() - t0
        if 1 in ended and 3 in ended:
            break
    conn.close()
    c.eq(h2.status_of(got.get(3, (b"", 0))[0]), 200, "the fast stream is answered 200")
    blk = got.get(1, (b"", 0))[0]
    c.ok(b"504" in blk, "the slow stream gets a 504", "504 in the header block", blk)
    c.within(round(got.get(1, (b"", 99))[1], 2), 0.9, scaled(2.5), "the 504 comes after about 1 s")
    code, out, _ = env.curl(env.url(p_slow, "/slow?delay=4"), "--http2", timeout=scaled(10))
    c.eq(code, 504, "curl --http2 sees the 504")

    # 6. http2: false keeps the listener on HTTP/1.1 (ALPN).
    r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_version}", "--http2", "--cacert",
                        certs.ca.cert, "--resolve", f"{env.host}:{p_h1}:127.0.0.1", env.url(p_h1, "/v")],
                       capture_output=True, text=True, timeout=scaled(20))
    c.eq(r.stdout, "1.1", "a listener with http2: false answers over HTTP/1.1")
    raw.close()
    albd.check_clean_exit(c)


run("serves_http2", body)
