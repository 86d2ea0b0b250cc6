#!/usr/bin/env python3
"""Idle keep-alive connections hold no read or write buffer: N TLS
connections (HTTP/1.1, then HTTP/2) each make one request and go quiet;
within about a second every one is parked (albd_connections_parked = N,
albd_connection_buffer_bytes = 0: OpenSSL's record buffers, albd's read,
staging and output buffers and the protocol scratch are released; no
HTTP/1.1 connection holds its per-request exchange between requests:
albd_connection_exchanges = 0, while a request that has begun holds one),
and the process grew by far less than the 16 KiB buffers each used to keep. Every
parked connection then serves another request (buffers taken again: a GET,
a 200 KB upload, pipelined requests, a second HTTP/2 stream) and parks
again. Plain HTTP connections park too."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (SANITIZE, certificate, echo_of, free_ports, http_listener,  # noqa: E402
                          https_listener, instance, log, proc_mem_kib, read_response, run, scaled,
                          server_group, socket)
import h2_frames as h2  # noqa: E402

N = 200
# RSS growth per idle connection with only 200 of them (2 workers, RSA) is
# noisy: 17 to 42 KiB seen on this build (OpenSSL's own state is ~14.5 KiB
# after SSL_free_buffers; the rest is malloc holes left by the buffers of
# connections set up before they parked, amortized over few connections).
# Before idle connections released their buffers: 63 KiB over HTTP/1.1 and
# 82 over HTTP/2. The bound sits between; the metrics are the exact check.
MAX_KIB_H1, MAX_KIB_H2 = 52, 52


def metric(albd, name):
    v = albd.metric(name)
    return None if v is None else int(v)


def wait_parked(albd, n, timeout):
    """Polls until albd_connections_parked reaches n; returns what it saw."""
    end = time.monotonic() + timeout
    seen = None
    while time.monotonic() < end:
        seen = metric(albd, "albd_connections_parked")
        if seen is not None and seen >= n:
            break
        time.sleep(0.1)
    return seen


def h1_get(f, s, host, path):
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    ver, st, hdrs, b, framing = read_response(f)
    return st, echo_of(b).get("path")


def h1_get_rest(f):
    ver, st, hdrs, b, framing = read_response(f)
    return st, echo_of(b).get("path")


def hpack_kinds(block):
    """The representations of an HPACK header block, in order: "indexed",
    "incremental" (literal added to the table), "size_update", "literal"
    (without indexing or never indexed). RFC 7541 6."""
    def integer(i, prefix):
        v = block[i] & ((1 << prefix) - 1)
        i += 1
        if v == (1 << prefix) - 1:
            shift = 0
            while True:
                b = block[i]
                i += 1
                v += (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    break
        return v, i

    def string(i):
        n, i = integer(i, 7)
        return i + n

    kinds, i = [], 0
    while i < len(block):
        b = block[i]
        if b & 0x80:
            kinds.append("indexed")
            _, i = integer(i, 7)
        elif b & 0x40:
            kinds.append("incremental")
            idx, i = integer(i, 6)
            i = string(i if idx else string(i))
        elif b & 0x20:
            kinds.append("size_update")
            _, i = integer(i, 5)
        else:
            kinds.append("literal")
            idx, i = integer(i, 4)
            i = string(i if idx else string(i))
    return kinds


def h2_response_block(conn, stream, authority, path, timeout):
    """The response header block of one GET on stream (None if none)."""
    conn.request(stream, "GET", authority, path)
    block = None
    for fr in conn.frames(timeout):
        if fr.stream != stream:
            continue
        if fr.type == h2.HEADERS and block is None:
            block = bytes(fr.payload)
        if fr.type in (h2.HEADERS, h2.DATA) and fr.flags & h2.END_STREAM:
            break
        if fr.type == h2.RST_STREAM:
            break
    return block


def h2_exchange(conn, stream, authority, path, timeout):
    """One GET on stream; True when its response ends with :status 200."""
    conn.request(stream, "GET", authority, path)
    status = None
    for fr in conn.frames(timeout):
        if fr.stream != stream:
            continue
        if fr.type == h2.HEADERS and status is None:
            status = h2.status_of(fr.payload)
        if fr.type in (h2.HEADERS, h2.DATA) and fr.flags & h2.END_STREAM:
            return status == 200
        if fr.type == h2.RST_STREAM:
            return False
    return False


def body(env):
    c = env.check
    certs = env.certs()
    be = env.backend("a")
    port, p_http = free_ports(2)
    env.write_manifests(instance(), certificate("rsa", certs.rsa), server_group("web", [be.addr]),
                        https_listener("web", port, "rsa", "web", http2=True, idleTimeoutSeconds=120),
                        http_listener("plain", p_http, "web", idleTimeoutSeconds=120))
    albd = env.start_albd(ports=(port, p_http))
    host = f"{env.host}:{port}"

    # Warm-up: per-worker pools, TLS contexts, the upstream pool.
    for i in range(8):
        env.https("GET", port, f"/warm{i}")
    time.sleep(scaled(1))
    rss0 = proc_mem_kib(albd.pid, "VmRSS")

    # --- HTTP/1.1 over TLS -------------------------------------------------
    conns = []
    try:
        ok = 0
        for i in range(N):
            s = env.tls_socket(port)
            f = s.makefile("rb")
            conns.append((s, f))
            ok += h1_get(f, s, host, f"/one{i}") == (200, f"/one{i}")
        c.eq(ok, N, f"{N} HTTP/1.1 connections are each answered once")
        parked = wait_parked(albd, N, scaled(5))
        c.eq(parked, N, f"all {N} idle HTTP/1.1 connections are parked (albd_connections_parked)")
        c.eq(metric(albd, "albd_connection_buffer_bytes"), 0,
             "idle connections hold no pooled read or write buffer (albd_connection_buffer_bytes)")
        c.eq(metric(albd, "albd_connection_exchanges"), 0,
             "idle HTTP/1.1 connections hold no request exchange (albd_connection_exchanges)")
        per = (proc_mem_kib(albd.pid, "VmRSS") - rss0) / N
        log(f"RSS per idle HTTP/1.1 TLS connection: {per:.1f} KiB")
        if not SANITIZE:  # ASan's quarantine and redzones say nothing about albd's own memory
            c.ok(per <= MAX_KIB_H1, f"an idle HTTP/1.1 TLS connection costs at most {MAX_KIB_H1} KiB",
                 f"<= {MAX_KIB_H1}", round(per, 1))

        # A request whose head has begun holds an exchange until its
        # response ends (the gauge counts for real).
        s, f = conns[0]
        s.sendall(f"GET /half HTTP/1.1\r\nHost: {host}\r\n".encode())
        seen = None
        end = time.monotonic() + scaled(5)
        while time.monotonic() < end:
            seen = metric(albd, "albd_connection_exchanges")
            if seen:
                break
            time.sleep(0.05)
        c.eq(seen, 1, "a request whose head is arriving holds one exchange")
        s.sendall(b"\r\n")
        c.eq(h1_get_rest(f), (200, "/half"), "... and is answered once its head is complete")
        seen = None
        end = time.monotonic() + scaled(5)
        while time.monotonic() < end:
            seen = metric(albd, "albd_connection_exchanges")
            if seen == 0:
                break
            time.sleep(0.05)
        c.eq(seen, 0, "the exchange goes back when the response ended")

        # Every parked connection is used again: buffers are taken again.
        ok = 0
        for i, (s, f) in enumerate(conns):
            if i % 50 == 1:
                data = b"x" * 200_000
                s.sendall(f"POST /up{i} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(data)}\r\n\r\n"
                          .encode() + data)
                ver, st, hdrs, b, framing = read_response(f)
                e = echo_of(b)
                ok += st == 200 and e.get("path") == f"/up{i}" and e.get("body_len", len(data)) == len(data)
            elif i % 50 == 2:
                s.sendall(f"GET /p{i}a HTTP/1.1\r\nHost: {host}\r\n\r\nGET /p{i}b HTTP/1.1\r\nHost: {host}\r\n\r\n"
                          .encode())
                r1 = read_response(f)
                r2 = read_response(f)
                ok += (r1[1], echo_of(r1[3]).get("path"), r2[1], echo_of(r2[3]).get("path")) == \
                    (200, f"/p{i}a", 200, f"/p{i}b")
            elif i % 50 == 3:
                s.sendall(f"GET /big{i}?bytes=70000 HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
                ver, st, hdrs, b, framing = read_response(f)
                ok += st == 200 and len(b) == 70000
            else:
                ok += h1_get(f, s, host, f"/two{i}") == (200, f"/two{i}")
        c.eq(ok, N, "every parked HTTP/1.1 connection serves its next request (GET, upload, large response, pipelined)")
        parked = wait_parked(albd, N, scaled(5))
        c.eq(parked, N, "after their second request they park again")
        c.eq(metric(albd, "albd_connection_exchanges"), 0,
             "and hold no exchange (uploads, large and pipelined responses gave theirs back)")
    finally:
        for s, f in conns:
            f.close()
            s.close()
    deadline = time.monotonic() + scaled(5)
    while time.monotonic() < deadline and metric(albd, "albd_connections_active"):
        time.sleep(0.1)
    c.eq(metric(albd, "albd_connections_parked"), 0, "closed connections are no longer counted as parked")

    # --- HTTP/2 --------------------------------------------------------------
    rss1 = proc_mem_kib(albd.pid, "VmRSS")
    conns = []
    try:
        ok = 0
        for i in range(N):
            conn = h2.H2Conn.connect(env, port)
            conns.append(conn)
            ok += conn.alpn() == "h2" and h2_exchange(conn, 1, host, f"/h2one{i}", scaled(10))
        c.eq(ok, N, f"{N} HTTP/2 connections are each answered once")
        parked = wait_parked(albd, N, scaled(5))
        c.eq(parked, N, f"all {N} idle HTTP/2 connections are parked")
        c.eq(metric(albd, "albd_connection_buffer_bytes"), 0, "idle HTTP/2 connections hold no pooled buffer")
        per = (proc_mem_kib(albd.pid, "VmRSS") - rss1) / N
        log(f"RSS per idle HTTP/2 TLS connection: {per:.1f} KiB")
        if not SANITIZE:
            c.ok(per <= MAX_KIB_H2, f"an idle HTTP/2 TLS connection costs at most {MAX_KIB_H2} KiB",
                 f"<= {MAX_KIB_H2}", round(per, 1))
        # albd indexes no response field (as nginx and HAProxy do), so that
        # no idle session holds HPACK entries of its own.
        kinds = [hpack_kinds(h2_response_block(conns[0], 3, host, "/h2kinds", scaled(10)) or b"")]
        kinds += [hpack_kinds(h2_response_block(conns[0], 5, host, "/h2kinds2", scaled(10)) or b"")]
        log(f"HPACK representations of two responses: {kinds}")
        c.ok(all(kinds) and "incremental" not in kinds[0] + kinds[1],
             "responses are sent without HPACK indexing", "no incremental indexing", kinds)
        ok = sum(h2_exchange(conn, 3 if i else 7, host, f"/h2two{i}", scaled(10)) for i, conn in enumerate(conns))
        c.eq(ok, N, "every parked HTTP/2 connection serves a new stream")
        c.eq(wait_parked(albd, N, scaled(5)), N, "and parks again")
    finally:
        for conn in conns:
            conn.close()

    # --- plain HTTP -----------------------------------------------------------
    deadline = time.monotonic() + scaled(5)
    while time.monotonic() < deadline and metric(albd, "albd_connections_active"):
        time.sleep(0.1)
    s = socket.create_connection(("127.0.0.1", p_http), timeout=scaled(10))
    f = s.makefile("rb")
    try:
        phost = f"127.0.0.1:{p_http}"
        c.eq(h1_get(f, s, phost, "/plain1"), (200, "/plain1"), "a plain HTTP request is answered")
        c.eq(wait_parked(albd, 1, scaled(5)), 1, "the idle plain HTTP connection is parked")
        c.eq(h1_get(f, s, phost, "/plain2"), (200, "/plain2"), "and serves its next request")
    finally:
        f.close()
        s.close()
    albd.check_clean_exit(c)


run("idle_connections_hold_no_buffers", body)
