#!/usr/bin/env python3
"""A table of malformed or ambiguous HTTP/1.1 requests, each sent raw on its
own connection with a second request -- GET /smuggled-<case> -- right after
the hostile body (or hidden inside it, where one reading of the framing would
end the body early): albd answers each with the expected status and closes
the connection after every error. The backend records every byte it
receives, parsed or not, and each case has its own path, so what reached the
backend is matched to the case that sent it: at most what the case allows
(the head of a request whose body turns out bad may have gone out), and
never a smuggled path, not even as bytes. Valid-but-tricky cases
(absolute-form targets, Connection naming albd's own headers, Upgrade other
than websocket) check what the backend received."""
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (RawBackend, certificate, echo_header, echo_of, free_ports, http_listener,  # noqa: E402
                          https_listener, instance, read_response, run, scaled, server_group, socket,
                          wait_closed)

H = "Host: albd.test\r\n"
LIMIT = 64 * 1024  # the listeners' limits.maxRequestBodyBytes


def req(head, body=b""):
    return head.encode("latin-1") + body


# (name, raw request, expected status, backend requests allowed: 0, 1 or
#  "<=1" (the head may have gone out before the body turned out bad), and an
#  optional check of the single backend request: fn(record) -> (ok, seen)).
# The raw request is bytes (a refused one gets the smuggled request appended)
# or fn(smuggled request) -> bytes that places it itself. Every " /s " target
# becomes the case's own path.
CASES = [
    # --- Content-Length / Transfer-Encoding ambiguity (CL.TE, TE.CL, ...)
    ("CL then TE", req(f"POST /s HTTP/1.1\r\n{H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 400, 0),
    ("TE then CL", req(f"POST /s HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"), 400, 0),
    ("two equal Content-Length", req(f"POST /s HTTP/1.1\r\n{H}Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc"), 400, 0),
    ("two different Content-Length", req(f"POST /s HTTP/1.1\r\n{H}Content-Length: 3\r\nContent-Length: 8\r\n\r\nabcdefgh"), 400, 0),
    ("Content-Length list", req(f"POST /s HTTP/1.1\r\n{H}Content-Length: 3, 3\r\n\r\nabc"), 400, 0),
    ("Content-Length with plus sign", req(f"POST /s HTTP/1.1\r\n{H}Content-Length: +3\r\n\r\nabc"), 400, 0),
    ("Content-Length negative", req(f"POST /s HTTP/1.1\r\n{H}Content-Length: -1\r\n\r\n"), 400, 0),
    ("Content-Length not a number", req(f"POST /s HTTP/1.1\r\n{H}Content-Length: abc\r\n\r\n"), 400, 0),
    ("Content-Length overflows 64 bits", req(f"POST /s HTTP/1.1\r\n{H}Content-Length: 99999999999999999999999\r\n\r\n"), 400, 0),
    ("Content-Length in hex", req(f"POST /s HTTP/1.1\r\n{H}Content-Length: 0x3\r\n\r\nabc"), 400, 0),
    ("TE chunked, gzip (not final chunked)", req(f"POST /s HTTP/1.1\r\n{H}Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"), 400, 0),
    ("TE gzip only", req(f"POST /s HTTP/1.1\r\n{H}Transfer-Encoding: gzip\r\n\r\nabc"), 400, 0),
    ("TE xchunked", req(f"POST /s HTTP/1.1\r\n{H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"), 400, 0),
    ("TE chunkedx", req(f"POST /s HTTP/1.1\r\n{H}Transfer-Encoding: chunkedx\r\n\r\n0\r\n\r\n"), 400, 0),
    ("TE identity", req(f"POST /s HTTP/1.1\r\n{H}Transfer-Encoding: identity\r\n\r\n"), 400, 0),
    ("two TE headers", req(f"POST /s HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 400, 0),
    ("TE chunked, chunked", req(f"POST /s HTTP/1.1\r\n{H}Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"), 400, 0),
    ("TE gzip, chunked (coding albd cannot pass on)", req(f"POST /s HTTP/1.1\r\n{H}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"), 501, 0),
    ("TE with HTTP/1.0", req(f"POST /s HTTP/1.0\r\n{H}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"), 400, 0),
    ("space before the colon of TE", req(f"POST /s HTTP/1.1\r\n{H}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n"), 400, 0),
    ("TE obs-folded", req(f"POST /s HTTP/1.1\r\n{H}Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n"), 400, 0),
    # --- a second request hidden in the body under one reading of the framing
    ("CL.TE: Content-Length covers a request after the last chunk",
     lambda sm: req(f"POST /s HTTP/1.1\r\n{H}Content-Length: {5 + len(sm)}\r\nTransfer-Encoding: chunked\r\n\r\n",
                    b"0\r\n\r\n" + sm), 400, 0),
    ("TE.CL: a chunk holds a request Content-Length ends before",
     lambda sm: req(f"POST /s HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n",
                    b"%x\r\n%s\r\n0\r\n\r\n" % (len(sm), sm)), 400, 0),
    ("TE.TE: obfuscated second Transfer-Encoding, Content-Length covers a request",
     lambda sm: req(f"POST /s HTTP/1.1\r\n{H}Content-Length: {5 + len(sm)}\r\nTransfer-Encoding: chunked\r\n"
                    "Transfer-encoding: x\r\n\r\n", b"0\r\n\r\n" + sm), 400, 0),
    ("CL.CL: the second Content-Length covers a request",
     lambda sm: req(f"POST /s HTTP/1.1\r\n{H}Content-Length: 0\r\nContent-Length: {len(sm)}\r\n\r\n", sm), 400, 0),
    ("space before the colon of CL, body holds a request",
     lambda sm: req(f"POST /s HTTP/1.1\r\n{H}Content-Length : {len(sm)}\r\n\r\n", sm), 400, 0),
    ("bare LF in the head ends it early for a lenient parser",
     lambda sm: req(f"POST /s HTTP/1.1\r\n{H}X-A: b\n\nContent-Length: {len(sm)}\r\n\r\n", sm), 400, 0),
    ("chunk size with a chunk extension hiding a request",
     lambda sm: req(f"POST /s HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\n",
                    b"0;\n" + sm + b"\r\n\r\n"), 400, "<=1"),
    # --- line endings, folding, bytes not allowed in the head
    ("obs-fold in a header", req(f"GET /s HTTP/1.1\r\n{H}X-A: a\r\n b\r\n\r\n"), 400, 0),
    ("obs-fold with a tab", req(f"GET /s HTTP/1.1\r\n{H}X-A: a\r\n\tb\r\n\r\n"), 400, 0),
    ("bare LF ends a header line", req(f"GET /s HTTP/1.1\r\nHost: albd.test\nX-A: b\r\n\r\n"), 400, 0),
    ("bare LF ends the request line", req(f"GET /s HTTP/1.1\n{H}\r\n"), 400, 0),
    ("bare CR in a header value", req(f"GET /s HTTP/1.1\r\n{H}X-A: a\rb\r\n\r\n"), 400, 0),
    ("bare CR in the request line", req(f"GET /s\r HTTP/1.1\r\n{H}\r\n"), 400, 0),
    ("NUL in a header value", req(f"GET /s HTTP/1.1\r\n{H}X-A: a\x00b\r\n\r\n"), 400, 0),
    ("control byte in a header value", req(f"GET /s HTTP/1.1\r\n{H}X-A: a\x01b\r\n\r\n"), 400, 0),
    ("DEL in a header value", req(f"GET /s HTTP/1.1\r\n{H}X-A: a\x7fb\r\n\r\n"), 400, 0),
    ("space in a header name", req(f"GET /s HTTP/1.1\r\n{H}X A: b\r\n\r\n"), 400, 0),
    ("separator in a header name", req(f"GET /s HTTP/1.1\r\n{H}X(A): b\r\n\r\n"), 400, 0),
    ("empty header name", req(f"GET /s HTTP/1.1\r\n{H}: b\r\n\r\n"), 400, 0),
    ("header line without a colon", req(f"GET /s HTTP/1.1\r\n{H}X-A b\r\n\r\n"), 400, 0),
    ("space before the first header", req(f"GET /s HTTP/1.1\r\n Host: albd.test\r\n\r\n"), 400, 0),
    # --- Host
    ("no Host on HTTP/1.1", req("GET /s HTTP/1.1\r\nX-A: b\r\n\r\n"), 400, 0),
    ("two Host headers", req(f"GET /s HTTP/1.1\r\n{H}Host: evil.test\r\n\r\n"), 400, 0),
    ("Host with a space", req("GET /s HTTP/1.1\r\nHost: albd.test evil.test\r\n\r\n"), 400, 0),
    ("Host with a slash", req("GET /s HTTP/1.1\r\nHost: albd.test/x\r\n\r\n"), 400, 0),
    ("Host with userinfo", req("GET /s HTTP/1.1\r\nHost: user@albd.test\r\n\r\n"), 400, 0),
    # --- the request line
    ("space inside the target", req(f"GET /a b HTTP/1.1\r\n{H}\r\n"), 400, 0),
    ("two spaces after the method", req(f"GET  /s HTTP/1.1\r\n{H}\r\n"), 400, 0),
    ("tab as a separator", req(f"GET\t/s HTTP/1.1\r\n{H}\r\n"), 400, 0),
    ("lowercase method", req(f"get /s HTTP/1.1\r\n{H}\r\n"), 400, 0),
    ("lowercase protocol name", req(f"GET /s http/1.1\r\n{H}\r\n"), 400, 0),
    ("HTTP/2.0 in an HTTP/1 request line", req(f"GET /s HTTP/2.0\r\n{H}\r\n"), 505, 0),
    ("target not in origin form", req(f"GET s HTTP/1.1\r\n{H}\r\n"), 400, 0),
    ("asterisk target with GET", req(f"GET * HTTP/1.1\r\n{H}\r\n"), 400, 0),
    ("absolute-form with another scheme", req(f"GET ftp://albd.test/s HTTP/1.1\r\n{H}\r\n"), 400, 0),
    ("absolute-form with userinfo", req(f"GET http://u:p@albd.test/s HTTP/1.1\r\n{H}\r\n"), 400, 0),
    ("absolute-form without authority", req(f"GET http:///s HTTP/1.1\r\n{H}\r\n"), 400, 0),
    ("target over 32 KB", req(f"GET /{'a' * (33 * 1024)} HTTP/1.1\r\n{H}\r\n"), 414, 0),
    ("header block over 32 KB", req(f"GET /s HTTP/1.1\r\n{H}X-Big: {'b' * (33 * 1024)}\r\n\r\n"), 431, 0),
    ("TRACE", req(f"TRACE /s HTTP/1.1\r\n{H}\r\n"), 405, 0),
    ("CONNECT", req(f"CONNECT albd.test:443 HTTP/1.1\r\n{H}\r\n"), 405, 0),
    ("Expect other than 100-continue", req(f"POST /s HTTP/1.1\r\n{H}Expect: 200-ok\r\nContent-Length: 3\r\n\r\nabc"), 417, 0),
    # --- chunked bodies (the head may already be on its way to the backend)
    ("chunk size not hex", req(f"POST /s HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"), 400, "<=1"),
    ("chunk size overflows", req(f"POST /s HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nabc\r\n0\r\n\r\n"), 400, "<=1"),
    ("chunk size with a space inside", req(f"POST /s HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\n1 0\r\nabc\r\n0\r\n\r\n"), 400, "<=1"),
    ("chunk data longer than its size", req(f"POST /s HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n"), 400, "<=1"),
    ("chunk extension of 8 KB", req(f"POST /s HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\n3;x={'e' * 8192}\r\nabc\r\n0\r\n\r\n"), 400, "<=1"),
    ("many chunk extensions", req(f"POST /s HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\n3{';a=b' * 400}\r\nabc\r\n0\r\n\r\n"), 400, "<=1"),
    ("bare LF after a chunk size", req(f"POST /s HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n"), 400, "<=1"),
    # --- body size limit
    ("Content-Length over the body limit", req(f"POST /s HTTP/1.1\r\n{H}Content-Length: {LIMIT + 1}\r\n\r\n"), 413, 0),
    ("chunked body crossing the body limit",
     req(f"POST /s HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\n",
         b"".join(b"%x\r\n%s\r\n" % (8192, b"c" * 8192) for _ in range(LIMIT // 8192 + 2)) + b"0\r\n\r\n"), 413, "<=1"),
    # --- valid but tricky: served, and the backend sees the right thing
    ("absolute-form target: authority wins over Host",
     req("GET http://other.test:81/abs?q=1 HTTP/1.1\r\nHost: albd.test\r\n\r\n"), 200, 1,
     lambda r: (r["path"] == "/abs?q=1" and echo_header(r, "Host") == ["other.test:81"],
                (r["path"], echo_header(r, "Host")))),
    ("absolute-form without a path",
     req("GET HTTP://albd.test HTTP/1.1\r\nHost: albd.test\r\n\r\n"), 200, 1,
     lambda r: (r["path"] == "/" and echo_header(r, "Host") == ["albd.test"], (r["path"], echo_header(r, "Host")))),
    ("Connection naming X-Forwarded-For and Host",
     req(f"GET /conn HTTP/1.1\r\n{H}X-Forwarded-For: 192.0.2.1\r\nConnection: X-Forwarded-For, Host\r\n\r\n"), 200, 1,
     lambda r: (echo_header(r, "X-Forwarded-For") == ["192.0.2.1, 127.0.0.1"] and echo_header(r, "Host") == ["albd.test"],
                (echo_header(r, "X-Forwarded-For"), echo_header(r, "Host")))),
    ("Connection naming an end-to-end header strips it",
     req(f"GET /conn2 HTTP/1.1\r\n{H}X-Secret: 1\r\nConnection: keep-alive, X-Secret\r\n\r\n"), 200, 1,
     lambda r: (echo_header(r, "X-Secret") == [] and echo_header(r, "Connection") in ([], ["close"]),
                r["headers"])),
    ("Upgrade other than websocket is stripped",
     req(f"GET /h2c HTTP/1.1\r\n{H}Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"), 200, 1,
     lambda r: (echo_header(r, "Upgrade") == [] and echo_header(r, "HTTP2-Settings") == [], r["headers"])),
    ("HTTP/1.0 without Host is served", req("GET /old HTTP/1.0\r\n\r\n"), 200, 1,
     lambda r: (r["version"] == "HTTP/1.0", r["version"])),
    ("chunked request with trailers", req(f"POST /trailers HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"), 200, 1,
     lambda r: (r.get("body_len") == 3 and echo_header(r, "X-T") == [], (r.get("body_len"), r["headers"]))),
    ("OPTIONS *", req(f"OPTIONS * HTTP/1.1\r\n{H}\r\n"), 200, 1, lambda r: (r["path"] == "*", r["path"])),
]


def smuggled(i):
    return f"/smuggled-{i:03d}"


def case_path(i):
    return f"/case-{i:03d}"


def body(env):
    c = env.check
    certs = env.certs()
    be = RawBackend("a")
    env.backends.append(be)
    port, p_http = free_ports(2)
    limits = {"maxRequestBodyBytes": LIMIT}
    env.write_manifests(instance(), certificate("rsa", certs.rsa), server_group("web", [be.addr]),
                        https_listener("web", port, "rsa", "web", limits=limits),
                        http_listener("web-http", p_http, "web", limits=limits))
    albd = env.start_albd(ports=(port, p_http))

    def send(raw, tls):
        s = env.tls_socket(port) if tls else socket.create_connection(("127.0.0.1", p_http), timeout=scaled(10))
        f = s.makefile("rb")
        try:
            try:
                s.sendall(raw)
            except OSError:
                pass  # albd may answer and close before it has read everything
            try:
                _, st, hdrs, b, _ = read_response(f)
            except (OSError, ValueError) as ex:
                return f"no response ({ex!r})", None, None, b""
            closed = wait_closed(s, scaled(3))[0] if st >= 400 else None
            return st, hdrs, closed, b
        finally:
            f.close()
            s.close()

    c.ok(len(CASES) >= 40, f"the table has at least 40 cases ({len(CASES)})")
    labels, answers = [], []
    for i, case in enumerate(CASES):
        name, raw, want, allowed = case[:4]
        probe = case[4] if len(case) > 4 else None
        sm = f"GET {smuggled(i)} HTTP/1.1\r\n{H}\r\n".encode()
        if callable(raw):
            raw = raw(sm)
        elif want >= 400:
            raw += sm
        raw = raw.replace(b" /s ", f" {case_path(i)} ".encode()).replace(b" /s\r ", f" {case_path(i)}\r ".encode())
        tls = i % 4 == 3  # every fourth case over TLS, the rest in clear
        st, hdrs, closed, b = send(raw, tls)
        label = f"[{'https' if tls else 'http'}] {name}"
        labels.append(label)
        answers.append(b)
        c.eq(st, want, f"{label}: status")
        if isinstance(st, int) and st >= 400:
            c.eq(closed, True, f"{label}: the connection is closed after the error")
            cc = [v for k, v in hdrs if k.lower() == "cache-control"]
            c.eq(cc, ["no-store"], f"{label}: the error is not cacheable")
        if allowed == 1:
            target = re.match(rb"[A-Z]+ (\S+) ", raw).group(1).decode()
            path = "/abs?q=1" if target.startswith("http://other") else "/" if target.upper() == "HTTP://ALBD.TEST" \
                else target
            c.ok(be.wait_path(path, scaled(5)), f"{label}: the backend got {path}")

    # Everything has arrived once the backend is quiet: then match what it
    # received to the cases by path, in its raw bytes and in what it parsed.
    last, quiet = len(be.raw()), time.monotonic()
    while time.monotonic() - quiet < scaled(0.5):
        time.sleep(0.05)
        if len(be.raw()) != last:
            last, quiet = len(be.raw()), time.monotonic()
    raw_all = be.raw()
    parsed = be.requests
    for i, case in enumerate(CASES):
        name, _, _, allowed = case[:4]
        probe = case[4] if len(case) > 4 else None
        label = labels[i]
        leaked = raw_all.count(smuggled(i).encode())
        c.eq(leaked, 0, f"{label}: the smuggled {smuggled(i)} never reached the backend, not even as bytes")
        mine = [r for r in parsed if r["path"].startswith(case_path(i))]
        heads = raw_all.count((case_path(i) + " ").encode()) + raw_all.count((case_path(i) + "?").encode())
        if allowed == "<=1":
            c.ok(heads <= 1, f"{label}: the backend saw at most the head of the request", "<= 1", heads)
        elif allowed == 0:
            c.eq(heads + len(mine), 0, f"{label}: nothing of the request reached the backend")
        if probe:
            ok, what = probe(echo_of(answers[i]))
            c.ok(ok, f"{label}: what the backend received", None, what)
    stray = [r["path"] for r in parsed if r["path"].startswith("/smuggled-")]
    c.eq(stray, [], "no smuggled path was ever parsed by the backend")
    most = sum(1 for case in CASES if case[3] == 1)
    c.eq(len(parsed), most, "the backend parsed exactly the requests of the valid cases")
    albd.check_clean_exit(c)


run("rejects_request_smuggling", body)
