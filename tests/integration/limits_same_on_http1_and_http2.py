#!/usr/bin/env python3
"""A listener's `limits` give the same answer over HTTP/1.1 and HTTP/2 (one
HTTPS listener, both protocols by ALPN; maxRequestBodyBytes 1000,
headerTimeoutSeconds 1, minBodyRateBytesPerSecond 100, idleTimeoutSeconds
3). Each case asks both protocols and checks that each gets the expected
answer, and that the answers agree:
- a declared body over the limit: 413 at once, the backend sees nothing;
- a body with no declared length (chunked / DATA without content-length)
  crossing the limit: 413;
- a header block left unfinished, or trickled field by field (HTTP/2:
  CONTINUATION by CONTINUATION): 408 after headerTimeoutSeconds, then the
  connection closes (HTTP/2: 408 on the stream, GOAWAY, close);
- a connection that never sends a request: closed after idleTimeoutSeconds
  (not after headerTimeoutSeconds), without a response (HTTP/2: GOAWAY);
- a body trickled below the minimum rate: 408 once a 5 s window has passed;
- and a body inside every limit still gets 200 on both."""
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (certificate, free_ports, https_listener, instance, read_response, run, scaled,  # noqa: E402
                          server_group, wait_closed)
import h2_frames as h2  # noqa: E402

LIMITS = {"maxRequestBodyBytes": 1000, "headerTimeoutSeconds": 1, "minBodyRateBytesPerSecond": 100}
IDLE = 3


# -- HTTP/1.1 ----------------------------------------------------------------

def h1_answer(env, port, head, body_pieces=(), pace=0.0, wait=10.0):
    """Send head, then body pieces (pace seconds apart, stopping when albd
    answers or closes). (status or None, closed after?, seconds to the
    answer or close). One thread reads and writes: a reader thread's read
    racing the writer's on one SSL object breaks the connection when it
    falls on albd's post-handshake NewSessionTicket (Python's ssl does not
    serialise them; it cost a CI run)."""
    s = env.tls_socket(port)
    t0 = time.monotonic()
    end = t0 + scaled(wait)
    got, eof = bytearray(), False
    pending = list(body_pieces)
    next_send = t0 + pace
    try:
        s.sendall(head)
    except OSError:
        pending = []
    while not eof and b"\r\n" not in got:
        now = time.monotonic()
        if now >= end:
            break
        if pending and now >= next_send:
            try:
                s.sendall(pending.pop(0))
            except OSError:
                pending = []
            next_send = time.monotonic() + pace
            continue
        s.settimeout(max(0.01, min(end, next_send if pending else end) - now))
        try:
            b = s.recv(65536)
        except (socket.timeout, TimeoutError):
            continue
        except OSError:  # a reset, or a TLS EOF without close_notify
            eof = True
            continue
        eof = not b
        got += b
    took = time.monotonic() - t0
    status = None
    if b"\r\n" in got:
        parts = bytes(got).split(b"\r\n", 1)[0].split(b" ")
        if len(parts) >= 2 and parts[1].isdigit():
            status = int(parts[1])
    closed = eof or wait_closed(s, scaled(3))[0]
    s.close()
    return status, closed, took


def h1_idle(env, port):
    s = env.tls_socket(port)
    closed, took, data = wait_closed(s, scaled(IDLE + 4))
    s.close()
    return closed, took, data


# -- HTTP/2 -----------------------------------------------------------------

def h2_answer(env, port, frames, body_frames=(), pace=0.0, wait=10.0):
    """Send frames for stream 1, then body_frames (pace seconds apart) until
    albd answers. (status read from the answer's DATA, which albd's own
    error answers carry as "<status> <reason>", or 200 for a backend
    answer; GOAWAY error code or None; closed?; seconds to the answer)."""
    conn = h2.H2Conn.connect(env, port)
    # Take albd's SETTINGS first: the ACK the client answers with must not
    # fall inside an unfinished header block (a protocol error).
    for f in conn.frames(scaled(5)):
        if f.type == h2.SETTINGS and not f.flags & h2.ACK:
            break
    t0 = time.monotonic()
    status, goaway, took, body, head = None, None, None, b"", None
    pending = list(body_frames)
    try:
        conn.send(frames)
        next_send = time.monotonic() + pace
        end = time.monotonic() + scaled(wait)
        while time.monotonic() < end and not conn.closed:
            timeout = max(0.01, min(end, next_send if pending else end) - time.monotonic())
            for f in conn.frames(timeout):
                if f.type == h2.GOAWAY and goaway is None:
                    goaway = f.goaway()[1]
                if f.stream == 1 and f.type == h2.HEADERS and head is None:
                    head = f.payload
                if f.stream == 1 and f.type == h2.DATA:
                    body += f.payload
                if f.stream == 1 and f.flags & h2.END_STREAM and took is None:
                    took = time.monotonic() - t0
                    status = h2.status_of(head) or (int(body[:3]) if body[:3].isdigit() else "?")
                    pending = []
                if f.stream == 1 and f.type == h2.RST_STREAM and took is None:
                    took = time.monotonic() - t0
                    status = "RST_STREAM"
                    pending = []
                if took is not None or (pending and time.monotonic() >= next_send):
                    break
            if took is not None:
                break
            if pending and time.monotonic() >= next_send:
                conn.send(pending.pop(0))
                next_send = time.monotonic() + pace
        if took is not None:  # what follows the answer: GOAWAY and close?
            for f in conn.frames(scaled(2)):
                if f.type == h2.GOAWAY and goaway is None:
                    goaway = f.goaway()[1]
    except OSError:
        pass
    closed = conn.closed
    conn.close()
    return status, goaway, closed, took


def headers(env, path, extra=(), end_stream=False, end_headers=True):
    fields = [(":method", "POST"), (":scheme", "https"), (":authority", env.host), (":path", path)]
    return h2.frame(h2.HEADERS, (h2.END_HEADERS if end_headers else 0) | (h2.END_STREAM if end_stream else 0), 1,
                    h2.hpack(fields + list(extra)))


def data(payload, end=False):
    return h2.frame(h2.DATA, h2.END_STREAM if end else 0, 1, payload)


def body(env):
    c = env.check
    certs = env.certs()
    be = env.backend("a")
    (port,) = free_ports(1)
    env.write_manifests(instance(), certificate("rsa", certs.rsa), server_group("web", [be.addr]),
                        https_listener("main", port, "rsa", "web", http2=True, idleTimeoutSeconds=IDLE,
                                       limits=LIMITS))
    albd = env.start_albd(ports=(port,))
    host = env.host.encode()

    def paths_seen(path):
        return [r for r in be.requests if r["path"] == path]

    # 0. Inside every limit: 200 on both.
    st1, _, _ = h1_answer(env, port, b"POST /ok1 HTTP/1.1\r\nHost: " + host + b"\r\nContent-Length: 1000\r\n\r\n"
                          + b"x" * 1000)
    st2, _, _, _ = h2_answer(env, port, headers(env, "/ok2", [("content-length", "1000")]) + data(b"x" * 1000, True))
    c.eq((st1, st2), (200, 200), "a 1000-byte body (the limit): 200 over HTTP/1.1 and HTTP/2")

    # 1. Declared length over maxRequestBodyBytes: 413 up front.
    st1, _, _ = h1_answer(env, port, b"POST /cl1 HTTP/1.1\r\nHost: " + host + b"\r\nContent-Length: 1001\r\n\r\n")
    st2, _, _, _ = h2_answer(env, port, headers(env, "/cl2", [("content-length", "1001")]))
    c.eq(st1, 413, "HTTP/1.1: Content-Length over maxRequestBodyBytes is 413")
    c.eq(st2, 413, "HTTP/2: content-length over maxRequestBodyBytes is 413")
    c.eq(len(paths_seen("/cl1")) + len(paths_seen("/cl2")), 0, "... and neither reached the backend")

    # 2. No declared length, the body crosses the limit: 413.
    st1, _, _ = h1_answer(env, port, b"POST /ch1 HTTP/1.1\r\nHost: " + host +
                          b"\r\nTransfer-Encoding: chunked\r\n\r\n" + b"258\r\n" + b"y" * 600 + b"\r\n",
                          [b"258\r\n" + b"y" * 600 + b"\r\n", b"0\r\n\r\n"], pace=0.2)
    st2, _, _, _ = h2_answer(env, port, headers(env, "/ch2") + data(b"y" * 600),
                             [data(b"y" * 600), data(b"", True)], pace=0.2)
    c.eq(st1, 413, "HTTP/1.1: a chunked body crossing maxRequestBodyBytes is 413")
    c.eq(st2, 413, "HTTP/2: DATA without content-length crossing maxRequestBodyBytes is 413")

    # 3. A header block that is never finished: 408 after headerTimeoutSeconds, then close.
    st1, closed1, took1 = h1_answer(env, port, b"GET /slowhead1 HTTP/1.1\r\nHost: " + host + b"\r\nX-A: 1\r\n",
                                    wait=6)
    st2, ga2, closed2, took2 = h2_answer(env, port, headers(env, "/slowhead2", end_headers=False), wait=6)
    print(f"  unfinished head: HTTP/1.1 {st1} after {took1:.2f}s (closed {closed1}); "
          f"HTTP/2 {st2} after {took2 and round(took2, 2)}s, GOAWAY {ga2}, closed {closed2}")
    c.eq(st1, 408, "HTTP/1.1: an unfinished request head is 408")
    c.eq(st2, 408, "HTTP/2: an unfinished header block (no END_HEADERS) is 408 on its stream")
    c.within(round(took1, 2), 0.8, scaled(2.5), "HTTP/1.1: ... after headerTimeoutSeconds (1 s)")
    c.within(round(took2 or 99, 2), 0.8, scaled(2.5), "HTTP/2: ... after headerTimeoutSeconds (1 s)")
    c.ok(closed1, "HTTP/1.1: ... and the connection is closed")
    c.ok(ga2 == h2.NO_ERROR and closed2, "HTTP/2: ... GOAWAY and the connection is closed", (h2.NO_ERROR, True),
         (ga2, closed2))
    c.eq(len(paths_seen("/slowhead1")) + len(paths_seen("/slowhead2")), 0, "... and neither reached the backend")

    # 3b. The same, trickled: a field (HTTP/2: a CONTINUATION) every 0.4 s. The
    #     deadline runs from the first byte / frame, not from the last one.
    st1, closed1, took1 = h1_answer(env, port, b"GET /tricklehead1 HTTP/1.1\r\nHost: " + host + b"\r\n",
                                    [b"X-A: 1\r\n"] * 15, pace=0.4, wait=6)
    cont = h2.frame(h2.CONTINUATION, 0, 1, h2.hpack([("x-a", "1")]))
    st2, ga2, closed2, took2 = h2_answer(env, port, headers(env, "/tricklehead2", end_headers=False), [cont] * 15,
                                         pace=0.4, wait=6)
    print(f"  trickled head: HTTP/1.1 {st1} after {took1:.2f}s; HTTP/2 {st2} after {took2 and round(took2, 2)}s")
    c.eq((st1, st2), (408, 408), "a head trickled past headerTimeoutSeconds is 408 on both")
    c.within(round(took1, 2), 0.8, scaled(2.5), "HTTP/1.1: ... after headerTimeoutSeconds (1 s)")
    c.within(round(took2 or 99, 2), 0.8, scaled(2.5), "HTTP/2: ... after headerTimeoutSeconds (1 s)")
    c.ok(closed1 and closed2 and ga2 == h2.NO_ERROR, "... and both connections end (HTTP/2: GOAWAY)",
         (True, True, h2.NO_ERROR), (closed1, closed2, ga2))

    # 3c. HTTP/2 only (HTTP/1.1 has no frames): one HEADERS frame whose bytes
    #     trickle in, one every 0.3 s; same answer as the HTTP/1.1 head above.
    whole = headers(env, "/slowframe2")
    st2, ga2, closed2, took2 = h2_answer(env, port, whole[:12], [whole[i:i + 1] for i in range(12, len(whole))],
                                         pace=0.3, wait=6)
    c.eq(st2, st1, "HTTP/2: a HEADERS frame trickled byte by byte gets what HTTP/1.1 gets (408)")
    c.within(round(took2 or 99, 2), 0.8, scaled(2.5), "HTTP/2: ... after headerTimeoutSeconds (1 s)")

    # 4. A connection that never sends a request: closed after idleTimeoutSeconds.
    closed1, took1, data1 = h1_idle(env, port)
    conn = h2.H2Conn.connect(env, port)  # the preface and SETTINGS, then nothing
    t0, ga2 = time.monotonic(), None
    for f in conn.frames(scaled(IDLE + 4)):
        if f.type == h2.GOAWAY:
            ga2 = f.goaway()[1]
    took2, closed2 = time.monotonic() - t0, conn.closed
    conn.close()
    print(f"  no request: HTTP/1.1 closed {closed1} after {took1:.2f}s; HTTP/2 GOAWAY {ga2}, closed {closed2} "
          f"after {took2:.2f}s")
    c.ok(closed1 and data1 == b"", "HTTP/1.1: a silent connection is closed without a response", True,
         (closed1, data1[:40]))
    c.ok(closed2 and ga2 == h2.NO_ERROR, "HTTP/2: a silent connection gets GOAWAY NO_ERROR and is closed",
         True, (closed2, ga2))
    c.within(round(took1, 2), IDLE - 0.5, scaled(IDLE + 2), "HTTP/1.1: ... after idleTimeoutSeconds")
    c.within(round(took2, 2), IDLE - 0.5, scaled(IDLE + 2), "HTTP/2: ... after idleTimeoutSeconds")

    # 5. A body trickled at 20 B/s (minimum 100 B/s): 408 after the 5 s window.
    results = {}

    def trickle1():
        results[1] = h1_answer(env, port, b"POST /trickle1 HTTP/1.1\r\nHost: " + host +
                               b"\r\nContent-Length: 1000\r\n\r\n", [b"z" * 10] * 100, pace=0.5, wait=12)

    def trickle2():
        results[2] = h2_answer(env, port, headers(env, "/trickle2", [("content-length", "1000")]),
                               [data(b"z" * 10) for _ in range(100)], pace=0.5, wait=12)

    ths = [threading.Thread(target=trickle1), threading.Thread(target=trickle2)]
    for t in ths:
        t.start()
    for t in ths:
        t.join(scaled(20))
    st1, _, took1 = results.get(1, (None, None, 0))
    st2, _, _, took2 = results.get(2, (None, None, None, None))
    print(f"  trickle: HTTP/1.1 {st1} after {took1:.2f}s; HTTP/2 {st2} after {took2 and round(took2, 2)}s")
    c.eq(st1, 408, "HTTP/1.1: a body below minBodyRateBytesPerSecond is 408")
    c.eq(st2, 408, "HTTP/2: DATA below minBodyRateBytesPerSecond is 408")
    c.within(round(took1, 1), 4.5, scaled(8), "HTTP/1.1: ... once a 5 s window has passed")
    c.within(round(took2 or 99, 1), 4.5, scaled(8), "HTTP/2: ... once a 5 s window has passed")

    c.ok(albd.alive(), "albd is still running")
    albd.check_clean_exit(c)


run("limits_same_on_http1_and_http2", body)
