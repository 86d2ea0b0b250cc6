#!/usr/bin/env python3
"""A burst of new TLS connections does not hold up a request on an
established connection: when one loop iteration reads both, albd answers
the request first and runs the new connections' handshakes after it
(proxy/conn.c px_conn_run_handshakes), at most about a millisecond of them
before it looks at its sockets again. A handshake costs hundreds of
microseconds of CPU (key exchange, signature); a request on a connection
that is already up costs a few.

albd (one worker) is stopped with SIGSTOP while N new connections send
their ClientHello and then an established connection sends its request,
so that albd's next poll returns them all, the ClientHellos first; then it
continues. The kernel stamps each segment as albd writes it (receive
timestamps, SO_TIMESTAMPNS: loopback delivers in the writer's system
call), so the order of albd's writes is read without depending on this
test's own scheduling: the response must come before every ServerHello.
Run in poll order, as before, it came after all of them. The test reads
every ServerHello before it answers any, so nothing but albd's own loop
moves the queued handshakes on: all must be answered within a second
(a loop that blocked with handshakes queued left them until albd's
handshake timeout closed their connections). Then every handshake of the
burst must complete."""
import os
import signal
import socket
import ssl
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (TestFailure, certificate, doc, free_ports, instance, log,  # noqa: E402
                          proc_status, run, scaled)

N = 16
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux, every architecture but a few
REQUEST = b"GET / HTTP/1.1\r\nHost: albd.test\r\n\r\n"
FIXED = {"fixedResponse": {"code": 200, "contentType": "text/plain", "content": "established"}}


def stamped(sock):
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    return sock


def recv_stamped(sock):
    """The next bytes and the time the kernel received their first segment."""
    data, anc, _, _ = sock.recvmsg(65536, socket.CMSG_SPACE(16))
    if not data:
        raise TestFailure("albd closed a connection without answering it")
    for level, kind, value in anc:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            sec, nsec = struct.unpack("qq", value[:16])
            return data, sec * 1_000_000_000 + nsec
    raise TestFailure("no receive timestamp on a segment (SO_TIMESTAMPNS)")


def read_response(sock, first):
    """Reads the rest of a small HTTP/1.1 response whose first bytes are first."""
    buf = first
    while b"\r\n\r\n" not in buf:
        d = sock.recv(65536)
        if not d:
            break
        buf += d
    head, _, body = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(body) < length:
        d = sock.recv(65536)
        if not d:
            break
        body += d
    return head.split(b"\r\n", 1)[0], body


class Handshake:
    """A TLS client on a raw socket (ssl.MemoryBIO): its ClientHello is
    produced up front, sent when the test says."""

    def __init__(self, port):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.inc, self.out, server_hostname="albd.test")
        self.step()
        self.hello = self.out.read()
        self.sock = stamped(socket.create_connection(("127.0.0.1", port), timeout=scaled(20)))

    def step(self):
        try:
            self.tls.do_handshake()
            return True
        except ssl.SSLWantReadError:
            return False

    def finish(self, first):
        """Feeds albd's flight (first: its first bytes) until the handshake
        completes on this side; True when it did."""
        self.inc.write(first)
        while not self.step():
            self.sock.sendall(self.out.read())  # TLS 1.2: the client's flight first
            d = self.sock.recv(65536)
            if not d:
                return False
            self.inc.write(d)
        self.sock.sendall(self.out.read())
        return True


def stopped(pid):
    return proc_status(pid).get("State", "").startswith("T")


def body(env):
    c = env.check
    certs = env.certs()
    p_plain, p_tls = free_ports(2)
    env.write_manifests(
        instance(),
        certificate("cert", certs.rsa),
        doc("Listener", "plain", {"instance": "test", "protocol": "HTTP", "port": p_plain,
                                  "defaultAction": FIXED}),
        doc("Listener", "tls", {"instance": "test", "protocol": "HTTPS", "port": p_tls, "http2": False,
                                "tls": {"certificate": "cert"}, "defaultAction": FIXED}))
    albd = env.start_albd(ports=(p_plain, p_tls), workers=1)

    est = stamped(socket.create_connection(("127.0.0.1", p_plain), timeout=scaled(20)))
    est.sendall(REQUEST)
    status, text = read_response(est, b"")
    c.eq((status, text), (b"HTTP/1.1 200 OK", b"established"), "the established connection's first request")

    burst = [Handshake(p_tls) for _ in range(N)]
    time.sleep(scaled(0.5))  # albd accepts them and waits for their bytes
    os.kill(albd.pid, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + scaled(5)
        while not stopped(albd.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        c.require(stopped(albd.pid), "albd stopped")
        for h in burst:
            h.sock.sendall(h.hello)
        est.sendall(REQUEST)
    finally:
        os.kill(albd.pid, signal.SIGCONT)

    first, t_resp = recv_stamped(est)
    status, text = read_response(est, first)
    c.eq((status, text), (b"HTTP/1.1 200 OK", b"established"), "the request sent after the burst is answered")
    # Every ServerHello before any client answers: no new input wakes albd
    # meanwhile, so the handshakes left after one iteration's budget must
    # run without it (the loop must not block while some wait).
    firsts, stamps = [], []
    for h in burst:
        first, t = recv_stamped(h.sock)
        firsts.append(first)
        stamps.append(t)
    span = (max(stamps) - t_resp) / 1e9
    c.ok(span < scaled(1.0), "the whole burst was answered without further input", f"< {scaled(1.0)} s",
         f"{span:.3f} s")
    done = sum(h.finish(first) for h, first in zip(burst, firsts))
    before = sum(1 for t in stamps if t_resp < t)
    c.ok(before == N, f"the response left before each of the {N} ServerHellos", f"{N} after it",
         f"{before} after it; ServerHellos at "
         f"{', '.join(f'{(t - t_resp) / 1e6:+.2f}' for t in sorted(stamps))} ms from the response")
    c.eq(done, N, f"all {N} handshakes of the burst complete")
    log("ServerHellos at " + ", ".join(f"{(t - t_resp) / 1e6:+.2f}" for t in sorted(stamps)) + " ms from the response")
    for h in burst:
        h.sock.close()
    est.close()


run("serves_established_connections_before_new_handshakes", body)
