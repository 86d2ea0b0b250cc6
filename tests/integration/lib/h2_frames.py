"""A raw HTTP/2 client over TLS for tests that must misbehave or watch frames
(python3 standard library only): frames are built with struct.pack, header
blocks use HPACK literals without indexing or Huffman coding. Responses are
not HPACK-decoded; `status_of` recognises the static-table statuses
(200, 204, 206, 304, 400, 404, 500), which is what nghttp2 sends for them.

    conn = H2Conn(env.tls_socket_h2(port))     # or H2Conn.connect(env, port)
    conn.request(1, "GET", env.host, "/x")
    for f in conn.frames(timeout): ...          # Frame(type, flags, stream, payload)
"""

import socket
import ssl
import struct
import time

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, REFUSED_STREAM, CANCEL, ENHANCE_YOUR_CALM = 0x0, 0x1, 0x2, 0x7, 0x8, 0xb
SETTINGS_MAX_CONCURRENT_STREAMS, SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_HEADER_LIST_SIZE = 3, 4, 6
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_STATIC_STATUS = {0x88: 200, 0x89: 204, 0x8a: 206, 0x8b: 304, 0x8c: 400, 0x8d: 404, 0x8e: 500}


class Frame:
    def __init__(self, type_, flags, stream, payload):
        self.type, self.flags, self.stream, self.payload = type_, flags, stream, payload

    def goaway(self):
        """(last_stream_id, error_code) of a GOAWAY frame."""
        last, code = struct.unpack(">II", self.payload[:8])
        return last & 0x7FFFFFFF, code

    def settings(self):
        return dict(struct.unpack(">HI", self.payload[i:i + 6]) for i in range(0, len(self.payload), 6))

    def __repr__(self):
        return f"Frame(type={self.type}, flags={self.flags:#x}, stream={self.stream}, len={len(self.payload)})"


def frame(type_, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", type_, flags, stream & 0x7FFFFFFF) + payload


def _hpack_int(v, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if v < limit:
        return bytes([first | v])
    out = [first | limit]
    v -= limit
    while v >= 128:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def hpack(fields):
    """A header block of literal fields without indexing, no Huffman."""
    out = bytearray()
    for name, value in fields:
        n, v = name.encode(), value.encode() if isinstance(value, str) else value
        out += b"\x00" + _hpack_int(len(n), 7) + n + _hpack_int(len(v), 7) + v
    return bytes(out)


def status_of(header_block):
    """The :status of a response header block when nghttp2 sent it indexed
    (after any dynamic table size update, RFC 7541 6.3: albd, which indexes
    no response field, sends one when a client's SETTINGS_HEADER_TABLE_SIZE
    changes the table's limit)."""
    i = 0
    while i < len(header_block) and header_block[i] & 0xE0 == 0x20:
        i += 1
        if header_block[i - 1] & 0x1F == 0x1F:  # multi-byte integer
            while i < len(header_block) and header_block[i] & 0x80:
                i += 1
            i += 1
    return _STATIC_STATUS.get(header_block[i]) if i < len(header_block) else None


def tls_socket(env, port, timeout=10.0):
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    ctx = ssl.create_default_context(cafile=env.certs().ca.cert)
    ctx.set_alpn_protocols(["h2"])
    try:
        s = ctx.wrap_socket(raw, server_hostname=env.host)
    except Exception:
        raw.close()
        raise
    return s


class H2Conn:
    """One client connection: sends the preface and SETTINGS at once."""

    def __init__(self, sock, settings=None, window=None):
        self.sock = sock
        self.buf = bytearray()
        self.closed = False
        payload = b"".join(struct.pack(">HI", k, v) for k, v in (settings or {}).items())
        out = PREFACE + frame(SETTINGS, 0, 0, payload)
        if window:
            out += frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", window))
        sock.sendall(out)

    @classmethod
    def connect(cls, env, port, **kw):
        return cls(tls_socket(env, port), **kw)

    def alpn(self):
        return self.sock.selected_alpn_protocol()

    def send(self, data):
        self.sock.sendall(data)

    def request(self, stream, method, authority, path, extra=(), end_stream=True):
        fields = [(":method", method), (":scheme", "https"), (":authority", authority), (":path", path)]
        self.send(frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), stream,
                        hpack(fields + list(extra))))

    def read_frame(self, timeout):
        """The next frame, or None on EOF / reset; raises socket.timeout."""
        end = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 9:
                n = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) >= 9 + n:
                    t, fl, sid = self.buf[3], self.buf[4], int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
                    payload = bytes(self.buf[9:9 + n])
                    del self.buf[:9 + n]
                    if t == SETTINGS and not fl & ACK:
                        self.send(frame(SETTINGS, ACK, 0))
                    if t == PING and not fl & ACK:
                        self.send(frame(PING, ACK, 0, payload))
                    return Frame(t, fl, sid, payload)
            left = end - time.monotonic()
            if left <= 0:
                raise socket.timeout("no frame")
            self.sock.settimeout(left)
            try:
                b = self.sock.recv(65536)
            except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError, BrokenPipeError):
                b = b""
            if not b:
                self.closed = True
                return None
            self.buf += b

    def frames(self, timeout):
        """Frames until EOF or until timeout passes (no exception)."""
        end = time.monotonic() + timeout
        while True:
            try:
                f = self.read_frame(max(0.0, end - time.monotonic()))
            except (socket.timeout, TimeoutError):
                return
            if f is None:
                return
            yield f

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
