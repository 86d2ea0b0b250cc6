#!/usr/bin/env python3
"""HTTP/2 limits and connection endings, with hand-built frames: albd
advertises 128 concurrent streams and a 64 KiB header list; a larger header
block gets 431 on its stream (the connection goes on); a CONTINUATION flood
and a rapid-reset attack end the connection with GOAWAY (ENHANCE_YOUR_CALM
for the resets); an idle connection gets GOAWAY and is closed after
idleTimeoutSeconds; SIGTERM sends GOAWAY while a stream is in flight, and
that stream still completes with 200."""
import os
import signal
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (SANITIZE, certificate, free_ports, https_listener, instance, proc_mem_kib, run,  # noqa: E402
                          scaled, server_group)
import h2_frames as h2  # noqa: E402


def first_settings(conn, timeout):
    for f in conn.frames(timeout):
        if f.type == h2.SETTINGS and not f.flags & h2.ACK:
            return f.settings()
    return {}


def wait_goaway(conn, timeout):
    """(GOAWAY frame or None, closed?, seconds)."""
    t0 = time.monotonic()
    ga = None
    for f in conn.frames(timeout):
        if f.type == h2.GOAWAY and ga is None:
            ga = f
    return ga, conn.closed, time.monotonic() - t0


def body(env):
    c = env.check
    certs = env.certs()
    be = env.backend("a")
    p_main, p_idle, p_gone = free_ports(3)
    docs = [instance(), certificate("rsa", certs.rsa), server_group("web", [be.addr]),
            https_listener("main", p_main, "rsa", "web", http2=True),
            https_listener("idle", p_idle, "rsa", "web", http2=True, idleTimeoutSeconds=1)]
    env.write_manifests(*docs, https_listener("gone", p_gone, "rsa", "web", http2=True))
    extra = None
    if SANITIZE:  # a small quarantine, so freed frames do not count as growth
        extra = {"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "detect_leaks=1") + ":quarantine_size_mb=8"}
    albd = env.start_albd(ports=(p_main, p_idle, p_gone), extra_env=extra)

    # 1. Advertised limits.
    conn = h2.H2Conn.connect(env, p_main)
    st = first_settings(conn, scaled(5))
    c.eq(st.get(h2.SETTINGS_MAX_CONCURRENT_STREAMS), 128, "SETTINGS_MAX_CONCURRENT_STREAMS is 128")
    c.eq(st.get(h2.SETTINGS_MAX_HEADER_LIST_SIZE), 65536, "SETTINGS_MAX_HEADER_LIST_SIZE is 64 KiB")

    # 1b. The limit holds: 128 slow streams open at once, then one more,
    #     all in one write (before albd's SETTINGS is acknowledged, which
    #     nghttp2 answers with RST_STREAM REFUSED_STREAM; after it, with a
    #     connection error). The extra stream never reaches the backend.
    cs = h2.H2Conn.connect(env, p_main)
    n0 = be.count()
    out = bytearray()
    for k in range(128):
        out += h2.frame(h2.HEADERS, h2.END_HEADERS | h2.END_STREAM, 2 * k + 1,
                        h2.hpack([(":method", "GET"), (":scheme", "https"), (":authority", env.host),
                                  (":path", f"/open-{k}?delay=1")]))
    over = 2 * 128 + 1
    out += h2.frame(h2.HEADERS, h2.END_HEADERS | h2.END_STREAM, over,
                    h2.hpack([(":method", "GET"), (":scheme", "https"), (":authority", env.host),
                              (":path", "/over-the-limit")]))
    cs.send(bytes(out))
    refused, ga, served = None, None, set()
    for f in cs.frames(scaled(15)):
        if f.type == h2.RST_STREAM and f.stream == over:
            refused = int.from_bytes(f.payload[:4], "big")
        elif f.type == h2.GOAWAY and ga is None:
            ga = f.goaway()
        elif f.type == h2.HEADERS and h2.status_of(f.payload) == 200:
            served.add(f.stream)
        if (refused is not None and len(served) == 128) or ga is not None or len(served) > 128:
            break
    cs.close()
    c.ok(refused in (h2.REFUSED_STREAM, h2.PROTOCOL_ERROR) or
         (ga is not None and ga[1] == h2.PROTOCOL_ERROR and ga[0] < over),
         "a 129th concurrent stream is refused", "RST_STREAM REFUSED_STREAM or PROTOCOL_ERROR (or GOAWAY "
         f"PROTOCOL_ERROR, last stream < {over})",
         {"rst": refused, "goaway": ga, "served": len(served), "extra stream served": over in served})
    if refused is not None:
        c.eq(len(served - {over}), 128, "... while the 128 streams within the limit are all served")
    time.sleep(scaled(0.3))
    c.eq([r["path"] for r in be.requests[n0:] if r["path"] == "/over-the-limit"], [],
         "... and the refused stream never reached the backend")

    # 2. A 70 KB header block (HEADERS + CONTINUATIONs) gets 431; the next stream is fine.
    block = h2.hpack([(":method", "GET"), (":scheme", "https"), (":authority", env.host), (":path", "/big")]
                     + [(f"x-big-{i}", "a" * 7000) for i in range(10)])
    pieces = [block[i:i + 16384] for i in range(0, len(block), 16384)]
    out = h2.frame(h2.HEADERS, h2.END_STREAM | (h2.END_HEADERS if len(pieces) == 1 else 0), 1, pieces[0])
    for i, p in enumerate(pieces[1:], 1):
        out += h2.frame(h2.CONTINUATION, h2.END_HEADERS if i == len(pieces) - 1 else 0, 1, p)
    conn.send(out)
    conn.request(3, "GET", env.host, "/after-big")
    heads = {}
    for f in conn.frames(scaled(5)):
        if f.type == h2.HEADERS:
            heads.setdefault(f.stream, f.payload)
        if 1 in heads and 3 in heads:
            break
    c.ok(b"431" in heads.get(1, b""), "a header list over 64 KiB is answered 431", "431", heads.get(1))
    c.eq(h2.status_of(heads.get(3)), 200, "the connection goes on: the next stream is 200")
    c.eq([r["path"] for r in be.requests if r["path"] == "/big"], [], "the oversized request never reached the backend")
    conn.close()

    # 3. CONTINUATION flood: a header block that never ends.
    conn = h2.H2Conn.connect(env, p_main)
    out = h2.frame(h2.HEADERS, 0, 1, h2.hpack([(":method", "GET"), (":path", "/flood")]))
    out += b"".join(h2.frame(h2.CONTINUATION, 0, 1, h2.hpack([("x-f", "b" * 100)])) for _ in range(50))
    try:
        conn.send(out)
    except OSError:
        pass
    ga, closed, took = wait_goaway(conn, scaled(5))
    c.ok(ga is not None and closed, "a CONTINUATION flood ends the connection with GOAWAY",
         "GOAWAY, then close", (ga and ga.goaway(), closed))
    c.eq(ga and ga.goaway()[1], h2.ENHANCE_YOUR_CALM, "... ENHANCE_YOUR_CALM")
    conn.close()

    # 4. Rapid reset: open and cancel 1000 streams at once.
    conn = h2.H2Conn.connect(env, p_main)
    out = bytearray()
    for i in range(1000):
        sid = 2 * i + 1
        out += h2.frame(h2.HEADERS, h2.END_HEADERS | h2.END_STREAM, sid,
                        h2.hpack([(":method", "GET"), (":scheme", "https"), (":authority", env.host),
                                  (":path", "/rr")]))
        out += h2.frame(h2.RST_STREAM, 0, sid, struct.pack(">I", h2.CANCEL))
    try:
        conn.send(bytes(out))
    except OSError:
        pass
    ga, closed, took = wait_goaway(conn, scaled(5))
    c.eq(ga and ga.goaway()[1], h2.ENHANCE_YOUR_CALM, "rapid reset gets GOAWAY ENHANCE_YOUR_CALM")
    c.ok(closed, "... and the connection is closed")
    conn.close()
    code, _, _ = env.curl(env.url(p_main, "/still"), "--http2")
    c.eq(code, 200, "albd serves other clients after the attack")

    # 5. Idle: GOAWAY (NO_ERROR) and close after idleTimeoutSeconds.
    conn = h2.H2Conn.connect(env, p_idle)
    ga, closed, took = wait_goaway(conn, scaled(4))
    c.eq(ga and ga.goaway()[1], h2.NO_ERROR, "an idle connection gets GOAWAY NO_ERROR")
    c.ok(closed, "... and is closed")
    c.within(round(took, 2), 0.8, scaled(2.5), "... after the 1 s idle timeout")
    conn.close()

    # 5b. PING flood from a client that never reads: albd stops reading it
    #     (its answers cannot leave), does not grow, and drops it when idle.
    #     A send that merely times out (albd stopped reading, but kept the
    #     connection) is not a disconnect: then the connection must still
    #     end, seen by reading, within a few idle timeouts.
    rss0 = proc_mem_kib(albd.pid, "VmRSS")
    conn = h2.H2Conn.connect(env, p_idle)
    pings = h2.frame(h2.PING, 0, 0, b"12345678") * 1000
    t0, sent, err, timed_out = time.monotonic(), 0, None, False
    conn.sock.settimeout(scaled(8))
    while time.monotonic() - t0 < scaled(8):
        try:
            conn.send(pings)
            sent += 1000
        except (socket.timeout, TimeoutError) as ex:
            err, timed_out = ex, True
            break
        except OSError as ex:
            err = ex
            break
    took = time.monotonic() - t0
    grown = proc_mem_kib(albd.pid, "VmRSS") - rss0
    ended_later = None
    if timed_out:  # did albd close it after all? Read until EOF or reset.
        ended_later = False
        end = time.monotonic() + scaled(5)
        try:
            while time.monotonic() < end:
                conn.sock.settimeout(max(0.05, end - time.monotonic()))
                if not conn.sock.recv(65536):
                    ended_later = True
                    break
        except (socket.timeout, TimeoutError):
            pass
        except OSError:  # reset, TLS EOF without close_notify
            ended_later = True
    print(f"  PING flood: {sent} sent in {took:.1f}s, then {err!r}; closed after the timeout: {ended_later}; "
          f"RSS growth {grown} KiB")
    disconnected = err is not None and (not timed_out or ended_later)
    c.ok(disconnected, "a PING flood that never reads is disconnected",
         "a reset or EOF (a send timeout alone is not one)", f"{sent} PINGs sent, then {err!r}")
    bound = (48 if SANITIZE else 16) * 1024
    c.ok(grown < bound, "albd does not grow under a PING flood", f"< {bound} KiB", f"{grown} KiB")
    conn.close()

    # 6. A reload that removes the listener: GOAWAY, the in-flight stream completes.
    conn = h2.H2Conn.connect(env, p_gone)
    first_settings(conn, scaled(5))
    n0 = be.count()
    conn.request(1, "GET", env.host, "/slow?delay=2")
    c.require(be.wait_requests(n0 + 1, scaled(10)), "the slow stream on the doomed listener reached the backend")
    env.write_manifests(*docs)
    albd.signal(signal.SIGHUP)
    seen, ga, status = [], None, None
    for f in conn.frames(scaled(10)):
        seen.append(f.type)
        if f.type == h2.GOAWAY and ga is None:
            ga = (f.goaway(), len(seen))
        if f.stream == 1 and f.type == h2.HEADERS:
            status = h2.status_of(f.payload)
        if f.stream == 1 and f.flags & h2.END_STREAM:
            break
    c.eq(ga and ga[0], (1, h2.NO_ERROR), "removing the listener sends GOAWAY(last stream 1, NO_ERROR)")
    c.ok(ga and ga[1] < len(seen), "... before the in-flight stream ends", "GOAWAY, then END_STREAM", seen)
    c.eq(status, 200, "the in-flight stream completes with 200")
    closed = all(False for _ in conn.frames(scaled(3))) and conn.closed
    c.ok(closed, "albd closes that connection once the stream is done")
    conn.close()

    # 7. SIGTERM with a stream in flight: GOAWAY first, the stream completes.
    conn = h2.H2Conn.connect(env, p_main)
    first_settings(conn, scaled(5))
    n0 = be.count()
    conn.request(1, "GET", env.host, "/slow?delay=2")
    c.require(be.wait_requests(n0 + 1, scaled(10)), "the slow stream reached the backend")
    albd.signal(signal.SIGTERM)
    seen, ga_at, status, ended = [], None, None, False
    for f in conn.frames(scaled(10)):
        seen.append(f.type)
        if f.type == h2.GOAWAY and ga_at is None:
            ga_at = len(seen)
            c.eq(f.goaway(), (1, h2.NO_ERROR), "SIGTERM sends GOAWAY(last stream 1, NO_ERROR)")
        if f.stream == 1 and f.type == h2.HEADERS:
            status = h2.status_of(f.payload)
        if f.stream == 1 and f.flags & h2.END_STREAM:
            ended = len(seen)
    c.ok(ga_at is not None and ended and ga_at < ended, "GOAWAY comes before the in-flight stream ends",
         "GOAWAY, then END_STREAM", seen)
    c.eq(status, 200, "the in-flight stream completes with 200 after GOAWAY")
    c.ok(conn.closed, "albd closes the connection once the stream is done")
    conn.close()
    try:
        albd.proc.wait(timeout=scaled(10))
    except Exception:
        pass
    albd.check_clean_exit(c)


run("http2_limits_and_goaway", body)
