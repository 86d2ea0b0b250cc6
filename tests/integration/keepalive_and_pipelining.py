#!/usr/bin/env python3
"""Several requests on one TLS connection, pipelined in a single write, get
complete answers in order; an HTTP/1.0 client gets an HTTP/1.0-compatible
answer (no chunking, connection closed) and the backend is asked in HTTP/1.0."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (certificate, echo_of, free_ports, hashlib, header, https_listener,  # noqa: E402
                          instance, pattern_sha256, read_response, run, scaled, server_group,
                          wait_closed)


def body(env):
    c = env.check
    certs = env.certs()
    be = env.backend("a")
    (port,) = free_ports(1)
    env.write_manifests(instance(), certificate("rsa", certs.rsa), server_group("web", [be.addr]),
                        https_listener("web", port, "rsa", "web"))
    albd = env.start_albd(ports=(port,))
    host = f"{env.host}:{port}"

    # Pipelined: five GETs, a POST with a body, a chunked streamed answer, a HEAD.
    post_body = os.urandom(5000)
    reqs = [f"GET /p{i} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode() for i in range(5)]
    reqs.append(f"POST /post HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(post_body)}\r\n\r\n".encode()
                + post_body)
    reqs.append(f"GET /stream?bytes=300000&chunked=1 HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    reqs.append(f"HEAD /head HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    methods = ["GET"] * 5 + ["POST", "GET", "HEAD"]
    s = env.tls_socket(port)
    f = s.makefile("rb")
    try:
        s.sendall(b"".join(reqs))
        answers = []
        for m in methods:
            try:
                answers.append(read_response(f, m))
            except (OSError, ValueError) as ex:
                c.ok(False, f"pipelined response {len(answers) + 1} read", "a response", repr(ex))
                break
        c.eq(len(answers), len(reqs), "every pipelined request got a response")
        for i, (ver, st, hdrs, b, framing) in enumerate(answers[:5]):
            c.eq((st, echo_of(b).get("path")), (200, f"/p{i}"), f"pipelined response {i + 1} in order")
        if len(answers) >= 6:
            e = echo_of(answers[5][3])
            c.eq((answers[5][1], e.get("body_sha256")), (200, hashlib.sha256(post_body).hexdigest()),
                 "pipelined POST body arrived whole")
        if len(answers) >= 7:
            b = answers[6][3]
            c.eq((answers[6][1], len(b), hashlib.sha256(b).hexdigest()), (200, 300000, pattern_sha256(300000)),
                 "pipelined streamed answer is complete")
        if len(answers) >= 8:
            c.eq((answers[7][1], answers[7][3]), (200, b""), "pipelined HEAD answered without a body")

        # The connection is still usable afterwards (keep-alive).
        s.sendall(f"GET /after HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        ver, st, hdrs, b, framing = read_response(f)
        c.eq((st, echo_of(b).get("path")), (200, "/after"), "keep-alive connection serves a later request")
        c.ok(framing in ("length", "chunked"), "keep-alive answers are delimited", "length or chunked", framing)
    finally:
        f.close()
        s.close()

    # Sequential requests on one http.client connection.
    conn = env.connection(port)
    try:
        ok = 0
        for i in range(20):
            conn.request("GET", f"/seq{i}")
            r = conn.getresponse()
            if r.status == 200 and echo_of(r.read()).get("path") == f"/seq{i}":
                ok += 1
        c.eq(ok, 20, "20 sequential requests on one keep-alive connection")
    finally:
        conn.close()

    # HTTP/1.0 client.
    s = env.tls_socket(port)
    f = s.makefile("rb")
    try:
        before = be.count()
        s.sendall(f"GET /ten HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        ver, st, hdrs, b, framing = read_response(f)
        c.eq(st, 200, "HTTP/1.0 request answers 200")
        c.ok(ver in ("HTTP/1.0", "HTTP/1.1"), "HTTP/1.0 answer has an HTTP/1.x status line", "HTTP/1.x", ver)
        c.eq(header(hdrs, "Transfer-Encoding"), [], "HTTP/1.0 answer is not chunked")
        c.eq(echo_of(b).get("path"), "/ten", "HTTP/1.0 answer body is complete")
        c.eq(echo_of(b).get("version"), "HTTP/1.0", "backend is asked in HTTP/1.0 for an HTTP/1.0 client")
        closed, waited, rest = wait_closed(s, scaled(5))
        c.eq((closed, rest), (True, b""), "albd closes an HTTP/1.0 connection after the answer")
        c.eq(be.count(), before + 1, "backend saw the HTTP/1.0 request once")
    finally:
        f.close()
        s.close()

    # HTTP/1.0 with a streamed answer larger than one buffer.
    s = env.tls_socket(port)
    f = s.makefile("rb")
    try:
        s.sendall(f"GET /stream?bytes=200000&chunked=1 HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        ver, st, hdrs, b, framing = read_response(f)
        c.eq(header(hdrs, "Transfer-Encoding"), [], "HTTP/1.0 streamed answer is not chunked")
        c.eq((len(b), hashlib.sha256(b).hexdigest()), (200000, pattern_sha256(200000)),
             "HTTP/1.0 streamed answer is complete")
    finally:
        f.close()
        s.close()

    # HTTP/1.1 client: backend asked in HTTP/1.1.
    st, _, b = env.https("GET", port, "/eleven")
    c.eq(echo_of(b).get("version"), "HTTP/1.1", "backend is asked in HTTP/1.1 for an HTTP/1.1 client")

    albd.check_clean_exit(c)


run("keepalive_and_pipelining", body)
