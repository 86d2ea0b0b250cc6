#!/usr/bin/env python3
"""HTTP/2 requests that would desynchronise the HTTP/1.1 connection albd
opens to the backend, each sent with hand-built frames on its own
connection: a content-length that disagrees with the DATA, connection-
specific fields (transfer-encoding, connection, keep-alive, proxy-connection,
upgrade, te other than trailers), CR, LF or NUL in a value, a name or a
pseudo-header, uppercase or malformed names, and bad, duplicate, unknown or
misplaced pseudo-headers. Each carries a second request, GET
/smuggled-h2-<case>, where a proxy that copied it through would hand it to
the backend (in the DATA after a content-length, in a value after CRLF, in a
second :path ...). albd must refuse each stream (RST_STREAM, or 400) and the
backend -- which records every byte it receives, parsed or not -- must never
see a smuggled path, nor, for a field refused with the header block, any of
the request. Two valid requests (a POST whose content-length matches, te:
trailers) must be served, so the refusals are not a blanket one.

These are nghttp2's HTTP messaging checks (RFC 9113 8.2 and 8.3) as much as
albd's: a build with nghttp2_option_set_no_http_messaging() fails here."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (RawBackend, certificate, free_ports, https_listener, instance, run,  # noqa: E402
                          scaled, server_group)
import h2_frames as h2  # noqa: E402

HOST = "albd.test"


def smuggled(i):
    return f"/smuggled-h2-{i:03d}"


def case_path(i):
    return f"/h2case-{i:03d}"


def sm_req(i):
    return f"GET {smuggled(i)} HTTP/1.1\r\nHost: {HOST}\r\n\r\n"


def base(i, method="POST", path=None):
    return [(":method", method), (":scheme", "https"), (":authority", HOST),
            (":path", case_path(i) if path is None else path)]


def with_body(fields, data):
    """HEADERS (no END_STREAM) then one DATA with END_STREAM."""
    return fields, [data]


# (name, fn(i) -> (header fields, [DATA payloads] (the last ends the stream;
#  [] = END_STREAM on HEADERS)), what may reach the backend: 0 (refused with
#  the header block) or "<=1" (refused at a DATA frame: the head may have
#  gone out), or "serve" for the valid controls).
CASES = [
    # --- content-length against DATA
    ("content-length shorter than the DATA, which holds a request",
     lambda i: with_body(base(i) + [("content-length", "5")], b"hello" + sm_req(i).encode()), "<=1"),
    ("content-length shorter than two DATA frames",
     lambda i: (base(i) + [("content-length", "5")], [b"hel", b"lo" + sm_req(i).encode()]), "<=1"),
    ("content-length longer than the DATA",
     lambda i: with_body(base(i) + [("content-length", "100")], b"short"), "<=1"),
    ("content-length on a request that ends with its headers",
     lambda i: (base(i, "GET") + [("content-length", "10")], []), "<=1"),
    ("two different content-length fields",
     lambda i: with_body(base(i) + [("content-length", "0"), ("content-length", str(len(sm_req(i))))],
                         sm_req(i).encode()), 0),
    ("content-length not a number",
     lambda i: with_body(base(i) + [("content-length", "5, 5")], b"hello" + sm_req(i).encode()), 0),
    # --- connection-specific fields (RFC 9113 8.2.2)
    ("transfer-encoding: chunked, the DATA ends the chunks early",
     lambda i: with_body(base(i) + [("transfer-encoding", "chunked")], b"0\r\n\r\n" + sm_req(i).encode()), 0),
    ("transfer-encoding with content-length covering a request",
     lambda i: with_body(base(i) + [("content-length", str(5 + len(sm_req(i)))), ("transfer-encoding", "chunked")],
                         b"0\r\n\r\n" + sm_req(i).encode()), 0),
    ("connection: keep-alive",
     lambda i: with_body(base(i) + [("connection", "keep-alive"), ("content-length", str(len(sm_req(i))))],
                         sm_req(i).encode()), 0),
    ("keep-alive field",
     lambda i: with_body(base(i) + [("keep-alive", "timeout=5"), ("content-length", str(len(sm_req(i))))],
                         sm_req(i).encode()), 0),
    ("proxy-connection field",
     lambda i: with_body(base(i) + [("proxy-connection", "keep-alive"), ("content-length", str(len(sm_req(i))))],
                         sm_req(i).encode()), 0),
    ("upgrade field",
     lambda i: with_body(base(i) + [("upgrade", "h2c"), ("content-length", str(len(sm_req(i))))],
                         sm_req(i).encode()), 0),
    ("te other than trailers",
     lambda i: with_body(base(i) + [("te", "gzip"), ("content-length", str(len(sm_req(i))))],
                         sm_req(i).encode()), 0),
    # --- CR, LF, NUL where HTTP/1.1 would take them as syntax
    ("CRLF in a value starts a second request",
     lambda i: (base(i, "GET") + [("x-a", f"a\r\n\r\n{sm_req(i)}")], []), 0),
    ("bare LF in a value",
     lambda i: (base(i, "GET") + [("x-a", f"a\n\n{sm_req(i)}")], []), 0),
    ("bare CR in a value",
     lambda i: (base(i, "GET") + [("x-a", f"a\r{sm_req(i)}")], []), 0),
    ("NUL in a value",
     lambda i: (base(i, "GET") + [("x-a", f"a\x00{sm_req(i)}")], []), 0),
    ("CRLF in :path",
     lambda i: (base(i, "GET", f"{case_path(i)} HTTP/1.1\r\nHost: {HOST}\r\n\r\n{sm_req(i)[:-4]}"), []), 0),
    ("space in :path",
     lambda i: (base(i, "GET", f"{case_path(i)} {smuggled(i)}"), []), 0),
    ("NUL in :path",
     lambda i: (base(i, "GET", f"{case_path(i)}\x00{smuggled(i)}"), []), 0),
    ("CRLF in :authority",
     lambda i: ([(":method", "GET"), (":scheme", "https"), (":authority", f"{HOST}\r\n\r\n{sm_req(i)}"),
                 (":path", case_path(i))], []), 0),
    ("CRLF in :method",
     lambda i: (base(i, f"GET {smuggled(i)} HTTP/1.1\r\nHost: {HOST}\r\n\r\nGET"), []), 0),
    ("CRLF in a name",
     lambda i: (base(i, "GET") + [(f"x-a: 1\r\n\r\n{sm_req(i)}x-b", "1")], []), 0),
    # --- names
    ("uppercase name",
     lambda i: with_body(base(i) + [("X-Upper", "1"), ("content-length", str(len(sm_req(i))))], sm_req(i).encode()), 0),
    ("uppercase Transfer-Encoding",
     lambda i: with_body(base(i) + [("Transfer-Encoding", "chunked")], b"0\r\n\r\n" + sm_req(i).encode()), 0),
    ("uppercase Content-Length shorter than the DATA",
     lambda i: with_body(base(i) + [("Content-Length", "5")], b"hello" + sm_req(i).encode()), 0),
    ("colon inside a name",
     lambda i: with_body(base(i) + [("x-a:b", "1"), ("content-length", str(len(sm_req(i))))], sm_req(i).encode()), 0),
    ("space inside a name",
     lambda i: with_body(base(i) + [("x a", "1"), ("content-length", str(len(sm_req(i))))], sm_req(i).encode()), 0),
    ("empty name",
     lambda i: with_body(base(i) + [("", "1"), ("content-length", str(len(sm_req(i))))], sm_req(i).encode()), 0),
    # --- pseudo-headers
    ("two :path, the second smuggled",
     lambda i: (base(i, "GET") + [(":path", smuggled(i))], []), 0),
    ("two :method",
     lambda i: (base(i, "GET") + [(":method", "POST")], []), 0),
    ("two :authority",
     lambda i: (base(i, "GET") + [(":authority", "evil.test")], []), 0),
    ("unknown pseudo-header",
     lambda i: (base(i, "GET") + [(":smuggle", smuggled(i))], []), 0),
    ("response pseudo-header :status in a request",
     lambda i: (base(i, "GET") + [(":status", "200")], []), 0),
    ("pseudo-header after a regular field",
     lambda i: ([(":method", "GET"), (":scheme", "https"), (":authority", HOST), ("x-a", "1"),
                 (":path", case_path(i))], []), 0),
    ("no :path",
     lambda i: ([(":method", "GET"), (":scheme", "https"), (":authority", HOST), ("x-path", case_path(i))], []), 0),
    ("empty :path",
     lambda i: (base(i, "GET", "") + [("x-path", case_path(i))], []), 0),
    (":path not in origin form",
     lambda i: (base(i, "GET", case_path(i)[1:]), []), 0),
    ("no :scheme",
     lambda i: ([(":method", "GET"), (":authority", HOST), (":path", case_path(i))], []), 0),
    # --- valid controls: served, whole
    ("valid: content-length matching the DATA",
     lambda i: with_body(base(i) + [("content-length", "5")], b"hello"), "serve"),
    ("valid: te: trailers",
     lambda i: (base(i, "GET") + [("te", "trailers")], []), "serve"),
]


def send_case(env, port, fields, datas):
    """Sends one request on stream 1 of a new connection; returns what albd
    did with it: ("rst", code), ("status", n), ("goaway", code), ("closed",)
    or ("nothing",)."""
    conn = h2.H2Conn.connect(env, port)
    try:
        block = h2.hpack(fields)
        conn.send(h2.frame(h2.HEADERS, h2.END_HEADERS | (0 if datas else h2.END_STREAM), 1, block))
        for k, d in enumerate(datas):
            conn.send(h2.frame(h2.DATA, h2.END_STREAM if k == len(datas) - 1 else 0, 1, d))
        for f in conn.frames(scaled(5)):
            if f.stream == 1 and f.type == h2.RST_STREAM:
                return ("rst", int.from_bytes(f.payload[:4], "big"))
            if f.stream == 1 and f.type == h2.HEADERS:
                st = h2.status_of(f.payload)
                return ("status", st if st is not None else f.payload[:8])
            if f.type == h2.GOAWAY:
                return ("goaway", f.goaway()[1])
        return ("closed",) if conn.closed else ("nothing",)
    except OSError as ex:
        return ("error", repr(ex))
    finally:
        conn.close()


def body(env):
    c = env.check
    certs = env.certs()
    be = RawBackend("a")
    env.backends.append(be)
    (port,) = free_ports(1)
    env.write_manifests(instance(), certificate("rsa", certs.rsa), server_group("web", [be.addr]),
                        https_listener("h2", port, "rsa", "web", http2=True))
    albd = env.start_albd(ports=(port,))

    c.ok(len(CASES) >= 30, f"the table has at least 30 cases ({len(CASES)})")
    for i, (name, make, allowed) in enumerate(CASES):
        fields, datas = make(i)
        got = send_case(env, port, fields, datas)
        if allowed == "serve":
            c.eq(got, ("status", 200), f"{name}: served")
            c.ok(be.wait_path(case_path(i), scaled(5)), f"{name}: the backend got {case_path(i)}")
        else:
            refused = got[0] == "rst" or got == ("status", 400) or (got[0] == "goaway" and got[1] != h2.NO_ERROR)
            c.ok(refused, f"{name}: the stream is refused", "RST_STREAM or 400", got)

    # Match what the backend received to the cases once it is quiet.
    last, quiet = len(be.raw()), time.monotonic()
    while time.monotonic() - quiet < scaled(0.5):
        time.sleep(0.05)
        if len(be.raw()) != last:
            last, quiet = len(be.raw()), time.monotonic()
    raw = be.raw()
    parsed = be.requests
    for i, (name, _, allowed) in enumerate(CASES):
        c.eq(raw.count(smuggled(i).encode()), 0,
             f"{name}: {smuggled(i)} never reached the backend, not even as bytes")
        heads = raw.count(case_path(i).encode())
        if allowed == 0:
            c.eq(heads, 0, f"{name}: nothing of the request reached the backend")
        elif allowed == "<=1":
            c.ok(heads <= 1, f"{name}: the backend saw at most the request's head", "<= 1", heads)
            c.eq([r["path"] for r in parsed if r["path"] == case_path(i)], [],
                 f"{name}: the backend never got the request whole")
    c.eq([r["path"] for r in parsed if "smuggled" in r["path"]], [], "no smuggled path was parsed by the backend")
    c.eq(sorted(r["path"] for r in parsed), sorted(case_path(i) for i, cs in enumerate(CASES) if cs[2] == "serve"),
         "the backend parsed exactly the valid requests")
    albd.check_clean_exit(c)


run("rejects_http2_smuggling", body)
