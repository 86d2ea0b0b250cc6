#!/usr/bin/env python3
"""A connection albd closes after a response ("Connection: close", HTTP/1.0)
delivers the whole response, then a TLS close_notify, then the FIN; never a
reset that could destroy the response's tail at the client: not when the
client reads slowly (the response still leaving when albd decides to close),
not when the client half-closes right after its request, not when it sent
more requests behind the one albd answers last (albd reads and discards
them until the client closes too), not when the client's FIN arrives while
albd still holds part of the answer (a client whose small receive window
keeps the rest of the answer inside albd)."""
import os
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (certificate, free_ports, hashlib, http_listener, https_listener,  # noqa: E402
                          instance, pattern_sha256, read_response, run, scaled, server_group)

BIG = 2_000_000
# Fits albd's output queue (PX_OUTQ_HIGH, 256 KiB) whole, so albd has the
# entire answer and has decided to close while part of it is still queued
# inside albd: for a client that reads nothing through a small window and
# small segments (small_window_socket), the kernel takes ~100 KB of it
# (160 KB seen on a machine busy with the sanitizer build's tests).
QUEUED = 240_000
SMALL_RCVBUF = 4096


def recv_by(s, end):
    """One recv before the monotonic deadline end: (bytes, None), or
    (None, how) with how 'timeout', 'eof without close_notify' or 'reset'."""
    left = end - time.monotonic()
    if left <= 0:
        return None, "timeout"
    s.settimeout(left)
    try:
        return s.recv(65536), None
    except (socket.timeout, TimeoutError):
        return None, "timeout"
    except ssl.SSLEOFError:
        return None, "eof without close_notify"
    except (ConnectionResetError, BrokenPipeError):
        return None, "reset"


def read_all(s, timeout):
    """Reads a socket until the peer closes: (bytes, how) where how is
    'close_notify' (TLS) or 'eof' (plain) for a clean end, or as recv_by."""
    clean = "close_notify" if isinstance(s, ssl.SSLSocket) else "eof"
    data = bytearray()
    end = time.monotonic() + timeout
    while True:
        b, how = recv_by(s, end)
        if how:
            return bytes(data), how
        if not b:
            return bytes(data), clean
        data += b


def split_response(raw):
    """(status, headers dict lower-case, body) of one HTTP/1.x response with
    a Content-Length or read to the end."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1]) if lines and " " in lines[0] else 0
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return status, hdrs, body


def answer(got, how):
    """(status, body length, body sha256, how it ended) of a response read
    to the end."""
    st, _, b = split_response(got)
    return st, len(b), hashlib.sha256(b).hexdigest(), how


def kernel_held(raw, server_port):
    """Bytes of the answer the kernel holds between albd and the client:
    what albd's socket has not had acknowledged (its send queue) plus what
    the client's socket has not read (its receive queue), from
    /proc/net/tcp (loopback, IPv4)."""
    def hexaddr(addr):
        ip, port = addr
        return "%08X:%04X" % (int.from_bytes(socket.inet_aton(ip), "little"), port)
    me = hexaddr(raw.getsockname())
    albd_side = hexaddr(("127.0.0.1", server_port))
    held = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            col = line.split()
            tx, rx = (int(v, 16) for v in col[4].split(":"))
            if col[1] == me:
                held += rx
            elif col[1] == albd_side and col[2] == me:
                held += tx
    return held


def small_window_socket(port, timeout):
    """A client socket whose receive buffer (so its TCP window) is small, and
    whose segments are: the kernel sizes albd's send buffer from the
    segment size (on loopback ~64 KiB, which lets albd's socket take 1 MB
    and more of answer), so with 536-byte segments it takes only tens of
    KiB and the rest of an answer stays in albd."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_RCVBUF)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
    raw.settimeout(timeout)
    raw.connect(("127.0.0.1", port))
    return raw


def tls_half_close(ctx, host, port, request, timeout, raw=None, before_fin=None):
    """TLS over a plain socket (memory BIOs): sends request, calls
    before_fin(raw) if given, then sends a TCP FIN without close_notify (a
    client that is done sending), then reads everything. Returns (bytes,
    how)."""
    if raw is None:
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=host)
    data = bytearray()
    try:
        def pump_out():
            b = out.read()
            if b:
                raw.sendall(b)

        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                pump_out()
                b = raw.recv(65536)
                if not b:
                    return b"", "eof during the handshake"
                inc.write(b)
        pump_out()
        obj.write(request)
        pump_out()
        if before_fin:
            before_fin(raw)
        raw.shutdown(socket.SHUT_WR)
        end = time.monotonic() + timeout
        while True:
            try:
                b = obj.read(65536)
                if not b:
                    return bytes(data), "close_notify"
                data += b
                continue
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLZeroReturnError:
                return bytes(data), "close_notify"
            b, how = recv_by(raw, end)
            if how:
                return bytes(data), how
            if not b:
                return bytes(data), "eof without close_notify"
            inc.write(b)
    finally:
        raw.close()


def body(env):
    c = env.check
    certs = env.certs()
    be = env.backend("a")
    tls_port, plain_port = free_ports(2)
    env.write_manifests(instance(), certificate("rsa", certs.rsa), server_group("web", [be.addr]),
                        https_listener("web", tls_port, "rsa", "web"),
                        http_listener("plain", plain_port, "web"))
    albd = env.start_albd(ports=(tls_port, plain_port))
    host = env.host
    ctx = env.tls_context()
    want = (BIG, pattern_sha256(BIG))

    def big_request(port, extra=""):
        return (f"GET /stream?bytes={BIG} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Connection: close\r\n{extra}\r\n").encode()

    # 1. A slow reader: the answer leaves while the client reads nothing.
    raw = socket.create_connection(("127.0.0.1", tls_port), timeout=scaled(10))
    s = ctx.wrap_socket(raw, server_hostname=host, suppress_ragged_eofs=False)
    try:
        s.sendall(big_request(tls_port))
        time.sleep(0.5)
        got, how = read_all(s, scaled(20))
    finally:
        s.close()
    st, hdrs, b = split_response(got)
    c.eq((st, hdrs.get("connection")), (200, "close"), "a Connection: close request is answered with close")
    c.eq((len(b), hashlib.sha256(b).hexdigest()), want, "a slow reader gets the whole response")
    c.eq(how, "close_notify", "the response ends with a TLS close_notify, then EOF")

    # 2. A small answer: head, body and close_notify, then the FIN.
    raw = socket.create_connection(("127.0.0.1", tls_port), timeout=scaled(10))
    s = ctx.wrap_socket(raw, server_hostname=host, suppress_ragged_eofs=False)
    f = s.makefile("rb")
    try:
        s.sendall(f"GET /small HTTP/1.0\r\nHost: {host}:{tls_port}\r\n\r\n".encode())
        ver, st, hh, b, framing = read_response(f)
        rest, how = read_all(s, scaled(10))
    finally:
        f.close()
        s.close()
    c.eq((st, rest, how), (200, b"", "close_notify"), "an HTTP/1.0 answer ends with close_notify and EOF")

    # 3. The client half-closes right after its request (plain and TLS): the
    # answer still comes whole, then the end of the connection.
    raw = socket.create_connection(("127.0.0.1", plain_port), timeout=scaled(10))
    try:
        raw.sendall(big_request(plain_port))
        raw.shutdown(socket.SHUT_WR)
        time.sleep(0.3)
        got, how = read_all(raw, scaled(20))
    finally:
        raw.close()
    c.eq(answer(got, how), (200,) + want + ("eof",),
         "a plain client that half-closed gets the whole response, then EOF")

    got, how = tls_half_close(ctx, host, tls_port, big_request(tls_port), scaled(20))
    c.eq(answer(got, how), (200,) + want + ("close_notify",),
         "a TLS client that half-closed gets the whole response, then close_notify")

    # 4. The client's FIN arrives while albd still holds most of an answer
    # it has decided to end the connection with: albd stops reading, sends
    # the rest as the client makes room, then closes (plain and TLS).
    queued = (QUEUED, pattern_sha256(QUEUED))
    held = {}

    def request_queued(port):
        return (f"GET /stream?bytes={QUEUED} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Connection: close\r\n\r\n").encode()

    def wait_then_measure(which, port):
        def before_fin(raw):
            time.sleep(scaled(0.5))  # the backend's whole answer reaches albd
            held[which] = kernel_held(raw, port)
        return before_fin

    raw = small_window_socket(plain_port, scaled(10))
    try:
        raw.sendall(request_queued(plain_port))
        wait_then_measure("plain", plain_port)(raw)
        raw.shutdown(socket.SHUT_WR)
        got, how = read_all(raw, scaled(20))
    finally:
        raw.close()
    c.eq(answer(got, how), (200,) + queued + ("eof",),
         "a plain client whose FIN comes while albd holds the answer gets it whole, then EOF")

    got, how = tls_half_close(ctx, host, tls_port, request_queued(tls_port), scaled(20),
                              raw=small_window_socket(tls_port, scaled(10)),
                              before_fin=wait_then_measure("tls", tls_port))
    c.eq(answer(got, how), (200,) + queued + ("close_notify",),
         "a TLS client whose FIN comes while albd holds the answer gets it whole, then close_notify")
    c.ok(len(held) == 2 and all(0 < v < QUEUED for v in held.values()),
         "at the client's FIN albd itself still held part of the answer (the kernel had less)",
         f"the kernel holding 1 to {QUEUED - 1} bytes, plain and tls", held)

    # 5. More requests behind the last one albd answers: they are read and
    # discarded, so closing does not reset the connection under the answer.
    before = be.count()
    raw = socket.create_connection(("127.0.0.1", tls_port), timeout=scaled(10))
    s = ctx.wrap_socket(raw, server_hostname=host, suppress_ragged_eofs=False)
    try:
        more = b"".join(f"GET /more{i} HTTP/1.1\r\nHost: {host}:{tls_port}\r\n\r\n".encode()
                        for i in range(200))
        s.sendall(big_request(tls_port) + more)
        time.sleep(0.5)
        got, how = read_all(s, scaled(20))
    finally:
        s.close()
    c.eq(answer(got, how), (200,) + want + ("close_notify",),
         "requests behind a Connection: close one do not cut its answer")
    c.eq(be.count(), before + 1, "only the request before the close reached the backend")

    # 6. Bytes that arrive after albd answered and half-closed are read and
    # discarded too (its linger), not met with a reset that could drop the
    # answer still unread at the client (a reset on loopback shows as an
    # error after the data).
    raw = socket.create_connection(("127.0.0.1", plain_port), timeout=scaled(10))
    try:
        raw.sendall(f"GET /small HTTP/1.1\r\nHost: {host}:{plain_port}\r\nConnection: close\r\n\r\n"
                    .encode())
        time.sleep(0.5)
        raw.sendall(f"GET /late HTTP/1.1\r\nHost: {host}:{plain_port}\r\n\r\n".encode() * 100)
        time.sleep(0.2)
        try:
            raw.shutdown(socket.SHUT_WR)
            shut = "half-closed"
        except OSError as ex:  # ENOTCONN: the connection was reset
            shut = repr(ex)
        got, how = read_all(raw, scaled(10))
    finally:
        raw.close()
    st, hdrs, b = split_response(got)
    c.eq((st, how, shut), (200, "eof", "half-closed"), "bytes sent after the answer do not reset the connection")

    # 7. The client's address still reaches the backend (taken from accept).
    st, _, b = env.https("GET", tls_port, "/who")
    fwd = [v for k, v in be.requests[-1]["headers"] if k.lower() == "x-forwarded-for"]
    c.eq((st, fwd), (200, ["127.0.0.1"]), "X-Forwarded-For carries the client's address")

    albd.check_clean_exit(c)


run("closes_connections_gracefully", body)
