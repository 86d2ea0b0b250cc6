"""Shared harness for albd's integration tests (python3 standard library only).

A test does:

    import os, sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
    from albd_harness import *

    with Env("my_behaviour") as env:
        certs = env.certs()                       # CA + RSA + ECDSA server certificates
        be = env.backend("a")                     # echo backend in a thread
        env.write_manifests(instance(), certificate("rsa", certs.rsa),
                            server_group("web", [be.addr]),
                            https_listener("web", port, "rsa", "web"))
        albd = env.start_albd()                   # run + wait for /readyz
        status, headers, body = env.https("GET", port, "/x")
        env.check.eq(status, 200, "GET /x")
    sys.exit(env.check.finish())

Everything is bounded in time, loopback-only, and every process started here
is killed by its PID on failure (try/finally in Env, plus atexit).

Environment (set by ctest): ALBD (binary), ALBD_SOURCE_DIR (repo root),
ALBD_SANITIZE (ON under ASan+UBSan: timeouts and load sizes scale up/down).
"""

import atexit
import hashlib
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

SANITIZE = os.environ.get("ALBD_SANITIZE", "OFF").upper() in ("ON", "1", "TRUE", "YES")


def _slowness():
    v = os.environ.get("ALBD_SLOW", "").strip()
    if v:
        try:
            f = float(v)
            if f >= 1.0:
                return f
        except ValueError:
            pass
        sys.stderr.write(f"albd_harness: ALBD_SLOW={v!r} is not a number >= 1; using the default\n")
    return 3.0 if SANITIZE else 1.0  # everything runs ~3x slower under ASan+UBSan


# How much slower than a quiet machine this run is: every time bound and
# window a test waits for scales by it. ALBD_SLOW (a number >= 1) sets it, for a
# loaded or slow machine; default 3 with ALBD_SANITIZE=ON, else 1.
SLOW = _slowness()
MiB = 1024 * 1024


def scaled(seconds):
    """A time bound scaled by SLOW (ALBD_SLOW, or 3 under the sanitizers)."""
    return seconds * SLOW


def source_dir():
    d = os.environ.get("ALBD_SOURCE_DIR")
    if d:
        return d
    return os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))


def albd_binary():
    b = os.environ.get("ALBD")
    if b:
        return b
    return os.path.join(source_dir(), "build", "albd")


# Ports are reserved, never handed out and released: a port free_port() or
# free_ports() returns stays bound (never listening) by this process until it
# exits, so that nothing else on the machine (another test's bind, the
# ephemeral port of someone's connect()) takes it before albd binds it, or
# between albd closing it and binding it again. The reservation has
# SO_REUSEADDR and SO_REUSEPORT: albd's listeners (both options), its admin
# endpoint (libuv: SO_REUSEADDR) and Backend (SO_REUSEADDR) bind the port
# alongside it. A bound socket that does not listen takes no connection: a
# connect() to a reserved port nobody listens on is refused (dead_port()).
# A socket without SO_REUSEADDR cannot bind a reserved port: release_port()
# it first.
_reserved = {}
_reserved_lock = threading.Lock()


def _reserve():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind(("127.0.0.1", 0))  # port 0 never shares a port, options or not
    except OSError:
        s.close()
        raise
    port = s.getsockname()[1]
    with _reserved_lock:
        _reserved[port] = s
    return port


def free_port(kind=socket.SOCK_STREAM):
    """A TCP port on 127.0.0.1 reserved for this test (see above). kind
    SOCK_DGRAM: a UDP port free right now (bound to 0, read, closed)."""
    if kind == socket.SOCK_STREAM:
        return _reserve()
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def free_ports(n):
    """n distinct TCP ports on 127.0.0.1, reserved for this test."""
    return [_reserve() for _ in range(n)]


def dead_port():
    """A port where nothing listens and nothing will: connect() is refused
    (a "dead" backend). It stays reserved, so no other test can start
    listening on it."""
    return _reserve()


def release_port(port):
    """Ends the reservation of port (to bind it without SO_REUSEADDR, e.g. a
    plain listening socket that keeps albd off the port)."""
    with _reserved_lock:
        s = _reserved.pop(port, None)
    if s is not None:
        s.close()


def log(msg):
    print(msg, flush=True)


# --------------------------------------------------------------------------
# Assertions: print what was expected and what was seen; count; never abort
# the test on the first failure unless asked (require()).


class TestFailure(Exception):
    pass


class Check:
    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0

    def ok(self, cond, what, expected=None, seen=None):
        if cond:
            self.passed += 1
            log(f"ok   - {what}")
        else:
            self.failed += 1
            msg = f"FAIL - {what}"
            if expected is not None or seen is not None:
                msg += f"\n         expected: {_short(expected)}\n         seen:     {_short(seen)}"
            log(msg)
        return bool(cond)

    def eq(self, seen, expected, what):
        return self.ok(seen == expected, what, expected, seen)

    def within(self, seen, lo, hi, what):
        return self.ok(seen is not None and lo <= seen <= hi, what, f"between {lo} and {hi}", seen)

    def require(self, cond, what, expected=None, seen=None):
        """Like ok(), but stops the test when it fails (later checks depend on it)."""
        if not self.ok(cond, what, expected, seen):
            raise TestFailure(what)

    def finish(self):
        """Print the summary line; return the process exit status."""
        log(f"{self.name}: {self.passed} passed, {self.failed} failed")
        return 0 if self.failed == 0 and self.passed > 0 else 1


def _short(v, limit=600):
    s = repr(v)
    return s if len(s) <= limit else s[:limit] + f"... ({len(s)} chars)"


# --------------------------------------------------------------------------
# Processes: every child we start is registered here and killed by PID
# (its own process group) at exit if the test forgot or crashed.

_children = []
_children_lock = threading.Lock()


def _load_prctl():
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        f = libc.prctl
        f.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        f.restype = ctypes.c_int
        return f
    except (OSError, AttributeError):
        return None


_prctl = _load_prctl()  # resolved before any fork: the child only calls it
_PR_SET_PDEATHSIG = 1


def die_with_parent():
    """A preexec_fn: the child gets SIGKILL when the thread that started it
    ends, so that a test killed by ctest's timeout (SIGKILL, which runs no
    atexit) leaves no albd behind in its own session. Start children from
    the main thread: the signal comes when the forking thread exits."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != _TEST_PID:  # the test died before the prctl
            os._exit(127)


_TEST_PID = os.getpid()


def _register(proc):
    with _children_lock:
        _children.append(proc)


def _kill_proc(proc):
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # its own group, created by us
    except (ProcessLookupError, PermissionError):
        try:
            proc.kill()
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def _kill_all_children():
    with _children_lock:
        procs = list(_children)
    for p in procs:
        _kill_proc(p)


atexit.register(_kill_all_children)


def _sigterm_exit(signum, frame):
    # ctest's timeout sends SIGTERM/SIGKILL; make SIGTERM run atexit.
    sys.exit(128 + signum)


signal.signal(signal.SIGTERM, _sigterm_exit)


def proc_status(pid):
    """/proc/<pid>/status as a dict of strings."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def proc_mem_kib(pid, field):
    """VmRSS / VmHWM ... of a process, in KiB."""
    v = proc_status(pid).get(field, "0 kB")
    return int(v.split()[0])


# --------------------------------------------------------------------------
# Certificates (openssl CLI).


class CertPair:
    def __init__(self, cert, key):
        self.cert = cert
        self.key = key


class Certs:
    """A self-signed CA and server certificates (RSA and ECDSA) it signed."""

    def __init__(self, directory, names=("albd.test", "localhost"), ip="127.0.0.1"):
        os.makedirs(directory, exist_ok=True)
        self.dir = directory
        self.ca = CertPair(os.path.join(directory, "ca.pem"), os.path.join(directory, "ca.key"))
        san = ",".join([f"DNS:{n}" for n in names] + [f"IP:{ip}"])
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.ca.key,
                "-out", self.ca.cert, "-days", "2", "-subj", "/CN=albd test CA",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self.rsa = self._server("rsa", ["-newkey", "rsa:2048"], names[0], san)
        self.ecdsa = self._server("ecdsa", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
                                  names[0], san)
        for p in (self.ca.key, self.rsa.key, self.ecdsa.key):
            os.chmod(p, 0o600)

    def _server(self, name, keyargs, cn, san):
        pair = CertPair(os.path.join(self.dir, f"{name}.pem"), os.path.join(self.dir, f"{name}.key"))
        openssl("req", "-x509", *keyargs, "-nodes", "-keyout", pair.key, "-out", pair.cert,
                "-days", "2", "-subj", f"/CN={cn}", "-CA", self.ca.cert, "-CAkey", self.ca.key,
                "-addext", f"subjectAltName={san}",
                "-addext", "basicConstraints=critical,CA:FALSE",
                "-addext", "keyUsage=critical,digitalSignature,keyEncipherment",
                "-addext", "extendedKeyUsage=serverAuth")
        return pair

    def issue(self, name, names, ec=False, client=False, cn=None, self_signed=False):
        """Another certificate from our CA (or self-signed: not trusted by
        anyone): a server certificate for DNS names, or with client=True a
        client certificate (CN cn, clientAuth). Returns a CertPair."""
        keyargs = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"] if ec else ["-newkey", "rsa:2048"]
        pair = CertPair(os.path.join(self.dir, f"{name}.pem"), os.path.join(self.dir, f"{name}.key"))
        signer = [] if self_signed else ["-CA", self.ca.cert, "-CAkey", self.ca.key]
        ext = ["-addext", "basicConstraints=critical,CA:FALSE",
               "-addext", "keyUsage=critical,digitalSignature,keyEncipherment",
               "-addext", f"extendedKeyUsage={'clientAuth' if client else 'serverAuth'}"]
        if names:
            ext += ["-addext", "subjectAltName=" + ",".join(f"DNS:{n}" for n in names)]
        openssl("req", "-x509", *keyargs, "-nodes", "-keyout", pair.key, "-out", pair.cert, "-days", "2",
                "-subj", f"/CN={cn or names[0]}", *signer, *ext)
        os.chmod(pair.key, 0o600)
        return pair

    def client_context(self):
        """An ssl context that trusts only our CA and checks the host name."""
        ctx = ssl.create_default_context(cafile=self.ca.cert)
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx


def openssl(*args):
    r = subprocess.run(["openssl", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args[:2])} failed: {r.stderr.decode(errors='replace')}")


def s_client(port, *args, data=b"", timeout=None):
    """openssl s_client to 127.0.0.1:port with args (-servername, -tls1_2,
    -sess_out ...); data goes to its stdin, then EOF. Returns (exit status,
    stdout + stderr as text)."""
    timeout = timeout or scaled(15)
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *args],
                       input=data, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    return r.returncode, r.stdout.decode(errors="replace")


def s_client_ok(out):
    """True when an s_client transcript shows a completed handshake."""
    m = re.search(r"Cipher is (\S+)", out)
    return bool(m) and m.group(1) not in ("(NONE)", "0000")


def self_signed(cert, key, names=("localhost",), ip="127.0.0.1"):
    """One self-signed server (not CA) certificate (key mode 0600)."""
    san = ",".join([f"DNS:{n}" for n in names] + [f"IP:{ip}"])
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
            "-days", "30", "-subj", f"/CN={names[0]}", "-addext", f"subjectAltName={san}",
            "-addext", "basicConstraints=critical,CA:FALSE",
            "-addext", "keyUsage=critical,digitalSignature,keyEncipherment",
            "-addext", "extendedKeyUsage=serverAuth")
    os.chmod(key, 0o600)


# --------------------------------------------------------------------------
# Manifests: Python values -> block-style YAML (so errors have real lines).

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}


def _scalar(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return str(v)
    s = str(v)
    if _PLAIN.match(s) and s.lower() not in _YAML_WORDS:
        return s
    return json.dumps(s)  # a JSON string is a valid YAML double-quoted scalar


def to_yaml(v, indent=0):
    pad = " " * indent
    lines = []
    if isinstance(v, dict):
        if not v:
            return pad + "{}"
        for k, val in v.items():
            if isinstance(val, (dict, list)) and val:
                lines.append(f"{pad}{k}:")
                lines.append(to_yaml(val, indent + 2))
            else:
                lines.append(f"{pad}{k}: {_inline(val)}")
    elif isinstance(v, list):
        if not v:
            return pad + "[]"
        for item in v:
            if isinstance(item, dict) and item:
                sub = to_yaml(item, indent + 2).split("\n")
                sub[0] = pad + "- " + sub[0][indent + 2:]
                lines.extend(sub)
            elif isinstance(item, list) and item:
                lines.append(f"{pad}-")
                lines.append(to_yaml(item, indent + 2))
            else:
                lines.append(f"{pad}- {_inline(item)}")
    else:
        return pad + _scalar(v)
    return "\n".join(lines)


def _inline(v):
    if isinstance(v, dict):
        return "{}"
    if isinstance(v, list):
        return "[]"
    return _scalar(v)


def doc(kind, name, spec):
    return {"apiVersion": "albd/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}


def instance(name="test", addresses=("127.0.0.1",), **spec):
    return doc("Instance", name, {"addresses": list(addresses), **spec})


def certificate(name, pair):
    return doc("Certificate", name, {"source": {"files": {"certificate": pair.cert, "privateKey": pair.key}}})


def server_group(name, servers, health_check=False, **spec):
    """servers: [(host, port) or (host, port, weight)]."""
    out = []
    for s in servers:
        e = {"address": s[0], "port": s[1]}
        if len(s) > 2:
            e["weight"] = s[2]
        out.append(e)
    sp = {"servers": out, "healthCheck": {"enabled": bool(health_check)}}
    sp.update(spec)
    return doc("ServerGroup", name, sp)


def http_listener(name, port, group, instance_name="test", **spec):
    sp = {"instance": instance_name, "protocol": "HTTP", "port": port}
    sp.update(spec)
    sp["defaultAction"] = {"forward": {"serverGroup": group}}
    return doc("Listener", name, sp)


def https_listener(name, port, cert, group, instance_name="test", **spec):
    sp = {"instance": instance_name, "protocol": "HTTPS", "port": port, "http2": False,
          "tls": {"certificate": cert}}
    sp.update(spec)
    sp["defaultAction"] = {"forward": {"serverGroup": group}}
    return doc("Listener", name, sp)


# --------------------------------------------------------------------------
# Backends: python http.server in threads, HTTP/1.1 keep-alive.
#
#   any path           echo: JSON {backend, method, path, version, headers
#                      [[name, value]...], body_len, body_sha256}
#   ?delay=S           sleep S seconds before answering
#   ?bytes=N           answer N bytes of pattern() instead of the echo
#   ?chunked=1         with bytes: Transfer-Encoding: chunked (HTTP/1.1 only)
#   ?status=C          answer with status C
# The request body (Content-Length or chunked) is always read and hashed,
# never kept. Every request is recorded in Backend.requests.

_BLOCK = None


def pattern_block():
    """64 KiB deterministic block that pattern() repeats."""
    global _BLOCK
    if _BLOCK is None:
        parts, seed = [], b"albd"
        while sum(len(p) for p in parts) < 65536:
            seed = hashlib.sha256(seed).digest()
            parts.append(seed)
        _BLOCK = b"".join(parts)[:65536]
    return _BLOCK


def pattern_chunks(n, size=65536):
    """n bytes of the pattern, in pieces of at most size (<= 64 KiB)."""
    block = pattern_block()
    size = min(size, len(block))
    while n > 0:
        k = min(n, size)
        yield block[:k]
        n -= k


def pattern_sha256(n):
    h = hashlib.sha256()
    for c in pattern_chunks(n):
        h.update(c)
    return h.hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    # Headers and body go out in two writes: without TCP_NODELAY the body
    # waits for the proxy's delayed ACK (40 ms per keep-alive request).
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"
    timeout = 60  # an idle keep-alive connection's thread ends eventually

    def log_message(self, fmt, *args):
        pass

    def _read_body(self):
        h = hashlib.sha256()
        n = 0
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise ConnectionError("eof in chunk size")
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                left = size
                while left:
                    b = self.rfile.read(min(left, 262144))
                    if not b:
                        raise ConnectionError("eof in chunk")
                    h.update(b)
                    n += len(b)
                    left -= len(b)
                self.rfile.readline(8)
        else:
            left = int(self.headers.get("Content-Length") or 0)
            while left:
                b = self.rfile.read(min(left, 262144))
                if not b:
                    raise ConnectionError("eof in body")
                h.update(b)
                n += len(b)
                left -= len(b)
        return n, h.hexdigest()

    def _handle(self):
        srv = self.server
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        rec = {"method": self.command, "path": self.path, "version": self.request_version,
               "headers": [[k, v] for k, v in self.headers.items()],
               "peer": self.client_address, "time": time.monotonic()}
        with srv.lock:
            srv.requests.append(rec)
            srv.arrived.notify_all()
        n, digest = self._read_body()
        rec["body_len"], rec["body_sha256"] = n, digest
        if "delay" in q:
            time.sleep(float(q["delay"]))
        status = getattr(srv, "statuses", {}).get(url.path, int(q.get("status", 200)))
        http10 = self.request_version == "HTTP/1.0"
        if "bytes" in q:
            total = int(q["bytes"])
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            chunked = q.get("chunked") == "1" and not http10
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(total))
            self.end_headers()
            if self.command == "HEAD":
                return
            for c in pattern_chunks(total):
                if chunked:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(c), c))
                else:
                    self.wfile.write(c)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
            return
        body = json.dumps({"backend": srv.name, "method": self.command, "path": self.path,
                           "version": self.request_version, "headers": rec["headers"],
                           "body_len": n, "body_sha256": digest}).encode() + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_one_request(self):
        # BaseHTTPRequestHandler dispatches do_<METHOD>; accept any method.
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            self._handle()
            self.wfile.flush()
        except (ConnectionError, socket.timeout, ValueError):
            self.close_connection = True


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class Backend:
    """An echo backend listening on 127.0.0.1:<port> in a thread."""

    def __init__(self, name, port=0):
        self.name = name
        self.srv = _Server(("127.0.0.1", port), _Handler)
        self.srv.name = name
        self.srv.requests = []
        self.srv.statuses = {}  # path -> status, see set_status
        self.srv.lock = threading.Lock()
        self.srv.arrived = threading.Condition(self.srv.lock)
        self.port = self.srv.server_address[1]
        self.addr = ("127.0.0.1", self.port)
        self.thread = threading.Thread(target=self.srv.serve_forever, kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()

    @property
    def requests(self):
        with self.srv.lock:
            return list(self.srv.requests)

    def count(self):
        with self.srv.lock:
            return len(self.srv.requests)

    def wait_requests(self, n, timeout):
        """Wait until at least n requests arrived; True if they did."""
        end = time.monotonic() + timeout
        with self.srv.lock:
            while len(self.srv.requests) < n:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.srv.arrived.wait(left)
            return True

    def set_status(self, path, status):
        """Answer requests for path (without query) with status from now on
        (None: back to the default); e.g. a health-check path that fails."""
        with self.srv.lock:
            if status is None:
                self.srv.statuses.pop(path, None)
            else:
                self.srv.statuses[path] = status

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


class RawBackend:
    """A backend that keeps every byte it receives, per connection, parsed
    or not -- for tests that must see exactly what albd forwarded, including
    bytes no HTTP parser would take (a smuggled request, half a body).

    Each request it can parse (CRLF head, Content-Length or chunked body) is
    answered with Backend's echo JSON and recorded in .requests (method,
    path, version, headers, body_len, conn); at the first byte it cannot
    parse it stops answering on that connection but keeps recording until
    EOF. .raw() is everything received, .wait_path(path) waits for a parsed
    request for path."""

    def __init__(self, name):
        self.name = name
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.addr = ("127.0.0.1", self.port)
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        self.conns = []  # one bytearray per accepted connection
        self._requests = []
        self.unparsed = []  # indexes of the connections that sent bytes it could not parse
        self._stop = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self._stop:
            try:
                s, _ = self.sock.accept()
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return
            with self.lock:
                idx = len(self.conns)
                self.conns.append(bytearray())
            threading.Thread(target=self._serve, args=(s, idx), daemon=True).start()

    def _serve(self, s, idx):
        s.settimeout(60)
        buf = bytearray()
        broken = False
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                with self.lock:
                    self.conns[idx] += b
                    self.arrived.notify_all()
                if broken:
                    continue
                buf += b
                while buf and not broken:
                    try:
                        got = _parse_raw_request(buf)
                    except ValueError:
                        broken = True
                        with self.lock:
                            self.unparsed.append(idx)
                        break
                    if got is None:
                        break
                    rec, used = got
                    del buf[:used]
                    rec["conn"] = idx
                    with self.lock:
                        self._requests.append(rec)
                        self.arrived.notify_all()
                    body = json.dumps({"backend": self.name, "method": rec["method"], "path": rec["path"],
                                       "version": rec["version"], "headers": rec["headers"],
                                       "body_len": rec["body_len"]}).encode() + b"\n"
                    s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                              b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        except OSError:
            pass
        finally:
            s.close()

    @property
    def requests(self):
        with self.lock:
            return list(self._requests)

    def count(self):
        with self.lock:
            return len(self._requests)

    def raw(self):
        """Every byte received so far, all connections in accept order."""
        with self.lock:
            return b"".join(bytes(c) for c in self.conns)

    def wait_path(self, path, timeout):
        """Wait for a parsed request whose target is path; True if it came."""
        end = time.monotonic() + timeout
        with self.lock:
            while not any(r["path"] == path for r in self._requests):
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.arrived.wait(left)
            return True

    def stop(self):
        self._stop = True
        self.thread.join(2)
        self.sock.close()


def _parse_raw_request(buf):
    """One HTTP/1.1 request from the start of buf: (record, bytes used), None
    if more bytes are needed, ValueError if they cannot be a request."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if len(buf) > 256 * 1024:
            raise ValueError("head too long")
        return None
    lines = bytes(buf[:end]).split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        raise ValueError("bad request line")
    headers = []
    for ln in lines[1:]:
        k, sep, v = ln.partition(b":")
        if not sep or not k or k != k.strip():
            raise ValueError("bad header line")
        headers.append([k.decode("latin-1"), v.strip().decode("latin-1")])
    pos = end + 4
    te = [v.lower() for k, v in headers if k.lower() == "transfer-encoding"]
    cl = [v for k, v in headers if k.lower() == "content-length"]
    body_len = 0
    if te:  # chunked wins over a Content-Length, as RFC 9112 6.3 says a server does
        if te != ["chunked"]:
            raise ValueError("a transfer coding albd must never send")
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                return None
            size = int(bytes(buf[pos:eol]).split(b";")[0], 16)  # ValueError when not hex
            pos = eol + 2
            if size == 0:
                tend = buf.find(b"\r\n", pos)
                while tend > pos:  # trailer lines
                    pos = tend + 2
                    tend = buf.find(b"\r\n", pos)
                if tend < 0:
                    return None
                pos = tend + 2
                break
            if len(buf) < pos + size + 2:
                return None
            if buf[pos + size:pos + size + 2] != b"\r\n":
                raise ValueError("chunk not followed by CRLF")
            body_len += size
            pos += size + 2
    elif cl:
        if len(cl) != 1 or not cl[0].isdigit():
            raise ValueError("bad Content-Length")
        body_len = int(cl[0])
        if len(buf) < pos + body_len:
            return None
        pos += body_len
    rec = {"method": parts[0].decode("latin-1"), "path": parts[1].decode("latin-1"),
           "version": parts[2].decode("latin-1"), "headers": headers, "body_len": body_len,
           "ambiguous": bool(te and cl)}
    return rec, pos


# --------------------------------------------------------------------------
# albd


class Albd:
    """One `albd run` process: own process group, stderr to a file."""

    def __init__(self, env, manifest_dir, workers=2, extra_env=None, ports=(), args=()):
        self.env = env
        self.admin_port = free_port()
        self.ports = list(ports)
        self.stderr_path = os.path.join(env.dir, f"albd-{len(env.albds)}.stderr")
        e = dict(os.environ)
        e.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        e.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        # stderr is a file here, where albd would log JSON: the tests read
        # the text format (log_format_json_and_journald checks the others).
        e.setdefault("ALBD_LOG_FORMAT", "text")
        if extra_env:
            e.update(extra_env)
        self.argv = [albd_binary(), "run", "-m", manifest_dir, "--admin", f"127.0.0.1:{self.admin_port}",
                     "--workers", str(workers), *args]
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self._err, stderr=self._err,
                                     env=e, start_new_session=True, preexec_fn=die_with_parent)
        _register(self.proc)
        self.pid = self.proc.pid
        self.exit_status = None

    def stderr(self):
        if not self._err.closed:
            self._err.flush()
        with open(self.stderr_path, "rb") as f:
            return f.read().decode(errors="replace")

    def alive(self):
        return self.proc.poll() is None

    def admin_get(self, path, timeout=2.0):
        c = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=timeout)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def admin_head_generation(self, path="/healthz", timeout=2.0):
        """The Albd-Generation header of HEAD path (every admin answer has it)."""
        c = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=timeout)
        try:
            c.request("HEAD", path)
            r = c.getresponse()
            r.read()
            v = r.getheader("Albd-Generation")
            return int(v) if v is not None else None
        finally:
            c.close()

    def generation(self):
        """The serving configuration's generation (the Albd-Generation header
        of HEAD /healthz: cheap however large the configuration)."""
        return self.admin_head_generation()

    def wait_generation(self, above, timeout=None):
        """Wait until a configuration newer than generation `above` serves;
        returns the new generation, or None on timeout."""
        end = time.monotonic() + (timeout or scaled(10))
        while time.monotonic() < end:
            try:
                g = self.generation()
                if g is not None and g > above:
                    return g
            except OSError:
                pass
            time.sleep(0.05)
        return None

    def wait_ready(self, timeout=None):
        """Poll the admin endpoint's /readyz until it answers 200. Raises
        TestFailure if albd exits first, or if /readyz has not answered 200
        within the timeout (saying whether the admin endpoint answered at
        all): a dead admin endpoint is a failure, never a reason to trust
        the listeners instead."""
        timeout = timeout or scaled(10)
        end = time.monotonic() + timeout
        last = "no answer (connection refused or timed out)"
        while time.monotonic() < end:
            if not self.alive():
                raise TestFailure(f"albd exited with {self.proc.returncode} before ready:\n{self.stderr()[-3000:]}")
            try:
                st, body = self.admin_get("/readyz", timeout=1.0)
                # Only our albd's answer counts: a port picked free and then
                # released can be taken by another test's albd meanwhile.
                if st == 200 and _owns_listening_port(self.pid, self.admin_port):
                    return True
                last = f"{st} {body[:200]!r}" + ("" if st != 200 else " from another process")
            except OSError as ex:
                last = f"no answer ({ex!r})"
            time.sleep(0.05)
        if not self.alive():
            raise TestFailure(f"albd exited with {self.proc.returncode} before ready:\n{self.stderr()[-3000:]}")
        raise TestFailure(f"albd not ready within {timeout:.0f}s: /readyz on 127.0.0.1:{self.admin_port} "
                          f"last gave {last}\n{self.stderr()[-3000:]}")

    def server_health(self):
        """/status "serverGroups" as {(group, "address:port"): server entry}
        (health, up, ejected, lastProbe, transitions)."""
        st, body = self.admin_get("/status")
        if st != 200:
            raise TestFailure(f"/status answered {st}")
        return {(g["name"], s["server"]): s
                for g in json.loads(body).get("serverGroups", []) for s in g["servers"]}

    def wait_health(self, group, server, health, timeout=None):
        """Wait until /status gives server of group this health
        ("healthy", "unhealthy", ...); returns its entry, None on timeout."""
        end = time.monotonic() + (timeout or scaled(10))
        while time.monotonic() < end:
            e = self.server_health().get((group, server))
            if e and e.get("health") == health:
                return e
            time.sleep(0.05)
        return None

    def metric(self, line_prefix):
        """The value of the first /metrics line starting with line_prefix
        (name and labels), None when absent."""
        st, body = self.admin_get("/metrics")
        for line in body.decode().splitlines():
            if line.startswith(line_prefix + " "):
                return float(line.rsplit(" ", 1)[1])
        return None

    def signal(self, sig):
        if self.alive():
            os.kill(self.pid, sig)

    def stop(self, timeout=None):
        """SIGTERM, wait (bounded), SIGKILL the group if needed; the exit status."""
        if self.exit_status is not None:
            return self.exit_status
        timeout = timeout or scaled(15)
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_proc(self.proc)
        self.exit_status = self.proc.returncode
        self._err.close()
        return self.exit_status

    def check_clean_exit(self, check, timeout=None):
        """Stop with SIGTERM and assert: exit 0, no sanitizer report, no key material in stderr."""
        rc = self.stop(timeout)
        err = self.stderr()
        check.eq(rc, 0, "albd exits 0 after SIGTERM")
        bad = [m for m in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error",
                           "PRIVATE KEY") if m in err]
        check.ok(not bad, "albd stderr has no sanitizer report and no key material", [], bad)
        if rc != 0 or bad:
            log("---- albd stderr (tail) ----\n" + err[-4000:])


def _owns_listening_port(pid, port):
    """True when process pid holds the socket listening on 127.0.0.1:port
    (its socket inodes against /proc/net/tcp's LISTEN entries)."""
    inodes = set()
    want = f"0100007F:{port:04X}"
    try:
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                p = line.split()
                if p[1] == want and p[3] == "0A":  # 0A: LISTEN
                    inodes.add(p[9])
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            return True
    return False


def _can_connect(port, host="127.0.0.1", timeout=0.5):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------
# Clients


def read_response(sock_file, method="GET", sink=None):
    """Read one HTTP/1.x response from a binary file object.
    Returns (version, status, headers [(name, value)], body bytes, framing)
    where framing is 'length', 'chunked', 'close' or 'none'. With sink, body
    pieces go to sink(bytes) as they arrive and the returned body is b""."""
    line = sock_file.readline(65537)
    if not line:
        raise ConnectionError("connection closed before a response")
    parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    version, status = parts[0], int(parts[1])
    headers = []
    while True:
        h = sock_file.readline(65537)
        if h in (b"\r\n", b"\n"):
            break
        if not h:
            raise ConnectionError("connection closed in response headers")
        k, _, v = h.decode("latin-1").partition(":")
        headers.append((k.strip(), v.strip()))
    hmap = {k.lower(): v for k, v in headers}
    body = bytearray()
    put = sink or body.extend
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return version, status, headers, b"", "none"
    if "chunked" in hmap.get("transfer-encoding", "").lower():
        while True:
            sz = sock_file.readline(1024)
            if not sz:
                raise ConnectionError("connection closed in chunked body")
            size = int(sz.split(b";")[0].strip(), 16)
            if size == 0:
                while sock_file.readline(8192) not in (b"\r\n", b"\n", b""):
                    pass
                return version, status, headers, bytes(body), "chunked"
            _read_exact(sock_file, size, put)
            sock_file.readline(8)
    if "content-length" in hmap:
        _read_exact(sock_file, int(hmap["content-length"]), put)
        return version, status, headers, bytes(body), "length"
    while True:
        b = sock_file.read1(262144) if hasattr(sock_file, "read1") else sock_file.read(262144)
        if not b:
            return version, status, headers, bytes(body), "close"
        put(b)


def _read_exact(f, n, put):
    got = 0
    while got < n:
        b = f.read(min(n - got, 262144))
        if not b:
            raise ConnectionError(f"connection closed after {got} of {n} body bytes")
        put(b)
        got += len(b)


def wait_closed(sock, timeout):
    """Read from a (TLS) socket until the peer closes. Returns (closed,
    seconds waited, bytes read): closed is True on EOF, on a TLS EOF without
    close_notify, or on a reset; False when timeout passed first."""
    start = time.monotonic()
    end = start + timeout
    data = bytearray()
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return False, time.monotonic() - start, bytes(data)
        sock.settimeout(left)
        try:
            b = sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return False, time.monotonic() - start, bytes(data)
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError, BrokenPipeError):
            return True, time.monotonic() - start, bytes(data)
        if not b:
            return True, time.monotonic() - start, bytes(data)
        data += b


def header(headers, name):
    """All values of a header (case-insensitive) from [(name, value)] pairs."""
    return [v for k, v in headers if k.lower() == name.lower()]


class Env:
    """One test's world: temp dir, certificates, manifests, backends, albd."""

    def __init__(self, name):
        self.name = name
        self.check = Check(name)
        self.dir = tempfile.mkdtemp(prefix=f"albd-{name}-")
        self.manifest_dir = os.path.join(self.dir, "manifests")
        os.makedirs(self.manifest_dir)
        self.backends = []
        self.albds = []
        self._certs = None
        self.host = "albd.test"

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if et is not None and et is not SystemExit:
            self.check.failed += 1
            if et is TestFailure:
                log(f"FAIL - stopped: {ev}")
            else:
                log("FAIL - unexpected exception:\n" + "".join(traceback.format_exception(et, ev, tb)))
        try:
            for a in self.albds:
                if a.exit_status is None:
                    a.stop(timeout=scaled(5))
                    if a.exit_status != 0:
                        log("---- albd stderr (tail) ----\n" + a.stderr()[-3000:])
        finally:
            _kill_all_children()
            for b in self.backends:
                try:
                    b.stop()
                except Exception:
                    pass
            if self.check.failed and os.environ.get("ALBD_KEEP_TMP"):
                log(f"kept {self.dir}")
            else:
                shutil.rmtree(self.dir, ignore_errors=True)
        return et is TestFailure or (et is not None and et is not SystemExit)

    def certs(self):
        if self._certs is None:
            self._certs = Certs(os.path.join(self.dir, "certs"), names=(self.host, "localhost"))
        return self._certs

    def backend(self, name, port=0):
        b = Backend(name, port)
        self.backends.append(b)
        return b

    def write_manifests(self, *docs, filename="albd.yaml"):
        text = "\n".join("---\n" + to_yaml(d) for d in docs) + "\n"
        path = os.path.join(self.manifest_dir, filename)
        # Written beside it under a hidden name (albd skips those) and
        # renamed over it, as a deploy does: an in-place rewrite can be
        # read half-written by a reload on a loaded machine (an empty file
        # is a valid, empty configuration).
        tmp = os.path.join(self.manifest_dir, "." + filename + ".tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
        return path

    def start_albd(self, ports=(), workers=2, ready=True, extra_env=None, args=()):
        """args: more `albd run` options (e.g. --session-ticket-key FILE)."""
        a = Albd(self, self.manifest_dir, workers=workers, extra_env=extra_env, ports=ports, args=args)
        self.albds.append(a)
        if ready:
            a.wait_ready()
        return a

    # -- clients ---------------------------------------------------------

    def tls_context(self):
        return self.certs().client_context()

    def tls_socket(self, port, timeout=None):
        """A connected, handshaken TLS socket to albd (verifies our CA and host name)."""
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout or scaled(10))
        try:
            return self.tls_context().wrap_socket(raw, server_hostname=self.host)
        except Exception:
            raw.close()
            raise

    def connection(self, port, tls=True, timeout=None):
        timeout = timeout or scaled(10)
        if tls:
            c = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=self.tls_context())
            # verify the certificate against our host name, not 127.0.0.1
            c.host = self.host
            c._create_connection = lambda addr, *a, **k: socket.create_connection(("127.0.0.1", port), *a, **k)
            return c
        return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def request(self, method, port, path, headers=None, body=None, tls=True, timeout=None):
        """One request on a new connection: (status, headers [(k, v)], body)."""
        c = self.connection(port, tls, timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, r.getheaders(), r.read()
        finally:
            c.close()

    def https(self, method, port, path, **kw):
        return self.request(method, port, path, tls=True, **kw)

    def http(self, method, port, path, **kw):
        return self.request(method, port, path, tls=False, **kw)

    def curl(self, url, *args, timeout=None, output=None):
        """curl against albd with our CA and --resolve; (http_code, body bytes, stderr)."""
        timeout = timeout or scaled(20)
        u = urllib.parse.urlsplit(url)
        port = u.port or (443 if u.scheme == "https" else 80)
        out = output or os.path.join(self.dir, "curl.out")
        argv = ["curl", "-sS", "--max-time", str(int(timeout)), "--cacert", self.certs().ca.cert,
                "--resolve", f"{u.hostname}:{port}:127.0.0.1", "-o", out, "-w", "%{http_code}", *args, url]
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout + 10)
        body = b""
        if output is None and os.path.exists(out):
            with open(out, "rb") as f:
                body = f.read()
            os.unlink(out)
        code = int(r.stdout.decode() or 0) if r.stdout.decode().isdigit() else 0
        return code, body, r.stderr.decode(errors="replace")

    def url(self, port, path="/", tls=True):
        return f"{'https' if tls else 'http'}://{self.host}:{port}{path}"


def echo_of(body):
    """The echo backend's JSON answer, or {} if the body is not one."""
    try:
        return json.loads(body)
    except (ValueError, TypeError):
        return {}


def echo_header(echo, name):
    return [v for k, v in echo.get("headers", []) if k.lower() == name.lower()]


def run(name, body):
    """Run body(env) inside an Env; exit with the summary status."""
    status = 1
    with Env(name) as env:
        body(env)
    status = env.check.finish()
    sys.exit(status)
