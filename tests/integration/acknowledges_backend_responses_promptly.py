#!/usr/bin/env python3
"""A backend whose send buffer is smaller than its response is not held up
by albd's delayed ACKs, over plain HTTP and over TLS.

On a pooled backend connection (requests one way, responses the other)
Linux acknowledges in "pingpong" mode: an ACK waits for data to ride on, or
for the delayed-ACK timer (40 ms at the least). Over loopback one segment
is up to 64 KiB, so nothing else forces the ACK, and a backend that has
filled its send buffer waits for it: without albd's prompt ACK
(proxy/upstream.c ack_now) each 1 MiB response below took ~16 such waits,
0.7 s and more, where it takes milliseconds with it.

The backends set SO_SNDBUF to 8 KiB and answer every request with 1 MiB
on a keep-alive connection; one client connection asks six times. The
check is on the fastest of the five responses that come over the reused
backend connection. Plain: each response waited ~16 times (0.6 s) without
the prompt ACK, 1-4 ms with it; bound 0.2 s. TLS (the backend writes 16
KiB records, so the kernel's own every-second-segment ACK covers most of
the response): it waited once per response (45-50 ms), 5-10 ms with it;
bound 30 ms, below the 40 ms the timer waits at the least. Not scaled by
ALBD_SLOW: the timer guarded against is the kernel's fixed minimum, and
the fastest of five does not depend on a loaded machine's worst moment."""
import os
import socket
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (doc, free_ports, http_listener, instance, run, scaled,  # noqa: E402
                          server_group)

SIZE = 1 << 20


class SmallSendBuffer:
    """Answers every request on a connection with SIZE bytes, keep-alive,
    from a socket whose send buffer is 8 KiB; counts requests per
    connection."""

    def __init__(self, ctx=None):
        self.ctx = ctx
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.addr = ("127.0.0.1", self.ls.getsockname()[1])
        self.lock = threading.Lock()
        self.per_conn = []
        self.body = b"b" * SIZE
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        with self.lock:
            idx = len(self.per_conn)
            self.per_conn.append(0)
        try:
            if self.ctx:
                c = self.ctx.wrap_socket(c, server_side=True)
            buf = b""
            while True:
                while b"\r\n\r\n" not in buf:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                buf = buf.split(b"\r\n\r\n", 1)[1]
                with self.lock:
                    self.per_conn[idx] += 1
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % SIZE + self.body)
        except (OSError, ssl.SSLError):
            pass
        finally:
            c.close()

    def counts(self):
        with self.lock:
            return list(self.per_conn)

    def stop(self):
        self.ls.close()


def fetch_six(port):
    """Six GETs on one client connection: each one's time and body size."""
    out = []
    s = socket.create_connection(("127.0.0.1", port), timeout=scaled(20))
    f = s.makefile("rb")
    try:
        for _ in range(6):
            t0 = time.monotonic()
            s.sendall(b"GET /big HTTP/1.1\r\nHost: albd.test\r\n\r\n")
            length = None
            while True:
                line = f.readline()
                if line in (b"\r\n", b""):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            got = len(f.read(length)) if length else 0
            out.append((time.monotonic() - t0, got))
    finally:
        f.close()
        s.close()
    return out


def body(env):
    c = env.check
    certs = env.certs()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs.rsa.cert, certs.rsa.key)
    plain, tls = SmallSendBuffer(), SmallSendBuffer(ctx)
    p_plain, p_tls = free_ports(2)
    env.write_manifests(
        instance(),
        doc("Certificate", "test-ca", {"type": "CA", "source": {"files": {"certificate": certs.ca.cert}}}),
        server_group("plain", [plain.addr]),
        server_group("tls", [tls.addr], protocol="HTTPS", tls={"caCertificates": ["test-ca"]}),
        http_listener("to-plain", p_plain, "plain"),
        http_listener("to-tls", p_tls, "tls"))
    env.start_albd(ports=(p_plain, p_tls), workers=1)
    try:
        for name, port, be, bound in (("plain", p_plain, plain, 0.2), ("TLS", p_tls, tls, 0.03)):
            res = fetch_six(port)
            c.eq([g for _, g in res], [SIZE] * 6, f"{name}: six complete 1 MiB responses")
            c.eq(be.counts(), [6], f"{name}: all six over one backend connection (the pooled, pingpong case)")
            fastest = min(t for t, _ in res[1:])
            c.ok(fastest < bound, f"{name}: the fastest response over the reused connection took < {bound} s",
                 f"< {bound}", ", ".join(f"{t:.3f}" for t, _ in res))
    finally:
        plain.stop()
        tls.stop()


run("acknowledges_backend_responses_promptly", body)
