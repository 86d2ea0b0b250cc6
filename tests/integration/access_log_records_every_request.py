#!/usr/bin/env python3
"""spec.accessLog writes exactly one JSON line per request, and one per
WebSocket tunnel at its end, with exactly the field names MANIFESTS.md
lists ("Access log fields"), each one right: a proxied GET (query, user
agent, referer, client port, upstream address, status and times, byte
counts), a POST body, responses albd makes itself (405 refused_request,
502 upstream_error, 504 timeout) with albd_reason, HTTPS over HTTP/1.1 and
HTTP/2 (SNI, TLS version and cipher), a WebSocket (status 101, bytes both
ways). A listener without accessLog writes nothing. Listeners naming the
same file share it.

X-Request-Id (spec.requestId): generated when the client sent none, the
same value reaches the backend, comes back in the response where echo is
set, and is the line's request_id; a client's value is replaced on a
listener that does not trust it and kept on one that does; IDs are unique
across requests and workers."""
import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (certificate, echo_header, echo_of, free_ports, http_listener,  # noqa: E402
                          https_listener, instance, run, scaled, server_group)
from ws import OP_TEXT, WSBackend, WSClient  # noqa: E402

FIELDS = {"ts", "request_id", "client_ip", "client_port", "listener", "sni", "tls_version", "tls_cipher",
          "http_version", "method", "host", "path", "query", "status", "albd_reason", "bytes_in", "bytes_out",
          "upstream_addr", "upstream_status", "upstream_connect_s", "upstream_first_byte_s",
          "upstream_total_s", "duration_s", "rule", "server_group", "user_agent", "referer"}


def read_lines(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return [], b""
    out = []
    for raw in data.split(b"\n")[:-1]:
        out.append(json.loads(raw))
    return out, data


def wait_lines(path, n, timeout):
    end = time.monotonic() + timeout
    while True:
        lines, _ = read_lines(path)
        if len(lines) >= n or time.monotonic() > end:
            return lines
        time.sleep(0.05)


def hdr(headers, name):
    return [v for k, v in headers if k.lower() == name.lower()]


def body(env):
    c = env.check
    certs = env.certs()
    be = env.backend("be")
    wsb = WSBackend("ws")
    env.backends.append(wsb)
    p_plain, p_tls, p_dead, p_ws, p_nolog, dead1 = free_ports(6)
    log_a = os.path.join(env.dir, "access-a.log")
    log_ws = os.path.join(env.dir, "access-ws.log")
    al = {"enabled": True, "path": log_a}
    env.write_manifests(
        instance(), certificate("rsa", certs.rsa),
        server_group("web", [be.addr]),
        server_group("dead", [("127.0.0.1", dead1)]),
        server_group("wsg", [wsb.addr]),
        http_listener("plain", p_plain, "web", accessLog=al, requestId={"echo": True},
                      requestTimeoutSeconds=1),
        https_listener("tls", p_tls, "rsa", "web", accessLog=al, requestId={"trustClient": True}, http2=True),
        http_listener("deadl", p_dead, "dead", accessLog=al),
        http_listener("wsl", p_ws, "wsg", accessLog={"enabled": True, "path": log_ws}),
        http_listener("nolog", p_nolog, "web"))
    albd = env.start_albd(ports=(p_plain, p_tls, p_dead, p_ws, p_nolog))
    expected = 0

    # 1. A proxied GET, on our own connection (to know the client port).
    conn = env.connection(p_plain, tls=False)
    conn.request("GET", "/get-a?x=1&y=%22", headers={"User-Agent": 'probe/1 "q"', "Referer": "http://ref.test/p"})
    r = conn.getresponse()
    get_body = r.read()
    get_headers = r.getheaders()
    client_port = conn.sock.getsockname()[1]
    conn.close()
    expected += 1
    c.eq(r.status, 200, "GET through the logging listener answers 200")
    echoed_id = hdr(get_headers, "X-Request-Id")
    backend_id = echo_header(echo_of(get_body), "X-Request-Id")
    c.eq(len(echoed_id), 1, "echo: the response carries one X-Request-Id")
    c.eq(backend_id, echoed_id, "the backend got the X-Request-Id the client got back")

    # 2. A POST with a body.
    st, _, _ = env.http("POST", p_plain, "/post-b", body=b"z" * 1000)
    expected += 1
    c.eq(st, 200, "POST answers 200")
    # 3. Refused by albd: TRACE.
    st, h405, b405 = env.http("TRACE", p_plain, "/trace-c")
    expected += 1
    c.eq(st, 405, "TRACE is refused with 405")
    c.eq(len(hdr(h405, "X-Request-Id")), 1, "echo: albd's own answer carries X-Request-Id too")
    # 4. The backend is too slow: 504.
    st, _, _ = env.http("GET", p_plain, "/slow-d?delay=3")
    expected += 1
    c.eq(st, 504, "a backend slower than requestTimeoutSeconds gives 504")
    # 5. Nobody listens: 502.
    st, _, _ = env.http("GET", p_dead, "/dead-e")
    expected += 1
    c.eq(st, 502, "a refusing server gives 502")
    # 6. A client's X-Request-Id on a listener that does not trust it.
    st, _, b6 = env.http("GET", p_plain, "/untrusted-f", headers={"X-Request-Id": "client-chosen"})
    expected += 1
    ids6 = echo_header(echo_of(b6), "X-Request-Id")
    c.ok(len(ids6) == 1 and ids6[0] != "client-chosen", "untrusted listener: the client's X-Request-Id is replaced",
         "one new ID", ids6)
    # 7. HTTPS, HTTP/1.1, trusted client ID.
    st, _, b7 = env.https("GET", p_tls, "/tls-g", headers={"X-Request-Id": "trusted-123"})
    expected += 1
    c.eq(echo_header(echo_of(b7), "X-Request-Id"), ["trusted-123"], "trusting listener: the client's ID is kept")
    # 8. HTTPS, HTTP/2.
    code, b8, err = env.curl(env.url(p_tls, "/h2-h?q=2"), "--http2", "-A", "curl-h2")
    expected += 1
    c.eq(code, 200, "HTTP/2 request answers 200", )
    ids8 = echo_header(echo_of(b8), "X-Request-Id")
    c.eq(len(ids8), 1, "HTTP/2: the backend got one generated X-Request-Id")
    # 9. A request on the listener without accessLog.
    st, _, _ = env.http("GET", p_nolog, "/nolog-i")
    c.eq(st, 200, "the listener without accessLog serves")
    # 10. A WebSocket: one line when the tunnel ends.
    sock = socket.create_connection(("127.0.0.1", p_ws), timeout=scaled(10))
    ws = WSClient(sock, f"127.0.0.1:{p_ws}", "/chat-j")
    c.eq(ws.status, 101, "WebSocket upgrade answers 101")
    first = ws.recv()
    ws.send("x" * 100)
    echo = ws.recv()
    c.eq(echo, (OP_TEXT, b"x" * 100), "a message is echoed")
    time.sleep(0.3)
    c.eq(read_lines(log_ws)[0], [], "no line while the tunnel is open")
    ws.close()
    ws.eof(scaled(5))
    ws.close_socket()

    lines = wait_lines(log_a, expected, scaled(5))
    time.sleep(0.5)  # nothing more may come
    lines, raw = read_lines(log_a)
    c.eq(len(lines), expected, "one line per request on the logging listeners (and none for nolog)")
    bad_keys = [sorted(set(ln) ^ FIELDS) for ln in lines if set(ln) != FIELDS]
    c.eq(bad_keys, [], "every line has exactly the MANIFESTS.md field names")
    by_path = {}
    for ln in lines:
        by_path.setdefault(ln.get("path"), []).append(ln)
    c.eq(sorted(len(v) for v in by_path.values()), [1] * len(by_path), "no request logged twice")

    def line(path):
        v = by_path.get(path) or [{}]
        return v[0]

    a = line("/get-a")
    c.eq({k: a.get(k) for k in ("listener", "method", "host", "query", "status", "upstream_status", "http_version",
                                "client_ip", "client_port", "user_agent", "referer", "server_group", "rule",
                                "albd_reason", "sni", "tls_version", "tls_cipher", "bytes_in")},
         {"listener": "plain", "method": "GET", "host": f"127.0.0.1:{p_plain}", "query": "x=1&y=%22",
          "status": 200, "upstream_status": 200, "http_version": "1.1", "client_ip": "127.0.0.1",
          "client_port": client_port, "user_agent": 'probe/1 "q"', "referer": "http://ref.test/p",
          "server_group": "web", "rule": None, "albd_reason": None, "sni": None, "tls_version": None,
          "tls_cipher": None, "bytes_in": 0},
         "GET line: request, client and response fields")
    c.eq(a.get("bytes_out"), len(get_body), "GET line: bytes_out is the body length")
    c.eq(a.get("upstream_addr"), f"127.0.0.1:{be.port}", "GET line: upstream_addr")
    c.eq([a.get("request_id")], echoed_id, "GET line: request_id is the echoed X-Request-Id")
    t = [a.get(k) for k in ("upstream_connect_s", "upstream_first_byte_s", "upstream_total_s", "duration_s")]
    c.ok(all(isinstance(x, float) for x in t) and t[0] <= t[1] <= t[2] <= t[3] < 5, "GET line: times ordered, in s",
         "connect <= first byte <= total <= duration", t)
    c.ok(isinstance(a.get("ts"), str) and a["ts"].endswith("Z") and a["ts"][10] == "T", "GET line: ts is RFC 3339 UTC",
         None, a.get("ts"))
    b = line("/post-b")
    c.eq((b.get("method"), b.get("bytes_in"), b.get("status")), ("POST", 1000, 200), "POST line: bytes_in 1000")
    t = line(None) if "/trace-c" not in by_path else line("/trace-c")
    c.eq((t.get("status"), t.get("albd_reason"), t.get("upstream_addr"), t.get("upstream_status"),
          t.get("listener"), t.get("bytes_out")),
         (405, "refused_request", None, None, "plain", len(b405)), "TRACE line: albd's refusal")
    c.eq([t.get("request_id")], hdr(h405, "X-Request-Id"), "TRACE line: request_id is the echoed one")
    d = line("/slow-d")
    c.eq((d.get("status"), d.get("albd_reason"), d.get("upstream_addr"), d.get("upstream_status"),
          d.get("query")), (504, "timeout", f"127.0.0.1:{be.port}", None, "delay=3"), "504 line: reason timeout")
    c.within(d.get("duration_s") or 0, 0.8, scaled(3), "504 line: duration about requestTimeoutSeconds")
    e = line("/dead-e")
    c.eq((e.get("status"), e.get("albd_reason"), e.get("upstream_addr"), e.get("listener"), e.get("server_group")),
         (502, "upstream_error", None, "deadl", "dead"), "502 line: reason upstream_error, no upstream")
    f = line("/untrusted-f")
    c.eq([f.get("request_id")], ids6, "untrusted line: request_id is the one albd sent")
    g = line("/tls-g")
    c.eq((g.get("listener"), g.get("sni"), g.get("http_version"), g.get("request_id")),
         ("tls", "albd.test", "1.1", "trusted-123"), "HTTPS/1.1 line: SNI and trusted ID")
    c.ok(g.get("tls_version", "").startswith("TLSv1.") and g.get("tls_cipher"), "HTTPS line: TLS version and cipher",
         None, (g.get("tls_version"), g.get("tls_cipher")))
    h = line("/h2-h")
    c.eq((h.get("http_version"), h.get("query"), h.get("user_agent"), h.get("status"), h.get("bytes_out")),
         ("2", "q=2", "curl-h2", 200, len(b8)), "HTTP/2 line")
    c.eq([h.get("request_id")], ids8, "HTTP/2 line: request_id is the one the backend got")

    ids = [ln.get("request_id") for ln in lines]
    c.ok(all(isinstance(i, str) and i for i in ids), "every line has a request ID", None, ids)

    wl = wait_lines(log_ws, 1, scaled(5))
    c.eq(len(wl), 1, "the WebSocket's one line, written when the tunnel ended")
    w = wl[0] if wl else {}
    c.eq((w.get("status"), w.get("upstream_status"), w.get("path"), w.get("listener"), w.get("albd_reason")),
         (101, 101, "/chat-j", "wsl", None), "WebSocket line: 101")
    c.ok((w.get("bytes_in") or 0) >= 100 and (w.get("bytes_out") or 0) >= 100 + len(first[1]),
         "WebSocket line: tunnel bytes both ways", ">= 100 each", (w.get("bytes_in"), w.get("bytes_out")))

    # Request IDs: unique over many requests and both workers.
    seen = []
    for i in range(60):
        st, hh, _ = env.http("GET", p_plain, f"/id-{i}")
        seen += hdr(hh, "X-Request-Id")
    c.eq(len(set(seen)), 60, "60 requests get 60 different request IDs")
    c.ok(len({s.split("-")[1] for s in seen if s.count("-") == 2}) >= 1, "IDs name their worker", None, seen[:4])

    c.ok(albd.alive(), "albd is still running")
    albd.check_clean_exit(c)


run("access_log_records_every_request", body)
