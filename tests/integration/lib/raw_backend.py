"""Scripted raw-socket backends and small clients for integration tests that
need a backend to misbehave byte by byte (python3 standard library only).

    be = RawBackend(lambda req: [b"HTTP/1.1 200 OK\\r\\nContent-Length: 5\\r\\n\\r\\nhel", CLOSE])
    ...
    be.stop()

A RawBackend accepts TCP connections (IPv4 or IPv6), reads HTTP/1.x requests
(head, then a Content-Length or chunked body) and answers each with the steps
its script returns for that request:

    bytes            sent as they are
    ("sleep", s)     wait s seconds
    CLOSE            FIN: close the connection (no more requests on it)
    RESET            RST: close with SO_LINGER 0
    HOLD             keep the connection open, read nothing more, until stop()
    DROP             close at once without sending (same as [CLOSE] first)

After steps without CLOSE/RESET/HOLD the connection stays open for the next
request (keep-alive). script(req) gets a Request with .conn (connection
number, from 1), .index (request number on that connection, from 0),
.method, .path, .version, .headers [(name, value)], .body (bytes). The
default script answers 200 with body b"conn=<n> index=<i> path=<path>".

Everything accepted is recorded: .connections (number accepted), .requests
(every Request), .open_connections() (not yet closed by either side).
"""

import os
import socket
import struct
import subprocess
import threading
import time

CLOSE = "close"
RESET = "reset"
HOLD = "hold"
DROP = "drop"


class Request:
    def __init__(self, conn, index, method, path, version, headers, body, raw_head):
        self.conn, self.index = conn, index
        self.method, self.path, self.version = method, path, version
        self.headers, self.body, self.raw_head = headers, body, raw_head

    def header(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def __repr__(self):
        return f"Request(conn={self.conn}, index={self.index}, {self.method} {self.path})"


def response(status=200, body=b"", headers=(), reason=None):
    """A complete HTTP/1.1 response with Content-Length."""
    reason = reason or {200: "OK", 502: "Bad Gateway"}.get(status, "Status")
    head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    return head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body


def default_script(req):
    return [response(200, f"conn={req.conn} index={req.index} path={req.path}".encode())]


class RawBackend:
    def __init__(self, script=None, host="127.0.0.1", port=0):
        self.script = script or default_script
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(128)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.addr = (host, self.port)
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        self.requests = []
        self.connections = 0
        self.peers = []
        self._open = {}
        self._stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    # -- observation -----------------------------------------------------

    def count(self):
        with self.lock:
            return len(self.requests)

    def wait_requests(self, n, timeout):
        end = time.monotonic() + timeout
        with self.lock:
            while len(self.requests) < n:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.arrived.wait(left)
            return True

    def open_connections(self):
        with self.lock:
            return len(self._open)

    def wait_open(self, n, timeout):
        """Wait until exactly n connections are open; True if so."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.open_connections() == n:
                return True
            time.sleep(0.02)
        return self.open_connections() == n

    # -- serving ---------------------------------------------------------

    def _accept_loop(self):
        self.sock.settimeout(0.1)
        while not self._stopping.is_set():
            try:
                s, peer = self.sock.accept()
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return
            with self.lock:
                self.connections += 1
                n = self.connections
                self.peers.append(peer)
                self._open[n] = s
            threading.Thread(target=self._serve, args=(s, n), daemon=True).start()

    def _serve(self, s, n):
        f = s.makefile("rb")
        index = 0
        try:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.settimeout(60)
            while not self._stopping.is_set():
                req = _read_request(f, n, index)
                if req is None:
                    return
                with self.lock:
                    self.requests.append(req)
                    self.arrived.notify_all()
                index += 1
                end = self._play(s, self.script(req))
                if end:
                    return
        except (OSError, ValueError):
            return
        finally:
            with self.lock:
                self._open.pop(n, None)
            try:
                f.close()
                s.close()
            except OSError:
                pass

    def _play(self, s, steps):
        """Runs the steps; True when the connection is finished."""
        for st in steps:
            if isinstance(st, (bytes, bytearray)):
                s.sendall(st)
            elif isinstance(st, tuple) and st[0] == "sleep":
                if self._stopping.wait(st[1]):
                    return True
            elif st in (CLOSE, DROP):
                return True
            elif st == RESET:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return True
            elif st == HOLD:
                self._stopping.wait(120)
                return True
            else:
                raise ValueError(f"unknown step {st!r}")
        return False

    def stop(self):
        self._stopping.set()
        try:
            self.sock.close()
        except OSError:
            pass
        with self.lock:
            socks = list(self._open.values())
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _read_request(f, conn, index):
    line = f.readline(65537)
    if not line:
        return None
    raw = bytearray(line)
    parts = line.decode("latin-1").rstrip("\r\n").split(" ")
    if len(parts) != 3:
        raise ValueError(f"bad request line {line!r}")
    headers = []
    while True:
        h = f.readline(65537)
        if not h:
            return None
        raw += h
        if h in (b"\r\n", b"\n"):
            break
        k, _, v = h.decode("latin-1").partition(":")
        headers.append((k.strip(), v.strip()))
    hmap = {k.lower(): v for k, v in headers}
    body = bytearray()
    if "chunked" in hmap.get("transfer-encoding", "").lower():
        while True:
            size = int(f.readline(1024).split(b";")[0].strip(), 16)
            if size == 0:
                while f.readline(8192) not in (b"\r\n", b"\n", b""):
                    pass
                break
            body += f.read(size)
            f.readline(8)
    elif "content-length" in hmap:
        body += f.read(int(hmap["content-length"]))
    return Request(conn, index, parts[0], parts[1], parts[2], headers, bytes(body), bytes(raw))


class Unconnectable:
    """A listening port whose connects never complete: backlog 0 and its one
    accept-queue slot taken by a connection nobody accepts, so the kernel
    drops further SYNs (on Linux, whatever tcp_syncookies says) and a
    client's connect hangs until its own timeout. .works tells whether a
    probe connect really hung on this machine."""

    def __init__(self, host="127.0.0.1"):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.addr = (host, self.port)
        self.fillers = []
        for _ in range(2):  # some kernels let backlog 0 queue one more
            f = socket.socket(fam, socket.SOCK_STREAM)
            f.setblocking(False)
            f.connect_ex((host, self.port))
            self.fillers.append(f)
        time.sleep(0.05)
        probe = socket.socket(fam, socket.SOCK_STREAM)
        probe.settimeout(0.5)
        try:
            probe.connect((host, self.port))
            self.works = False
        except (socket.timeout, TimeoutError):
            self.works = True
        except OSError:
            self.works = False
        finally:
            probe.close()

    def close(self):
        for s in self.fillers + [self.sock]:
            try:
                s.close()
            except OSError:
                pass


def metrics(albd):
    """albd's /metrics as {'name{labels}': float}."""
    st, body = albd.admin_get("/metrics")
    out = {}
    if st != 200:
        return out
    for line in body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        k, _, v = line.rpartition(" ")
        try:
            out[k] = float(v)
        except ValueError:
            pass
    return out


def curl_run(env, url, *args, timeout=None, http2=False, addr="127.0.0.1"):
    """curl against albd (our CA, --resolve to loopback). Returns (exit status,
    http_code, body bytes, stderr text, HTTP version "1.1" or "2"). Unlike
    env.curl the exit status tells a clean end (0) from a transfer cut short
    (18, 56, 92, ...)."""
    from albd_harness import scaled
    import urllib.parse
    timeout = timeout or scaled(20)
    u = urllib.parse.urlsplit(url)
    port = u.port or (443 if u.scheme == "https" else 80)
    host = u.hostname
    addr = f"[{addr}]" if ":" in addr else addr
    out = os.path.join(env.dir, f"curl-{threading.get_ident()}.out")
    argv = ["curl", "-sS", "--max-time", str(int(timeout)), "--cacert", env.certs().ca.cert,
            "--resolve", f"{host}:{port}:{addr}", "-o", out, "-w", "%{http_code} %{http_version}",
            "--http2" if http2 else "--http1.1", *args, url]
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout + 10)
    body = b""
    if os.path.exists(out):
        with open(out, "rb") as fh:
            body = fh.read()
        os.unlink(out)
    code, _, version = r.stdout.decode().strip().partition(" ")
    return (r.returncode, int(code) if code.isdigit() else 0, body, r.stderr.decode(errors="replace"),
            version)


def h2_collect(conn, stream, timeout):
    """Frames of one stream from an h2_frames.H2Conn until it ends. Returns
    (how, header block bytes, DATA bytes, RST_STREAM code or None) where how
    is 'end' (END_STREAM seen), 'rst' (RST_STREAM), 'goaway', 'closed' (EOF)
    or 'timeout'."""
    import h2_frames as h2
    head, data = bytearray(), bytearray()
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return "timeout", bytes(head), bytes(data), None
        try:
            f = conn.read_frame(left)
        except (socket.timeout, TimeoutError):
            return "timeout", bytes(head), bytes(data), None
        if f is None:
            return "closed", bytes(head), bytes(data), None
        if f.type == h2.GOAWAY:
            return "goaway", bytes(head), bytes(data), f.goaway()[1]
        if f.stream != stream:
            continue
        if f.type in (h2.HEADERS, h2.CONTINUATION):
            head += f.payload
        elif f.type == h2.DATA:
            data += f.payload
        elif f.type == h2.RST_STREAM:
            return "rst", bytes(head), bytes(data), struct.unpack(">I", f.payload[:4])[0]
        if f.type in (h2.HEADERS, h2.DATA) and f.flags & h2.END_STREAM:
            return "end", bytes(head), bytes(data), None
