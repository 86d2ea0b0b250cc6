#!/usr/bin/env python3
"""Request trailers never carry what albd owns or what frames, routes or
authorizes a request. A client sends a chunked (HTTP/1.1) or open-ended
(HTTP/2) body followed by trailers naming X-Forwarded-For,
X-Forwarded-Clientcert-subjectdn, SLB-ID, Forwarded, an underscore spelling
(X_Forwarded_Proto), Host and Authorization, plus one
ordinary trailer. A recording backend (raw sockets, it keeps the trailer
section of each chunked body) shows that none of the reserved ones arrives
over either protocol; over HTTP/2 the ordinary trailer still does (HTTP/1.1
drops all request trailers)."""
import os
import socket
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import certificate, free_ports, https_listener, instance, read_response, run, scaled, server_group  # noqa: E402
import h2_frames as h2  # noqa: E402

RESERVED = [("x-forwarded-for", "6.6.6.6"), ("x-forwarded-clientcert-subjectdn", "CN=admin"),
            ("slb-id", "forged"), ("forwarded", "for=6.6.6.6;proto=https"), ("x_forwarded_proto", "https"),
            ("host", "evil.example"), ("authorization", "Bearer forged")]
ORDINARY = ("x-body-digest", "sha-256=abc")


class Recorder:
    """A backend that records each request's head and trailer lines."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.addr = self.sock.getsockname()
        self.requests = []
        self.lock = threading.Condition()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        f = c.makefile("rb")
        try:
            while True:
                head = []
                line = f.readline(65536)
                if not line:
                    return
                while line not in (b"\r\n", b"\n", b""):
                    head.append(line.decode("latin-1").rstrip("\r\n"))
                    line = f.readline(65536)
                fields = [h.split(":", 1)[0].strip().lower() for h in head[1:]]
                values = {h.split(":", 1)[0].strip().lower(): h.split(":", 1)[1].strip() for h in head[1:]}
                trailers, body = [], b""
                if values.get("transfer-encoding", "").lower() == "chunked":
                    while True:
                        size = int(f.readline(1024).split(b";")[0].strip(), 16)
                        if size == 0:
                            t = f.readline(65536)
                            while t not in (b"\r\n", b"\n", b""):
                                trailers.append(t.decode("latin-1").rstrip("\r\n"))
                                t = f.readline(65536)
                            break
                        body += f.read(size)
                        f.readline(8)
                else:
                    body = f.read(int(values.get("content-length", "0")))
                with self.lock:
                    self.requests.append({"line": head[0], "fields": fields, "trailers": trailers, "body": body})
                    self.lock.notify_all()
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        except (OSError, ValueError):
            pass
        finally:
            c.close()

    def wait(self, n, timeout):
        with self.lock:
            self.lock.wait_for(lambda: len(self.requests) >= n, timeout)
            return list(self.requests)


def h1_request(env, port):
    s = env.tls_socket(port)
    try:
        trailers = "".join(f"{k}: {v}\r\n" for k, v in RESERVED + [ORDINARY])
        s.sendall((f"POST /h1 HTTP/1.1\r\nHost: {env.host}\r\nTransfer-Encoding: chunked\r\n\r\n"
                   f"5\r\nhello\r\n0\r\n{trailers}\r\n").encode())
        _, st, _, _, _ = read_response(s.makefile("rb"), method="POST")
        return st
    finally:
        s.close()


def h2_request(env, port):
    conn = h2.H2Conn.connect(env, port)
    try:
        conn.request(1, "POST", env.host, "/h2", end_stream=False)
        conn.send(h2.frame(h2.DATA, 0, 1, b"hello"))
        conn.send(h2.frame(h2.HEADERS, h2.END_HEADERS | h2.END_STREAM, 1, h2.hpack(RESERVED + [ORDINARY])))
        for f in conn.frames(scaled(5)):
            if f.type == h2.HEADERS and f.stream == 1:
                return h2.status_of(f.payload)
            if f.type in (h2.RST_STREAM, h2.GOAWAY):
                return f"frame {f.type}"
        return None
    finally:
        conn.close()


def body(env):
    c = env.check
    certs = env.certs()
    rec = Recorder()
    (port,) = free_ports(1)
    env.write_manifests(instance(), certificate("rsa", certs.rsa), server_group("web", [rec.addr]),
                        https_listener("main", port, "rsa", "web", http2=True))
    albd = env.start_albd(ports=(port,))

    for proto, send, path in (("HTTP/1.1", h1_request, "/h1"), ("HTTP/2", h2_request, "/h2")):
        n0 = len(rec.requests)
        st = send(env, port)
        c.eq(st, 200, f"{proto}: a chunked POST with trailers gets 200")
        got = [r for r in rec.wait(n0 + 1, scaled(5))[n0:] if r["line"].split(" ")[1] == path]
        c.require(len(got) == 1, f"{proto}: the request reached the backend", 1, len(got))
        r = got[0]
        c.eq(r["body"], b"hello", f"{proto}: the body arrives whole")
        names = [t.split(":", 1)[0].strip().lower() for t in r["trailers"]]
        leaked = [n for n, _ in RESERVED if n in names]
        c.ok(not leaked, f"{proto}: no reserved, framing or routing name arrives as a trailer", [], r["trailers"])
        forged = [t for t in r["trailers"] if any(v in t for _, v in RESERVED)]
        c.ok(not forged, f"{proto}: no forged value arrives in the trailer section", [], forged)
        if proto == "HTTP/2":
            c.ok(f"{ORDINARY[0]}: {ORDINARY[1]}" in r["trailers"], f"{proto}: an ordinary trailer still arrives",
                 ORDINARY, r["trailers"])
    albd.check_clean_exit(c)


run("request_trailers_are_filtered", body)
