#!/usr/bin/env python3
"""HTTP/2 "MadeYouReset": a client that makes albd reset each of its streams
(instead of resetting them itself) is held to the same budget as a rapid
reset. 1000 streams in rounds of 100, each starting a backend request and
then breaking it: (a) DATA beyond the content-length the request declared
(albd resets the stream with PROTOCOL_ERROR), (b) a stream WINDOW_UPDATE
that overflows the window (FLOW_CONTROL_ERROR). Each attack connection gets
GOAWAY ENHANCE_YOUR_CALM and is closed, the backend saw a bounded number of
requests (the budget is 200 per 10 s), and albd keeps serving others. A
client whose streams end normally is not affected."""
import os
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import certificate, free_ports, https_listener, instance, run, scaled, server_group  # noqa: E402
import h2_frames as h2  # noqa: E402

STREAMS = 1000
ROUND = 100  # streams open at once (albd allows 128)
BUDGET = 200  # PX_H2_RST_MAX


def head(env, sid, extra, end_stream=False):
    fields = [(":method", "POST"), (":scheme", "https"), (":authority", env.host), (":path", f"/myr/{sid}")]
    return h2.frame(h2.HEADERS, h2.END_HEADERS | (h2.END_STREAM if end_stream else 0), sid,
                    h2.hpack(fields + extra))


def data_beyond_length(sid):
    return h2.frame(h2.DATA, h2.END_STREAM, sid, b"xy")


def window_overflow(sid):
    return h2.frame(h2.WINDOW_UPDATE, 0, sid, struct.pack(">I", 0x7FFFFFFF))


def attack(env, port, be, extra, breaker):
    """Rounds of ROUND streams: their heads, then (once the backend has the
    requests) the frames that make albd reset each one, until albd ends the
    connection. (GOAWAY error code or None, closed?, server RST_STREAM
    count, backend requests started)."""
    conn = h2.H2Conn.connect(env, port)
    n0 = be.count()
    ga, rsts, sid = None, 0, 1
    for _ in range(STREAMS // ROUND):
        sids = list(range(sid, sid + 2 * ROUND, 2))
        sid += 2 * ROUND
        try:
            conn.send(b"".join(head(env, s, extra) for s in sids))
            be.wait_requests(be.count() + ROUND, scaled(3))
            conn.send(b"".join(breaker(s) for s in sids))
        except OSError:
            break
        got = 0
        for f in conn.frames(scaled(3)):
            if f.type == h2.GOAWAY and ga is None:
                ga = f.goaway()[1]
            if f.type == h2.RST_STREAM:
                rsts += 1
                got += 1
                if got == ROUND:
                    break
        if ga is not None or conn.closed:
            break
    for f in conn.frames(scaled(2)):
        if f.type == h2.GOAWAY and ga is None:
            ga = f.goaway()[1]
    closed = conn.closed
    conn.close()
    return ga, closed, rsts, be.count() - n0


def body(env):
    c = env.check
    certs = env.certs()
    be = env.backend("a")
    (port,) = free_ports(1)
    env.write_manifests(instance(), certificate("rsa", certs.rsa), server_group("web", [be.addr]),
                        https_listener("main", port, "rsa", "web", http2=True))
    albd = env.start_albd(ports=(port,))

    for what, extra, breaker in (("DATA beyond content-length", [("content-length", "1")], data_beyond_length),
                                 ("stream WINDOW_UPDATE overflow", [], window_overflow)):
        ga, closed, rsts, seen = attack(env, port, be, extra, breaker)
        print(f"  {what}: GOAWAY {ga}, {rsts} RST_STREAM from albd, backend saw {seen} requests")
        c.eq(ga, h2.ENHANCE_YOUR_CALM, f"{what}, {STREAMS} streams: GOAWAY ENHANCE_YOUR_CALM")
        c.ok(closed, f"{what}: ... and the connection is closed")
        # The round in which the budget runs out may have started in full.
        bound = BUDGET + ROUND
        c.ok(rsts <= bound, f"{what}: albd reset a bounded number of streams", f"<= {bound}", rsts)
        c.ok(seen <= bound, f"{what}: the backend saw a bounded number of requests", f"<= {bound}", seen)

    # A well-behaved client on one connection: many streams, none broken.
    conn = h2.H2Conn.connect(env, port, window=1 << 30)
    out = bytearray()
    for i in range(300):
        out += head(env, 2 * i + 1, [("content-length", "2")]) + h2.frame(h2.DATA, h2.END_STREAM, 2 * i + 1, b"ok")
        if i % 100 == 99:
            conn.send(bytes(out))
            out.clear()
            done = 0
            for f in conn.frames(scaled(10)):
                if f.type == h2.GOAWAY:
                    break
                if f.type == h2.DATA and f.flags & h2.END_STREAM:
                    done += 1
                    if done == 100:
                        break
            c.eq(done, 100, f"a normal client's streams {i - 98}..{i + 1} complete (no GOAWAY)")
    conn.close()

    code, _, _ = env.curl(env.url(port, "/after"), "--http2")
    c.eq(code, 200, "albd serves other clients after the attacks")
    albd.check_clean_exit(c)


run("http2_server_resets_count_as_rapid_reset", body)
