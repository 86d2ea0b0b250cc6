#!/usr/bin/env python3
"""Writes the hand-made seed inputs of tests/fuzz/corpus/<name>/ and the
known-failing ones of tests/fuzz/pending/<name>/ (see README.md for each
harness's input format). Run from anywhere; rewrites only the files named
here (prefix "seed-"), so inputs merged from fuzzing stay."""
import base64
import os
import ssl
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def put(kind, name, data, pending=False):
    d = os.path.join(HERE, "pending" if pending else "corpus", kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# --- h1_request: byte 0 = listener (bit 0) | piece size << 1 ----------------
def h1(name, flags, text, pending=False):
    put("h1_request", name, bytes([flags]) + text, pending)


CRLF = b"\r\n"
h1("get", 0, b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n")
h1("get-full", 1, b"GET /x?y=1 HTTP/1.1\r\nHost: a.example:8080\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n")
h1("pipelined", 1,
   b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
   b"POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
   b"PUT /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nTrailer-X: 1\r\n\r\n"
   b"DELETE /4 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
h1("pieces-1", 2, b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: a\r\n\r\n")
h1("pieces-7", 14, b"POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n")
h1("absolute-form", 0, b"GET http://b.example:81?q HTTP/1.1\r\nHost: a.example\r\n\r\nGET HTTPS://c.example/p HTTP/1.1\r\nHost: x\r\n\r\n")
h1("options-star", 0, b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")
h1("http10", 0, b"GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\nPOST /old HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi")
h1("expect-continue", 1, b"POST /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nbody")
h1("websocket", 0, b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
   b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\nGET /after HTTP/1.1\r\nHost: a\r\n\r\n")
h1("hop-headers", 0, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Drop\r\nX-Drop: 1\r\n"
   b"Keep-Alive: timeout=5\r\nTE: trailers\r\nUpgrade: h2c\r\nProxy-Connection: close\r\nTrailer: X\r\n\r\n")
h1("clientcert-spoof", 0, b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-Clientcert-subjectdn: CN=evil\r\n"
   b"x-forwarded-clientcert-clientverify: SUCCESS\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n")
h1("cl-and-te", 0, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
h1("double-cl", 0, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde")
h1("cl-whitespace", 0, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:  3 \r\n\r\nabc")
h1("obs-fold", 0, b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n")
h1("bare-lf", 0, b"GET / HTTP/1.1\nHost: a\n\n")
h1("nul-in-value", 0, b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n")
h1("te-gzip-chunked", 0, b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n")
h1("chunk-overflow", 0, b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n")
h1("host-userinfo", 0, b"GET / HTTP/1.1\r\nHost: user@a\r\n\r\nGET http://u@b/ HTTP/1.1\r\nHost: a\r\n\r\n")
h1("no-host", 0, b"GET / HTTP/1.1\r\n\r\n")
h1("leading-crlf", 0, b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
h1("body-limit", 1, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 70000\r\n\r\n" + b"x" * 100)
h1("trace", 0, b"TRACE / HTTP/1.1\r\nHost: a\r\n\r\n")
h1("http2-prior", 0, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
h1("head", 0, b"HEAD /h HTTP/1.1\r\nHost: a\r\n\r\n")
h1("underscore", 0, b"GET / HTTP/1.1\r\nHost: a\r\nX_Forwarded_For: 1\r\n\r\n", pending=True)
# Issue 9 item 9 (open): a client's X-Forwarded-Proto / Forwarded / SLB-ID
# pass through a listener that does not set them.
h1("forwarding-spoof", 0, b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-Proto: https\r\nForwarded: for=1.2.3.4\r\n"
   b"SLB-ID: evil\r\nX_Forwarded_Clientcert_subjectdn: CN=evil\r\n\r\n", pending=True)


# --- h1_response: byte 0 = request (bits 0-1) | split (bit 2) ---------------
def resp(name, flags, text, pending=False):
    put("h1_response", name, bytes([flags]) + text, pending)


resp("200-length", 0, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello")
resp("200-chunked", 4, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\n")
resp("200-close", 0, b"HTTP/1.1 200 OK\r\n\r\nuntil the end")
resp("http10-client-chunked", 2, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
resp("head", 1, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
resp("204-with-body", 0, b"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\nabc")
resp("304", 0, b"HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n")
resp("100-then-200", 4, b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
resp("101-websocket", 3, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x00")
resp("101-unasked", 0, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n")
resp("http10-response", 0, b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
resp("hop-headers", 0, b"HTTP/1.1 200 OK\r\nConnection: close, X-A\r\nX-A: 1\r\nKeep-Alive: timeout=1\r\n"
     b"Proxy-Connection: x\r\nTrailer: T\r\nUpgrade: foo\r\nContent-Length: 0\r\n\r\n")
resp("obs-fold", 0, b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n")
resp("bare-lf", 0, b"HTTP/1.1 200 OK\nContent-Length: 0\n\n")
resp("nul-in-value", 0, b"HTTP/1.1 200 OK\r\nX: a\x00b\r\nContent-Length: 0\r\n\r\n")
resp("cr-in-value", 0, b"HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 0\r\n\r\n")
resp("cl-and-te", 0, b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
resp("te-chunked-gzip", 0, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nabc")
resp("huge-length", 0, b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n")
resp("no-reason", 0, b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n")
resp("odd-reason", 0, b"HTTP/1.1 599 \x80\xff weird\treason\r\nContent-Length: 0\r\n\r\n")
resp("short-body", 4, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
resp("extra-bytes", 0, b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nabHTTP/1.1 200 OK\r\n\r\n")
resp("garbage", 0, b"\x16\x03\x01\x00\x05hello")
resp("set-cookies", 2, b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n")


# --- h2_frames: byte 0 = piece size; then frames after the preface ---------
def frame(ftype, flags, sid, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def hint(v, prefix_bits, first=0):
    m = (1 << prefix_bits) - 1
    if v < m:
        return bytes([first | v])
    out = [first | m]
    v -= m
    while v >= 128:
        out.append((v & 127) | 128)
        v >>= 7
    out.append(v)
    return bytes(out)


def hpack(fields):
    """Literal header fields without indexing, new names, no Huffman."""
    out = b""
    for n, v in fields:
        out += b"\x00" + hint(len(n), 7) + n + hint(len(v), 7) + v
    return out


SETTINGS = frame(4, 0, 0, b"")
END_STREAM, END_HEADERS, PADDED = 1, 4, 8
BASE = [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/"), (b":authority", b"a.example")]


def h2(name, frames, piece=0, pending=False):
    put("h2_frames", name, bytes([piece]) + SETTINGS + b"".join(frames), pending)


def headers(sid, fields, flags=END_STREAM | END_HEADERS):
    return frame(1, flags, sid, hpack(fields))


h2("get", [headers(1, BASE)])
h2("get-pieces", [headers(1, BASE + [(b"user-agent", b"fuzz")])], piece=5)
h2("post-data", [headers(1, [(b":method", b"POST"), (b":scheme", b"https"), (b":path", b"/p"),
                             (b":authority", b"a"), (b"content-length", b"5")], END_HEADERS),
                 frame(0, END_STREAM, 1, b"hello")])
h2("post-chunked-trailers", [headers(1, [(b":method", b"POST"), (b":scheme", b"https"), (b":path", b"/t"),
                                         (b":authority", b"a")], END_HEADERS),
                             frame(0, 0, 1, b"abc"),
                             headers(3, BASE),
                             headers(1, [(b"x-checksum", b"1")])])
h2("two-cookies", [headers(1, BASE + [(b"cookie", b"a=1"), (b"cookie", b"b=2"), (b"cookie", b"c=3")])])
h2("continuation", [frame(1, 0, 1, hpack(BASE[:2])), frame(9, 0, 1, hpack(BASE[2:3])),
                    frame(9, END_HEADERS, 1, hpack(BASE[3:]))])
h2("padded-priority", [frame(1, END_STREAM | END_HEADERS | PADDED | 0x20, 1,
                             b"\x03" + b"\x00\x00\x00\x00\x10" + hpack(BASE) + b"\x00\x00\x00")])
h2("many-streams", [headers(i, BASE + [(b"x-n", str(i).encode())]) for i in range(1, 40, 2)])
h2("rst-and-ping", [headers(1, BASE, END_HEADERS), frame(3, 0, 1, b"\x00\x00\x00\x08"),
                    frame(6, 0, 0, b"12345678"), frame(8, 0, 0, b"\x00\x01\x00\x00"),
                    frame(7, 0, 0, b"\x00\x00\x00\x00\x00\x00\x00\x00")])
h2("stripped-headers", [headers(1, BASE + [(b"x-forwarded-for", b"1.2.3.4"), (b"host", b"b.example"),
                                           (b"expect", b"100-continue"),
                                           (b"x-forwarded-clientcert-subjectdn", b"CN=evil"),
                                           (b"te", b"trailers")])])
h2("bad-headers", [headers(1, BASE + [(b"connection", b"close")]),
                   headers(3, BASE + [(b"x", b"a\r\nb: c")]),
                   headers(5, BASE + [(b"Upper", b"x")]),
                   headers(7, [(b":method", b"GET"), (b":path", b"/")])])
h2("authority-odd", [headers(1, [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/"),
                                 (b":authority", b"u@a.example:99999")]),
                     headers(3, [(b":method", b"CONNECT"), (b":authority", b"a:443")])])
h2("data-beyond-length", [headers(1, [(b":method", b"POST"), (b":scheme", b"https"), (b":path", b"/"),
                                      (b":authority", b"a"), (b"content-length", b"1")], END_HEADERS),
                          frame(0, END_STREAM, 1, b"toolong")])
h2("window-update", [headers(1, BASE), frame(8, 0, 1, b"\x7f\xff\xff\xff"), frame(8, 0, 0, b"\x00\x00\x00\x00")])
h2("indexed-hpack", [frame(1, END_STREAM | END_HEADERS, 1, b"\x82\x87\x84\x41\x09a.example" + b"\x3f\xe1\x1f")])
# Issue 9 item 9: forwarding headers a listener does not set pass through.
h2("forwarding-spoof", [headers(1, BASE + [(b"x-forwarded-proto", b"https"), (b"forwarded", b"for=1"),
                                           (b"slb-id", b"evil"), (b"x_forwarded_for", b"1")])], pending=True)
# Issue 9 item 4: request trailers reach the backend unfiltered.
h2("trailer-spoof", [headers(1, [(b":method", b"POST"), (b":scheme", b"https"), (b":path", b"/t"),
                                 (b":authority", b"a")], END_HEADERS),
                     frame(0, 0, 1, b"abc"),
                     headers(1, [(b"x-forwarded-for", b"1.2.3.4"),
                                 (b"x-forwarded-clientcert-subjectdn", b"CN=evil")])], pending=True)
# Issue 9 item 1: joined cookies read from the buffer they grow (ASan UAF).
h2("cookie-join-uaf", [headers(1, BASE + [(b"cookie", b"a" * 4000), (b"cookie", b"b" * 4000),
                                          (b"cookie", b"c" * 4000)])], pending=True)


# --- tls_hello ------------------------------------------------------------
def client_hello(sni, alpn):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    s = ctx.wrap_bio(inc, out, server_hostname=sni)
    try:
        s.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def tls_raw(name, hello, host):
    put("tls_hello", name, b"\x00" + struct.pack(">H", len(hello)) + hello + host)


def tls_hs(name, sni, alpn_wire, host):
    put("tls_hello", name, b"\x01" + bytes([len(sni)]) + sni + bytes([len(alpn_wire)]) + alpn_wire + host)


def wire(protos):
    return b"".join(bytes([len(p)]) + p for p in protos)


tls_raw("raw-sni-h2", client_hello("server.test", ["h2", "http/1.1"]), b"server.test")
tls_raw("raw-wildcard", client_hello("a.server.test", ["http/1.1"]), b"a.server.test:443")
tls_raw("raw-other-sni", client_hello("other.test", ["h2"]), b"server.test")
tls_raw("raw-no-alpn", client_hello("server.test", None), b"x.server.test")
tls_raw("raw-unknown-alpn", client_hello("SERVER.TEST.", ["spdy/3", "foo"]), b"[::1]:443")
tls_hs("hs-sni-h2", b"server.test", wire([b"h2", b"http/1.1"]), b"server.test")
tls_hs("hs-wildcard", b"www.server.test", wire([b"http/1.1"]), b"WWW.Server.Test:8443")
tls_hs("hs-mismatch", b"server.test", wire([b"h2"]), b"evil.example")
tls_hs("hs-no-sni", b"", wire([b"h2"]), b"server.test")
tls_hs("hs-deep-wildcard", b"a.b.server.test", b"", b"a.b.server.test")
tls_hs("hs-bad-alpn", b"server.test", b"\x05h2", b"server.test")
tls_hs("hs-ip", b"127.0.0.1", wire([b"http/1.0"]), b"127.0.0.1")


# --- certstore: flags (bit 0 certificate DER, bit 1 key DER, bit 2 the key
# DER is an EC PRIVATE KEY), 16-bit length n, n bytes of certificate, key --
def certs(name, cert, key=b"", flags=0):
    put("certstore", name, bytes([flags]) + struct.pack(">H", len(cert)) + cert + key)


def data(name):
    with open(os.path.join(HERE, "..", "data", "certs", name), "rb") as f:
        return f.read()


def der(pem):
    body = pem.split(b"-----")[2]
    return base64.b64decode(b"".join(body.split()))


SERVER, SERVER_KEY = data("test-only-server.pem"), data("test-only-server.key")
CA = data("test-only-ca.pem")
certs("rsa", SERVER, SERVER_KEY)
certs("rsa-chain", SERVER + CA, SERVER_KEY)
certs("ec-wildcard", data("test-only-badwild.pem"), data("test-only-badwild.key"))
certs("mismatch", SERVER, data("test-only-other.key"))
certs("ca-no-key", CA)
certs("key-first", SERVER_KEY + SERVER, SERVER_KEY)
certs("truncated", SERVER[: len(SERVER) // 2], SERVER_KEY)
certs("bad-key", SERVER, b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
certs("der-rsa", der(SERVER), der(SERVER_KEY), 3)
certs("der-ec-wildcard", der(data("test-only-badwild.pem")), der(data("test-only-badwild.key")), 3)
certs("der-ca", der(CA), b"", 1)
