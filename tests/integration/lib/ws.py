"""RFC 6455 WebSocket for albd's integration tests (python3 stdlib only):
the opening handshake, framing with masking, a client (WSClient) over any
connected socket (plain or TLS), and an echo backend (WSBackend) in threads.

WSBackend, per connection: records the request head in .requests, answers
101 to a WebSocket upgrade and at once (in the same write) sends a text
frame "hello <path>"; then echoes text and binary messages, answers ping
with pong and close with close (and then closes TCP, as a server should).
Special text messages:
  "halfclose"  answer "bye", shut down its write side, keep reading: every
               later message is recorded in .after_halfclose until EOF.
A request for a path containing "status=C" gets a plain HTTP response C.
"""

import base64
import hashlib
import os
import socket
import struct
import threading
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


def accept_key(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def _xor(data, key):
    n = len(data)
    if not n:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def encode_frame(op, payload=b"", mask=False, fin=True):
    b0 = (0x80 if fin else 0) | op
    m = 0x80 if mask else 0
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", b0, m | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, m | 126, n)
    else:
        head = struct.pack("!BBQ", b0, m | 127, n)
    if mask:
        key = os.urandom(4)
        return head + key + _xor(payload, key)
    return head + payload


class Closed(Exception):
    """The peer closed the TCP connection (EOF) where a frame was expected."""


def _read_exact(f, n):
    out = bytearray()
    while len(out) < n:
        b = f.read(n - len(out))
        if not b:
            raise Closed(f"EOF after {len(out)} of {n} bytes")
        out += b
    return bytes(out)


def read_frame(f):
    """(fin, opcode, payload, masked) of the next frame from a binary file."""
    b0, b1 = _read_exact(f, 2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", _read_exact(f, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", _read_exact(f, 8))[0]
    masked = bool(b1 & 0x80)
    key = _read_exact(f, 4) if masked else None
    payload = _read_exact(f, n)
    if masked:
        payload = _xor(payload, key)
    return bool(b0 & 0x80), b0 & 0x0F, payload, masked


def read_message(f):
    """(opcode, payload, masked) of the next message (fragments joined)."""
    fin, op, payload, masked = read_frame(f)
    data = bytearray(payload)
    while not fin and op < 8:
        fin, _, more, _ = read_frame(f)
        data += more
    return op, bytes(data), masked


def read_head(f):
    """(status line or request line, [(name, value)]) of an HTTP/1.1 head."""
    first = f.readline(65537).decode("latin-1").rstrip("\r\n")
    if not first:
        raise Closed("EOF before an HTTP head")
    headers = []
    while True:
        line = f.readline(65537)
        if not line:
            raise Closed("EOF in an HTTP head")
        if line in (b"\r\n", b"\n"):
            return first, headers
        k, _, v = line.decode("latin-1").partition(":")
        headers.append((k.strip(), v.strip()))


def hval(headers, name):
    return [v for k, v in headers if k.lower() == name.lower()]


class WSClient:
    """A WebSocket client over a connected socket. After the constructor,
    .status is the HTTP status (101 on success) and .headers the response
    headers; .accept_ok tells whether Sec-WebSocket-Accept matched."""

    def __init__(self, sock, host, path="/"):
        self.sock = sock
        self.key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {self.key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        sock.sendall(req.encode())
        self.f = sock.makefile("rb")
        line, self.headers = read_head(self.f)
        self.status = int(line.split(" ", 2)[1])
        self.accept_ok = hval(self.headers, "Sec-WebSocket-Accept") == [accept_key(self.key)]

    def send(self, payload, op=None):
        if op is None:
            op = OP_TEXT if isinstance(payload, str) else OP_BINARY
        if isinstance(payload, str):
            payload = payload.encode()
        self.sock.sendall(encode_frame(op, payload, mask=True))

    def recv(self):
        """(opcode, payload bytes) of the next message; raises Closed on EOF."""
        op, payload, _ = read_message(self.f)
        return op, payload

    def close(self, code=1000):
        """Close handshake: send close(code), wait for the peer's close.
        Returns the code the peer echoed (None if it sent none)."""
        self.send(struct.pack("!H", code), OP_CLOSE)
        while True:
            op, payload = self.recv()
            if op == OP_CLOSE:
                return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None

    def eof(self, timeout):
        """True if the peer closes the TCP connection within timeout (any
        bytes before that are discarded)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.sock.settimeout(max(0.01, end - time.monotonic()))
            try:
                b = self.f.read1(65536)
            except (socket.timeout, TimeoutError):
                return False
            except OSError:
                return True
            if not b:
                return True
        return False

    def shutdown_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    def close_socket(self):
        try:
            self.f.close()
        finally:
            self.sock.close()


class WSBackend:
    """A WebSocket echo backend on 127.0.0.1:<port> (see the module doc)."""

    def __init__(self, name="ws"):
        self.name = name
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.addr = ("127.0.0.1", self.port)
        self.lock = threading.Lock()
        self.requests = []
        self.after_halfclose = []
        self.unmasked = 0  # client frames that arrived unmasked (must stay 0)
        self.closed_conns = 0
        self._stop = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self._stop:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        s.settimeout(60)
        f = s.makefile("rb")
        try:
            line, headers = read_head(f)
            path = line.split(" ")[1] if " " in line else ""
            with self.lock:
                self.requests.append({"line": line, "path": path, "headers": headers})
            if "status=" in path:
                code = int(path.split("status=")[1][:3])
                body = f"no upgrade here ({code})\n".encode()
                s.sendall(f"HTTP/1.1 {code} Nope\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
                          f"Connection: close\r\n\r\n".encode() + body)
                return
            key = (hval(headers, "Sec-WebSocket-Key") or [""])[0]
            if "websocket" not in ",".join(hval(headers, "Upgrade")).lower() or not key:
                body = b"not a websocket request\n"
                s.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                          % (len(body), body))
                return
            s.sendall(f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n".encode()
                      + encode_frame(OP_TEXT, f"hello {path}".encode()))
            half = False
            while True:
                try:
                    op, payload, masked = read_message(f)
                except Closed:
                    return
                if not masked:
                    with self.lock:
                        self.unmasked += 1
                if half:
                    with self.lock:
                        self.after_halfclose.append(payload)
                    continue
                if op == OP_CLOSE:
                    s.sendall(encode_frame(OP_CLOSE, payload[:2]))
                    return  # the server closes TCP first
                if op == OP_PING:
                    s.sendall(encode_frame(OP_PONG, payload))
                elif op in (OP_TEXT, OP_BINARY):
                    if op == OP_TEXT and payload == b"halfclose":
                        s.sendall(encode_frame(OP_TEXT, b"bye"))
                        s.shutdown(socket.SHUT_WR)
                        half = True
                        continue
                    s.sendall(encode_frame(op, payload))
        except (OSError, Closed, ValueError):
            return
        finally:
            with self.lock:
                self.closed_conns += 1
            try:
                f.close()
                s.close()
            except OSError:
                pass

    def stop(self):
        self._stop = True
        try:
            self.lsock.close()
        except OSError:
            pass
