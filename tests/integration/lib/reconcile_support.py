"""Helpers for the reconcile-loop integration tests (watch, plan, keep last
good, listener changes, zero drop), on top of albd_harness (python3 stdlib).

What is here and not in the harness: reading the admin endpoint as data
(/status, /metrics, /config), waiting for a generation, the ways editors and
Kubernetes really change files (in place, write-then-rename, slow truncate
then write, the ConfigMap "..data" link swap), a client that polls a listener
continuously and records every failure, and `albd plan` as a subprocess.
"""

import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time

from albd_harness import albd_binary, release_port, scaled, to_yaml


# --------------------------------------------------------------------------
# The admin endpoint, as data.


def status(albd, timeout=None):
    """/status as a dict (raises on a non-200 or non-JSON answer)."""
    st, body = albd.admin_get("/status", timeout=timeout or scaled(5))
    if st != 200:
        raise RuntimeError(f"/status answered {st}")
    return json.loads(body)


def config(albd, timeout=None):
    """/config as (raw text, dict)."""
    st, body = albd.admin_get("/config", timeout=timeout or scaled(10))
    if st != 200:
        raise RuntimeError(f"/config answered {st}")
    text = body.decode()
    return text, json.loads(text)


_METRIC = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)')


def metrics(albd, timeout=None):
    """/metrics as {"name{labels}": float}; names without labels as "name"."""
    st, body = albd.admin_get("/metrics", timeout=timeout or scaled(5))
    if st != 200:
        raise RuntimeError(f"/metrics answered {st}")
    out = {}
    for line in body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        m = _METRIC.match(line)
        if m:
            try:
                out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
            except ValueError:
                pass
    return out


def generation(albd):
    """The serving configuration's generation: the Albd-Generation header of
    HEAD /healthz (/metrics grows with the servers: with 10,000 of them,
    polling it every few ms kept albd busy rendering it)."""
    g = albd.admin_head_generation()
    return g if g is not None else -1


def reconciles(albd, result):
    """albd_reconciles_total{result="success"|"failure"}."""
    return metrics(albd).get(f'albd_reconciles_total{{result="{result}"}}', 0.0)


def wait_for(pred, timeout, interval=0.02):
    """Calls pred() until it returns a true value or timeout passes; returns
    that value, or None. Exceptions from pred count as false."""
    end = time.monotonic() + timeout
    while True:
        try:
            v = pred()
            if v:
                return v
        except (OSError, ValueError, RuntimeError, http.client.HTTPException):
            pass
        if time.monotonic() >= end:
            return None
        time.sleep(interval)


def wait_generation_above(albd, gen, timeout=None):
    """Waits until the generation is > gen; returns it, or None."""
    return wait_for(lambda: (lambda g: g if g > gen else None)(generation(albd)), timeout or scaled(5))


def problem_sources(st):
    """Every "file:line:col" in /status problems and resource conditions."""
    out = [p.get("source", "") for p in st.get("problems", [])]
    for r in st.get("resources", []):
        for c in r.get("conditions", []):
            if c.get("source"):
                out.append(c["source"])
    return out


def located(st, filename):
    """(line, col) of the first /status problem located in a file named
    filename (a path ending in it), or None."""
    for src in problem_sources(st):
        m = re.search(r"(?:^|/)" + re.escape(filename) + r":(\d+):(\d+)$", src)
        if m:
            return int(m.group(1)), int(m.group(2))
    return None


def line_of(text, needle):
    """1-based line number of the first line of text containing needle."""
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise ValueError(f"{needle!r} not in text")


# --------------------------------------------------------------------------
# Manifest text and the ways files change.


def yaml_docs(*docs):
    """Multi-document YAML text for harness documents."""
    return "".join("---\n" + to_yaml(d) + "\n" for d in docs)


def write_in_place(path, text):
    """What `echo > file` and most programs do: truncate and write the same inode."""
    with open(path, "w") as f:
        f.write(text)


def write_then_rename(path, text, suffix=".tmp"):
    """An editor's safe save: write path+suffix, fsync, rename over path."""
    tmp = path + suffix
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def write_slowly(path, text, pause=0.05):
    """A slow truncate-then-write save: truncate, pause, write the first
    half, pause, write the rest. Between the steps the file is empty or
    half-written: applying it would drop or break resources."""
    half = len(text) // 2
    with open(path, "w") as f:  # truncates
        f.flush()
        time.sleep(pause)
        f.write(text[:half])
        f.flush()
        time.sleep(pause)
        f.write(text[half:])
        f.flush()


class ConfigMapDir:
    """A Kubernetes ConfigMap volume as the kubelet lays it out:

        DIR/..2026_01_01_00_00_00.1/<files>
        DIR/..data -> ..2026_01_01_00_00_00.1
        DIR/<file> -> ..data/<file>

    update() does what the kubelet does: a new timestamped folder, a new
    "..data_tmp" link renamed over "..data", then the old folder removed."""

    def __init__(self, path):
        self.path = path
        os.makedirs(path, exist_ok=True)
        self.version = 0
        self.current = None
        self.files = set()

    def _stamp(self):
        self.version += 1
        return f"..2026_01_01_00_00_{self.version:02d}.{self.version}"

    def update(self, files):
        """files: {name: text}. Returns the new data folder's name."""
        stamp = self._stamp()
        d = os.path.join(self.path, stamp)
        os.makedirs(d)
        for name, text in files.items():
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
        tmp = os.path.join(self.path, "..data_tmp")
        os.symlink(stamp, tmp)
        os.rename(tmp, os.path.join(self.path, "..data"))
        for name in files:
            link = os.path.join(self.path, name)
            if not os.path.islink(link):
                os.symlink(os.path.join("..data", name), link)
        for name in self.files - set(files):
            try:
                os.unlink(os.path.join(self.path, name))
            except FileNotFoundError:
                pass
        self.files = set(files)
        if self.current:
            shutil.rmtree(os.path.join(self.path, self.current), ignore_errors=True)
        self.current = stamp
        return stamp


# --------------------------------------------------------------------------
# Clients.


def can_connect(port, timeout=0.5):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def refuses(port):
    """True when a connection to the port is refused (nothing listens)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
        return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def backend_of(env, port, tls=True, path="/which", timeout=None):
    """One request on a new connection; the name of the backend that
    answered, or None on any failure."""
    try:
        st, _, body = env.request("GET", port, path, tls=tls, timeout=timeout or scaled(5))
    except (OSError, http.client.HTTPException, ssl.SSLError):
        return None
    if st != 200:
        return None
    try:
        return json.loads(body).get("backend")
    except ValueError:
        return None


def wait_backend(env, port, name, timeout=None, tls=True):
    """Waits until a new connection to port is answered by backend name."""
    return wait_for(lambda: backend_of(env, port, tls) == name, timeout or scaled(5), interval=0.03)


class Poller(threading.Thread):
    """Requests a listener continuously (a new connection per request, or
    one keep-alive connection) until stop(); records every answer's backend
    and every failure with its time. A failure is any exception, a non-200
    or a body that is not the echo of the path requested."""

    def __init__(self, env, port, tls=True, keepalive=False, name="poller", pause=0.0):
        super().__init__(daemon=True, name=name)
        self.env, self.port, self.tls, self.keepalive, self.pause = env, port, tls, keepalive, pause
        self.ok = 0
        self.failures = []   # (time, what)
        self.seen = []       # (time, backend) when the backend changes
        self._halt = threading.Event()
        self._lock = threading.Lock()

    def run(self):
        conn = None
        i = 0
        while not self._halt.is_set():
            i += 1
            path = f"/poll/{self.name}/{i}"
            t = time.monotonic()
            try:
                if conn is None or not self.keepalive:
                    conn = self.env.connection(self.port, self.tls, timeout=scaled(10))
                conn.request("GET", path)
                r = conn.getresponse()
                body = r.read()
                if not self.keepalive or r.will_close:
                    conn.close()
                    conn = None
                e = json.loads(body) if r.status == 200 else {}
                if r.status != 200 or e.get("path") != path:
                    self._fail(t, f"status {r.status}, body {body[:200]!r}")
                else:
                    with self._lock:
                        self.ok += 1
                        if not self.seen or self.seen[-1][1] != e.get("backend"):
                            self.seen.append((t, e.get("backend")))
            except Exception as ex:  # every failure is recorded, none stops the poller
                self._fail(t, repr(ex))
                if conn is not None:
                    conn.close()
                    conn = None
            if self.pause:
                time.sleep(self.pause)
        if conn is not None:
            conn.close()

    def _fail(self, t, what):
        with self._lock:
            self.failures.append((t, what))

    def stop(self):
        self._halt.set()
        self.join(scaled(15))

    def snapshot(self):
        with self._lock:
            return self.ok, list(self.failures), list(self.seen)


# --------------------------------------------------------------------------
# albd plan.


def plan(*args, timeout=None):
    """Runs `albd plan ARGS`; returns (exit status, stdout, stderr)."""
    r = subprocess.run([albd_binary(), "plan", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout or scaled(60))
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def fingerprint_sha256(cert_path):
    """The certificate's SHA-256 fingerprint as lowercase hex without colons."""
    r = subprocess.run(["openssl", "x509", "-in", cert_path, "-noout", "-fingerprint", "-sha256"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30, check=True)
    return r.stdout.decode().strip().split("=", 1)[1].replace(":", "").lower()


def hold_port(port):
    """A plain listening socket (no SO_REUSEPORT) on 127.0.0.1:port, held by
    this process: albd cannot bind the port while it is open."""
    release_port(port)  # a reservation would make this bind fail
    s = socket.socket()
    s.bind(("127.0.0.1", port))
    s.listen(8)
    return s
