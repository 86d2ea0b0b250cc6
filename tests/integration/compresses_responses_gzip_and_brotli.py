#!/usr/bin/env python3
"""Response compression, every rule of the reference (alb-https-listener.txt
"Compression"), over HTTP/1.1 and HTTP/2, each compressed body decompressed
and compared with what the backend sent (gzip: python3 zlib; Brotli: the
`brotli` command): Brotli for any type, gzip only for the nine listed types,
only above 1,024 bytes of Content-Length (a response without one is passed
as it is), Brotli preferred, q-values honoured (q=0, "*", identity), never
for a Content-Encoding, HEAD, 204, 304, 206/Content-Range or no-transform;
Vary: Accept-Encoding added, Content-Length and Accept-Ranges removed,
strong ETags made weak; the listener's switches; and a 24 MiB body
streamed to a slow reader while albd's memory stays bounded."""
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (certificate, free_ports, https_listener, instance,  # noqa: E402
                          proc_mem_kib, run, scaled, server_group)
from raw_backend import RawBackend, curl_run  # noqa: E402

JSON = (b'{"id": 1, "name": "albd", "tags": ["a", "b", "c"], "ok": true}, ' * 200)[:9000]
PNG = bytes(range(256)) * 12  # 3,072 bytes of "image"
BIG = 24 << 20


def big_piece(i):
    return (b'{"row": %08d, "text": "the quick brown fox jumps over the lazy dog"},\n' % i)


def script(req):
    """/r?ct=&n=&status=&ce=&etag=&vary=&cc=&range=&chunked=&big="""
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(req.path).query))
    if q.get("big"):
        row = big_piece(0)
        n = BIG // len(row)
        head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {n * len(row)}\r\n\r\n").encode()

        def gen():
            yield head
            buf = []
            for i in range(n):
                buf.append(big_piece(i))
                if len(buf) == 1024:
                    yield b"".join(buf)
                    buf = []
            if buf:
                yield b"".join(buf)
        return list(gen())
    status = int(q.get("status", 200))
    body = PNG if q.get("ct") == "image/png" else JSON
    body = body[:int(q.get("n", len(body)))]
    hs = [("Content-Type", q.get("ct", "application/json"))]
    for k, name in (("ce", "Content-Encoding"), ("etag", "ETag"), ("vary", "Vary"),
                    ("cc", "Cache-Control"), ("range", "Content-Range")):
        if k in q:
            hs.append((name, q[k]))
    hs.append(("Accept-Ranges", "bytes"))
    head = f"HTTP/1.1 {status} X\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hs)
    if status in (204, 304):
        return [head.encode() + b"\r\n"]
    if req.method == "HEAD":
        return [head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode()]
    if q.get("chunked"):
        return [head.encode() + b"Transfer-Encoding: chunked\r\n\r\n" +
                b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)]
    return [head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body]


def unbrotli(env, data):
    p = os.path.join(env.dir, "b.br")
    with open(p, "wb") as f:
        f.write(data)
    r = subprocess.run(["brotli", "-d", "-c", p], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    if r.returncode != 0:
        raise ValueError(r.stderr.decode(errors="replace"))
    return r.stdout


def decode(env, coding, data):
    """The body as the client's decoder sees it, or an error string."""
    try:
        if coding == "gzip":
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out = d.decompress(data) + d.flush()
            if not d.eof or d.unused_data:
                return "gzip stream not ended cleanly"
            return out
        if coding == "br":
            return unbrotli(env, data)
        return data
    except (zlib.error, ValueError) as e:
        return f"decode error: {e}"


def body(env):
    c = env.check
    if not shutil.which("brotli"):
        c.ok(False, "the brotli command is installed (contrib/deps.sh)")
        return
    certs = env.certs()
    be = RawBackend(script)
    p_on, p_off, p_nogz = free_ports(3)
    env.write_manifests(
        instance(),
        certificate("rsa", certs.rsa),
        server_group("web", [("127.0.0.1", be.port)]),
        https_listener("on", p_on, "rsa", "web", http2=True),
        https_listener("off", p_off, "rsa", "web", http2=True,
                       compression={"gzip": False, "brotli": False}),
        https_listener("nogz", p_nogz, "rsa", "web", http2=True, compression={"gzip": False}))
    albd = env.start_albd(ports=(p_on, p_off, p_nogz))

    def h1(port, path, ae=None, method="GET"):
        conn = env.connection(port)
        try:
            conn.request(method, path, headers={"Accept-Encoding": ae} if ae is not None else {})
            r = conn.getresponse()
            return r.status, [(k.lower(), v) for k, v in r.getheaders()], r.read()
        finally:
            conn.close()

    def h2(port, path, ae=None, method="GET"):
        hp = os.path.join(env.dir, "h2.headers")
        args = ["-D", hp]
        # curl sends no Accept-Encoding of its own without --compressed.
        if ae is not None:
            args += ["-H", f"Accept-Encoding: {ae}"]
        if method == "HEAD":
            args += ["-I"]
        rc, code, b, err, version = curl_run(env, env.url(port, path), *args, http2=True,
                                             timeout=scaled(20))
        hs = []
        with open(hp, "rb") as f:
            for line in f.read().decode(errors="replace").splitlines()[1:]:
                k, sep, v = line.partition(":")
                if sep:
                    hs.append((k.strip().lower(), v.strip()))
        return (code if version == "2" else f"{code} over HTTP/{version}"), hs, b

    def hget(hs, name):
        return [v for k, v in hs if k == name]

    def check(proto, call, port, path, ae, want, original, method="GET", extra=""):
        status, hs, raw = call(port, path, ae, method)
        what = f"{proto} {method} {path} Accept-Encoding {ae!r}{extra}"
        ce = hget(hs, "content-encoding")
        if want is None:
            sent = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(path).query)).get("ce")
            c.eq(ce, [sent] if sent else [], f"{what}: not compressed (the backend's coding)")
            if method != "HEAD" and status not in (204, 304):
                c.eq(raw, original, f"{what}: the body as the backend sent it")
            return status, hs
        c.eq(ce, [want], f"{what}: Content-Encoding {want}")
        c.eq(hget(hs, "content-length"), [], f"{what}: no Content-Length")
        c.eq(hget(hs, "accept-ranges"), [], f"{what}: no Accept-Ranges")
        c.ok(any("accept-encoding" in v.lower() for v in hget(hs, "vary")),
             f"{what}: Vary: Accept-Encoding", seen=hget(hs, "vary"))
        dec = decode(env, want, raw)
        c.ok(dec == original, f"{what}: decompresses to the backend's body",
             expected=len(original), seen=dec if isinstance(dec, str) else len(dec))
        c.ok(len(raw) < len(original), f"{what}: smaller than the original",
             expected=f"< {len(original)}", seen=len(raw))
        if proto == "HTTP/1.1":
            c.eq(hget(hs, "transfer-encoding"), ["chunked"], f"{what}: chunked")
        return status, hs

    for proto, call in (("HTTP/1.1", h1), ("HTTP/2", h2)):
        # Which coding, by Accept-Encoding and type.
        cases = [
            ("/r", "gzip, deflate, br", "br", JSON),          # both: Brotli preferred
            ("/r", "br, gzip", "br", JSON),
            ("/r", "gzip", "gzip", JSON),
            ("/r", "x-gzip", "gzip", JSON),
            ("/r", "br", "br", JSON),
            ("/r", "GZIP;Q=1.0", "gzip", JSON),                # case-insensitive
            ("/r", "br;q=0, gzip", "gzip", JSON),              # q=0 refuses
            ("/r", "br;q=0.000, gzip;q=0.001", "gzip", JSON),
            ("/r", "gzip;q=0.9, br;q=0.5", "gzip", JSON),      # higher q wins
            ("/r", "gzip;q=0.5, br;q=0.5", "br", JSON),        # a tie: Brotli
            ("/r", "*", "br", JSON),
            ("/r", "*;q=0.5, gzip", "gzip", JSON),
            ("/r", "br;q=0, *", "gzip", JSON),
            ("/r", "*;q=0", None, JSON),
            ("/r", "gzip;q=0, br;q=0", None, JSON),
            ("/r", "identity", None, JSON),
            ("/r", "deflate", None, JSON),
            ("/r", "", None, JSON),
            ("/r", None, None, JSON),
            ("/r", "gzip;q=2, br;q=x", None, JSON),            # malformed q: ignored
            # gzip types: only the listed nine; Brotli any type.
            ("/r?ct=image/png", "gzip", None, PNG),
            ("/r?ct=image/png", "gzip, br", "br", PNG),
            ("/r?ct=image/png", "br", "br", PNG),
            ("/r?ct=text/html", "gzip", None, JSON),
            ("/r?ct=text/html", "br", "br", JSON),
            ("/r?ct=text/plain;%20charset=utf-8", "gzip", "gzip", JSON),
            ("/r?ct=Application/JSON", "gzip", "gzip", JSON),
            # Size: only above 1,024 bytes.
            ("/r?n=1024", "br", None, JSON[:1024]),
            ("/r?n=1025", "br", "br", JSON[:1025]),
            ("/r?n=1025", "gzip", "gzip", JSON[:1025]),
            ("/r?n=10", "gzip, br", None, JSON[:10]),
            # No Content-Length (chunked): passed as it is.
            ("/r?chunked=1", "gzip, br", None, JSON),
            # Already encoded, ranges, no-transform.
            ("/r?ce=deflate", "gzip, br", None, JSON),
            ("/r?ce=identity", "gzip, br", None, JSON),
            ("/r?status=206&range=bytes%200-8999/20000", "gzip, br", None, JSON),
            ("/r?range=bytes%200-8999/20000", "gzip, br", None, JSON),
            ("/r?cc=public,%20no-transform", "gzip, br", None, JSON),
            # Other statuses with a body are compressed.
            ("/r?status=404", "br", "br", JSON),
        ]
        for ct in ("text/xml", "text/css", "application/javascript", "application/x-javascript",
                   "application/rss+xml", "application/atom+xml", "application/xml"):
            cases.append((f"/r?ct={urllib.parse.quote(ct, safe='/')}", "gzip", "gzip", JSON))
        for path, ae, want, orig in cases:
            check(proto, call, p_on, path, ae, want, orig)
        # HEAD, 204, 304: nothing compressed, Content-Length of HEAD kept.
        st, hs = check(proto, call, p_on, "/r", "gzip, br", None, JSON, method="HEAD")
        c.eq(hget(hs, "content-length"), [str(len(JSON))], f"{proto} HEAD: Content-Length kept")
        for s in (204, 304):
            st, hs = check(proto, call, p_on, f"/r?status={s}", "gzip, br", None, b"")
            c.eq(st, s, f"{proto} {s}: passed on")
        # ETag: strong made weak, weak kept; Vary joined.
        _, hs = check(proto, call, p_on, '/r?etag="abc"', "br", "br", JSON)
        c.eq(hget(hs, "etag"), ['W/"abc"'], f"{proto}: a strong ETag becomes weak")
        _, hs = check(proto, call, p_on, '/r?etag=W/"abc"', "br", "br", JSON)
        c.eq(hget(hs, "etag"), ['W/"abc"'], f"{proto}: a weak ETag stays")
        _, hs = check(proto, call, p_on, '/r?etag="abc"', None, None, JSON)
        c.eq(hget(hs, "etag"), ['"abc"'], f"{proto}: not compressed, the ETag untouched")
        _, hs = check(proto, call, p_on, "/r?vary=Origin", "br", "br", JSON)
        vary = ",".join(hget(hs, "vary")).lower().replace(" ", "")
        c.eq(sorted(vary.split(",")), ["accept-encoding", "origin"], f"{proto}: Vary keeps Origin")
        _, hs = check(proto, call, p_on, "/r?vary=Accept-Encoding", "br", "br", JSON)
        c.eq(hget(hs, "vary"), ["Accept-Encoding"], f"{proto}: Vary: Accept-Encoding not doubled")
        # The listener's switches.
        check(proto, call, p_off, "/r", "gzip, br", None, JSON, extra=" (compression off)")
        check(proto, call, p_nogz, "/r", "gzip", None, JSON, extra=" (gzip off)")
        check(proto, call, p_nogz, "/r", "gzip, br", "br", JSON, extra=" (gzip off)")
        # Keep-alive: a compressed then a plain then a compressed response
        # on one HTTP/1.1 connection.
    conn = env.connection(p_on)
    try:
        for ae, want in (("gzip", "gzip"), (None, None), ("br", "br"), ("gzip", "gzip")):
            conn.request("GET", "/r", headers={"Accept-Encoding": ae} if ae else {})
            r = conn.getresponse()
            raw = r.read()
            c.eq(r.getheader("Content-Encoding"), want, f"keep-alive: Accept-Encoding {ae!r}")
            c.ok(decode(env, want, raw) == JSON, f"keep-alive: {ae!r} body intact")
    finally:
        conn.close()

    # HTTP/1.0: no chunked framing, so the compressed body ends at close.
    s = env.tls_socket(p_on)
    s.sendall(f"GET /r HTTP/1.0\r\nHost: {env.host}\r\nAccept-Encoding: gzip\r\n\r\n".encode())
    data = bytearray()
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    head, _, raw = bytes(data).partition(b"\r\n\r\n")
    hl = head.lower()
    c.ok(b"content-encoding: gzip" in hl and b"content-length" not in hl and
         b"transfer-encoding" not in hl, "HTTP/1.0: gzip, close-delimited", seen=head.decode()[:300])
    c.ok(decode(env, "gzip", raw) == JSON, "HTTP/1.0: the body decompresses to the original")

    # A 24 MiB body to a slow reader, over both protocols: bounded memory,
    # intact after decompression.
    row = big_piece(0)
    n = BIG // len(row)
    want = hashlib.sha256(b"".join(big_piece(i) for i in range(n))).hexdigest()
    base = proc_mem_kib(albd.pid, "VmRSS")

    def slow_h1(ae, coding):
        s = env.tls_socket(p_on, timeout=scaled(60))
        s.sendall(f"GET /r?big=1 HTTP/1.1\r\nHost: {env.host}\r\nAccept-Encoding: {ae}\r\n"
                  "Connection: close\r\n\r\n".encode())
        data = bytearray()
        while True:
            b = s.recv(4096)
            if not b:
                break
            data += b
            time.sleep(0.001)
        s.close()
        head, _, rest = bytes(data).partition(b"\r\n\r\n")
        out = bytearray()
        while True:  # de-chunk
            line, _, rest = rest.partition(b"\r\n")
            size = int(line.split(b";")[0], 16)
            if size == 0:
                break
            out += rest[:size]
            rest = rest[size + 2:]
        return head, decode(env, coding, bytes(out))

    peak = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            v = proc_mem_kib(albd.pid, "VmRSS") or 0
            peak[0] = max(peak[0], v)
            time.sleep(0.05)
    t = threading.Thread(target=sample, daemon=True)
    t.start()
    for ae, coding in (("gzip", "gzip"), ("br", "br")):
        head, dec = slow_h1(ae, coding)
        c.ok(f"content-encoding: {coding}".encode() in head.lower(), f"big HTTP/1.1 {coding}: compressed")
        c.ok(not isinstance(dec, str) and hashlib.sha256(dec).hexdigest() == want,
             f"big HTTP/1.1 {coding}: 24 MiB intact after decompression",
             seen=dec if isinstance(dec, str) else len(dec))
        st, hs, raw = h2(p_on, "/r?big=1", coding)
        dec = decode(env, coding, raw)
        c.ok(hget(hs, "content-encoding") == [coding] and not isinstance(dec, str) and
             hashlib.sha256(dec).hexdigest() == want,
             f"big HTTP/2 {coding}: compressed, 24 MiB intact after decompression",
             seen=(st, hget(hs, "content-encoding"), dec if isinstance(dec, str) else len(dec)))
    stop.set()
    t.join()
    grew = (peak[0] - (base or 0)) // 1024
    c.ok(grew < 48, "albd's memory stays bounded while streaming 4 x 24 MiB compressed",
         expected="< 48 MiB growth", seen=f"{grew} MiB")
    be.stop()
    albd.check_clean_exit(c)


run("compresses_responses_gzip_and_brotli", body)
