#!/usr/bin/env python3
"""HTTP/2 clients that break the protocol's limits: DATA beyond the stream
window (RST_STREAM FLOW_CONTROL_ERROR; albd gives the connection window back
as DATA arrives, by design, so only stream windows can be overrun), an HPACK
dynamic table size update above the 4096 bytes albd allows (GOAWAY
COMPRESSION_ERROR), an HPACK "bomb" (one large
table entry referenced thousands of times: 431, the backend never sees it,
albd does not grow, and the connection's HPACK state stays right), heavy
table churn, a SETTINGS frame with too many entries and a SETTINGS flood
(GOAWAY ENHANCE_YOUR_CALM). Each limit is shown exact: the same frames just
inside it are accepted."""
import os
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import h2_frames as h2  # noqa: E402
from albd_harness import (SANITIZE, certificate, echo_header, echo_of, free_ports, https_listener,  # noqa: E402
                          instance, proc_mem_kib, run, scaled, server_group)
from raw_backend import Unconnectable, h2_collect  # noqa: E402

FLOW_CONTROL_ERROR, COMPRESSION_ERROR = 0x3, 0x9
STREAM_WINDOW = 256 * 1024  # albd's SETTINGS_INITIAL_WINDOW_SIZE


def lit_indexed(name, value):
    """HPACK literal with incremental indexing, new name (RFC 7541 6.2.1)."""
    n, v = name.encode(), value.encode()
    return b"\x40" + h2._hpack_int(len(n), 7) + n + h2._hpack_int(len(v), 7) + v


def indexed(i):
    return h2._hpack_int(i, 7, 0x80)


def table_size_update(size):
    return h2._hpack_int(size, 5, 0x20)


def pseudo(env, path, method="GET"):
    return h2.hpack([(":method", method), (":scheme", "https"), (":authority", env.host), (":path", path)])


def connect(env, port):
    """A connection whose SETTINGS exchange is done (albd's window applies)."""
    conn = h2.H2Conn.connect(env, port)
    end = time.monotonic() + scaled(5)
    got_settings = got_ack = False
    while time.monotonic() < end and not (got_settings and got_ack):
        f = conn.read_frame(scaled(5))
        if f is None:
            break
        if f.type == h2.SETTINGS:
            if f.flags & h2.ACK:
                got_ack = True
            else:
                got_settings = True
    return conn


def send_data(conn, stream, n, end_stream=False):
    """n bytes of DATA on a stream, in frames of at most 16384."""
    out = bytearray()
    while n > 0:
        k = min(n, 16384)
        n -= k
        out += h2.frame(h2.DATA, h2.END_STREAM if (end_stream and n == 0) else 0, stream, b"x" * k)
    conn.send(bytes(out))


def open_post(conn, env, stream, length):
    conn.send(h2.frame(h2.HEADERS, h2.END_HEADERS, stream,
                       pseudo(env, f"/upload{stream}", "POST") + h2.hpack([("content-length", str(length))])))


def frames_for(conn, seconds):
    return list(conn.frames(seconds))


def goaway_of(frames):
    for f in frames:
        if f.type == h2.GOAWAY:
            return f.goaway()[1]
    return None


def rsts_of(frames):
    return {f.stream: struct.unpack(">I", f.payload[:4])[0] for f in frames if f.type == h2.RST_STREAM}


def ends_after(conn, seconds):
    """True when the server closes the connection within seconds."""
    for _ in conn.frames(seconds):
        pass
    return conn.closed


def body(env):
    c = env.check
    certs = env.certs()
    be = env.backend("echo")
    hole = Unconnectable()
    if not hole.works:
        c.require(False, "a port whose connects hang (backlog 0, queue full) exists on this machine")
    p_ok, p_hold = free_ports(2)
    env.write_manifests(
        instance(),
        certificate("rsa", certs.rsa),
        server_group("echo", [be.addr]),
        # Request bodies to this group wait for a connect that never
        # completes (albd's connect timeout is 5 s): albd consumes none of
        # the client's window meanwhile.
        server_group("hold", [hole.addr]),
        https_listener("ok", p_ok, "rsa", "echo", http2=True),
        https_listener("hold", p_hold, "rsa", "hold", http2=True))
    albd = env.start_albd(ports=(p_ok, p_hold))
    rss0 = proc_mem_kib(albd.pid, "VmRSS")

    # 1. Stream flow control: exactly the window is fine, one byte more is
    #    a stream error; the connection goes on.
    conn = connect(env, p_hold)
    open_post(conn, env, 1, STREAM_WINDOW + 1000)
    send_data(conn, 1, STREAM_WINDOW)
    fr = frames_for(conn, scaled(0.5))
    c.eq((rsts_of(fr).get(1), goaway_of(fr)), (None, None), "DATA filling the stream window exactly is accepted")
    send_data(conn, 1, 1)
    how, _, _, code = h2_collect(conn, 1, scaled(3))
    c.eq((how, code), ("rst", FLOW_CONTROL_ERROR), "one DATA byte beyond the stream window: RST_STREAM FLOW_CONTROL_ERROR")
    conn.send(h2.frame(h2.PING, 0, 0, b"stillok!"))
    pong = [f for f in conn.frames(scaled(2)) if f.type == h2.PING and f.flags & h2.ACK]
    c.ok(pong and pong[0].payload == b"stillok!", "... the connection goes on (PING answered)", "PING ACK", pong)
    conn.close()

    # 3. HPACK dynamic table size update: up to 4096 (SETTINGS_HEADER_TABLE_SIZE
    #    default) is fine, above it is a connection error.
    conn = connect(env, p_ok)
    conn.send(h2.frame(h2.HEADERS, h2.END_HEADERS | h2.END_STREAM, 1, table_size_update(4096) + pseudo(env, "/tsu")))
    how, head, _, _ = h2_collect(conn, 1, scaled(5))
    c.eq((how, h2.status_of(head)), ("end", 200), "a table size update to 4096 is accepted (200)")
    conn.send(h2.frame(h2.HEADERS, h2.END_HEADERS | h2.END_STREAM, 3, table_size_update(1 << 30) + pseudo(env, "/tsu")))
    fr = frames_for(conn, scaled(3))
    c.eq(goaway_of(fr), COMPRESSION_ERROR, "a table size update to 1 GiB: GOAWAY COMPRESSION_ERROR")
    c.ok(conn.closed, "... and the connection is closed")
    c.eq(len([r for r in be.requests if r["path"] == "/tsu"]), 1, "... the request never reached the backend")
    conn.close()

    # 4. HPACK bomb: a 4000-byte entry, then a block of 15000 references to
    #    it (60 MB decoded) in one 15 KB frame.
    conn = connect(env, p_ok)
    big = "b" * 4000
    conn.send(h2.frame(h2.HEADERS, h2.END_HEADERS | h2.END_STREAM, 1, pseudo(env, "/seed") + lit_indexed("x-bomb", big)))
    how, head, data, _ = h2_collect(conn, 1, scaled(5))
    c.eq((how, h2.status_of(head)), ("end", 200), "the request that adds a 4000-byte table entry is 200")
    c.eq(echo_header(echo_of(data), "x-bomb"), [big], "... the backend saw its header")
    t0 = time.monotonic()
    conn.send(h2.frame(h2.HEADERS, h2.END_HEADERS | h2.END_STREAM, 3, pseudo(env, "/bomb") + indexed(62) * 15000))
    how, head, data, code = h2_collect(conn, 3, scaled(10))
    took = time.monotonic() - t0
    c.ok((how == "end" and data.startswith(b"431 ")) or how == "rst",
         "a header block expanding to 60 MB is refused (431)", "431 or RST_STREAM", (how, data[:40], code))
    c.ok(took < scaled(3), "... promptly", "< 3 s", round(took, 2))
    c.eq([r["path"] for r in be.requests if r["path"] == "/bomb"], [], "... and never reaches the backend")
    # The HPACK state survived: index 62 is still the 4000-byte entry.
    conn.send(h2.frame(h2.HEADERS, h2.END_HEADERS | h2.END_STREAM, 5, pseudo(env, "/after-bomb") + indexed(62)))
    how, head, data, _ = h2_collect(conn, 5, scaled(5))
    c.eq((how, h2.status_of(head), echo_header(echo_of(data), "x-bomb")), ("end", 200, [big]),
         "the connection goes on and its HPACK table is intact (index 62 decodes to the entry)")
    conn.close()

    # 5. Table churn: 90 new entries in one block (most evicted again at
    #    4096 bytes), then the two newest referenced by index.
    conn = connect(env, p_ok)
    churn = b"".join(lit_indexed(f"x-churn-{i:03d}", f"value-{i:03d}-" + "v" * 20) for i in range(90))
    conn.send(h2.frame(h2.HEADERS, h2.END_HEADERS | h2.END_STREAM, 1, pseudo(env, "/churn") + churn))
    how, head, data, _ = h2_collect(conn, 1, scaled(5))
    e = echo_of(data)
    c.eq((how, h2.status_of(head), len([1 for k, _ in e.get("headers", []) if k.startswith("x-churn-")])),
         ("end", 200, 90), "90 header fields added to the HPACK table in one block (6.5 KB: most evicted again) all reach the backend")
    conn.send(h2.frame(h2.HEADERS, h2.END_HEADERS | h2.END_STREAM, 3, pseudo(env, "/churn2") + indexed(62) + indexed(63)))
    how, head, data, _ = h2_collect(conn, 3, scaled(5))
    e = echo_of(data)
    c.eq((echo_header(e, "x-churn-089"), echo_header(e, "x-churn-088")),
         (["value-089-" + "v" * 20], ["value-088-" + "v" * 20]),
         "after the churn, indexes 62 and 63 decode to the two newest entries")
    conn.close()

    # 6. SETTINGS: 32 entries in a frame are accepted, 33 are refused.
    for n, refused in ((32, False), (33, True)):
        conn = connect(env, p_ok)
        conn.send(h2.frame(h2.SETTINGS, 0, 0, b"".join(struct.pack(">HI", 0x4, 65535 + i) for i in range(n))))
        conn.request(1, "GET", env.host, f"/settings{n}")
        how, head, _, code = h2_collect(conn, 1, scaled(5))
        if refused:
            c.eq((how, code), ("goaway", h2.ENHANCE_YOUR_CALM), f"a SETTINGS frame with {n} entries: GOAWAY ENHANCE_YOUR_CALM")
            c.ok(ends_after(conn, scaled(3)), "... and the connection is closed")
        else:
            c.eq((how, h2.status_of(head)), ("end", 200), f"a SETTINGS frame with {n} entries is accepted (200)")
        conn.close()

    # 7. SETTINGS flood: 5000 frames at once (each asks for an ACK).
    for n, flood in ((200, False), (5000, True)):
        conn = connect(env, p_ok)
        conn.send(h2.frame(h2.SETTINGS, 0, 0) * n)
        conn.request(1, "GET", env.host, f"/flood{n}")
        acks, ga, status = 0, None, None
        for f in conn.frames(scaled(5)):
            if f.type == h2.SETTINGS and f.flags & h2.ACK:
                acks += 1
            elif f.type == h2.GOAWAY:
                ga = f.goaway()[1]
            elif f.type == h2.HEADERS and f.stream == 1:
                status = h2.status_of(f.payload)
            if status or ga is not None and conn.closed:
                break
        if flood:
            c.eq(ga, h2.ENHANCE_YOUR_CALM, f"{n} SETTINGS frames at once: GOAWAY ENHANCE_YOUR_CALM")
            c.ok(ends_after(conn, scaled(3)), "... and the connection is closed")
        else:
            c.eq((ga, status, acks >= n), (None, 200, True), f"{n} SETTINGS frames: all acknowledged, the request is 200")
        conn.close()

    grown = proc_mem_kib(albd.pid, "VmRSS") - rss0
    bound = (48 if SANITIZE else 16) * 1024
    print(f"  RSS growth over the whole test: {grown} KiB")
    c.ok(grown < bound, "albd's memory stays bounded through all of it", f"< {bound} KiB", f"{grown} KiB")
    code, _, _ = env.curl(env.url(p_ok, "/last"), "--http2")
    c.eq(code, 200, "albd still serves HTTP/2 afterwards")
    albd.check_clean_exit(c)
    hole.close()


run("http2_rejects_protocol_abuse", body)
