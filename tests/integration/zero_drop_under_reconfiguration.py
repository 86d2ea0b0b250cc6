#!/usr/bin/env python3
"""Zero dropped requests while the configuration changes: keep-alive and
new-connection HTTPS clients (and an HTTP keep-alive client) run a bounded
load while the manifests change at least 50 times (server weights, a server
group added and removed, the certificate swapped for another one with the
same name, an extra listener added and removed, the idle timeout). Every
request to a listener that exists must succeed with 200 and the echo of
its own path; any error, reset or non-200 fails the test. Old snapshots are
freed once the load stops.

Requests are in flight at the swaps: slow responses (?delay=) and request
bodies streamed slowly (Content-Length and chunked) over HTTP/1.1 and
HTTP/2, each checked against the backend's length and SHA-256 of what
arrived, and each counted when it spanned a swap (a minimum is required).
Keep-alive connections must survive the swaps: raw HTTP/1.1 clients (TLS
and plain) and a raw HTTP/2 client never reconnect silently, and count
every close, reset, "Connection: close" or GOAWAY as a failure; h2load runs
bounded batches of multiplexed streams (it does not retry) on top."""
import hashlib
import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (SANITIZE, certificate, echo_of, free_ports, header, http_listener,  # noqa: E402
                          https_listener, instance, log, pattern_chunks, pattern_sha256, read_response, run,
                          scaled, server_group)
import h2_frames as h2  # noqa: E402
from reconcile_support import (backend_of, can_connect, fingerprint_sha256, generation, metrics, wait_for,  # noqa: E402
                               wait_generation_above, write_in_place, write_then_rename, yaml_docs)

DURATION = 10.0 if SANITIZE else 20.0
CHANGES = 60
KEEPALIVE_CLIENTS = 4
NEWCONN_CLIENTS = 2
WEIGHTS = [(100, 50), (50, 100), (100, 100), (70, 30), (1, 100)]
IDLE = [15, 30, 60]
RAW_TLS_CLIENTS = 2    # raw HTTP/1.1 keep-alive over TLS: fast, slow, uploads
RAW_PLAIN_CLIENTS = 1  # the same on the HTTP listener
DELAY = 0.3            # a slow response: the backend waits this long
UPLOAD = 48 * 1024     # a slow upload: this many bytes ...
UPLOAD_PIECES = 4      # ... in this many pieces ...
UPLOAD_GAP = 0.08      # ... this far apart
H2LOAD = ["h2load", "-n", "160", "-c", "2", "-m", "4"]  # one bounded batch


def pieces(n):
    """The first n bytes of the harness pattern (its SHA-256 is
    pattern_sha256(n)), cut in UPLOAD_PIECES pieces."""
    data = b"".join(pattern_chunks(n))
    step = -(-n // UPLOAD_PIECES)
    return [data[i:i + step] for i in range(0, n, step)]


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = {}
        self.errors = []
        self.fingerprints = set()
        self.backends = {}

    def success(self, kind, backend):
        with self.lock:
            self.ok[kind] = self.ok.get(kind, 0) + 1
            self.backends.setdefault(kind, set()).add(backend)

    def error(self, kind, what):
        with self.lock:
            self.errors.append((round(time.monotonic(), 3), kind, what))


class Swaps:
    """When each change was written and when it was seen serving: a request
    that began before the write and ended after it served was in flight at
    the swap."""

    def __init__(self):
        self.lock = threading.Lock()
        self.spans = []  # (written, applied) monotonic times

    def add(self, written, applied):
        with self.lock:
            self.spans.append((written, applied))

    def crossed(self, began, ended):
        with self.lock:
            return any(began < w and ended > a for w, a in self.spans)


class KeepAlive:
    """Per-connection bookkeeping of the clients that never reconnect
    silently: every reconnect has a reason, and in-flight requests that
    crossed a swap are counted by kind."""

    def __init__(self):
        self.lock = threading.Lock()
        self.clients = set()
        self.reconnects = {}  # client name -> [reason, ...]
        self.crossed = {}     # kind -> count of requests that spanned a swap
        self.done = {}        # kind -> count of requests that succeeded

    def reconnect(self, client, reason):
        with self.lock:
            self.reconnects.setdefault(client, []).append(reason)

    def finished(self, kind, crossed):
        with self.lock:
            self.done[kind] = self.done.get(kind, 0) + 1
            if crossed:
                self.crossed[kind] = self.crossed.get(kind, 0) + 1


def _connect(env, port, tls):
    raw = socket.create_connection(("127.0.0.1", port), timeout=scaled(10))
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if not tls:
        return raw
    try:
        return env.tls_context().wrap_socket(raw, server_hostname=env.host)
    except Exception:
        raw.close()
        raise


def raw_h1_client(env, stats, ka, swaps, stop, name, port, tls):
    """One keep-alive connection that never reconnects silently: requests in
    turn a fast GET, a slow GET, a slowly streamed Content-Length upload and a
    slowly streamed chunked upload. A close, a reset or a response with
    Connection: close is counted as a reconnect (this test expects none)."""
    sock = f = None
    i = 0
    kinds = ["fast", "slow", "upload", "chunked-upload"]
    with ka.lock:
        ka.clients.add(name)
    while not stop.is_set():
        kind = kinds[i % len(kinds)]
        i += 1
        path = f"/{name}/{kind}/{i}" + (f"?delay={DELAY}" if kind == "slow" else "")
        head = f"{'POST' if 'upload' in kind else 'GET'} {path} HTTP/1.1\r\nHost: {env.host}\r\n"
        if kind == "upload":
            head += f"Content-Length: {UPLOAD}\r\n"
        elif kind == "chunked-upload":
            head += "Transfer-Encoding: chunked\r\n"
        began = time.monotonic()
        try:
            if sock is None:
                sock = _connect(env, port, tls)
                f = sock.makefile("rb")
            sock.sendall(head.encode() + b"\r\n")
            if "upload" in kind:
                for n, chunk in enumerate(pieces(UPLOAD)):
                    if n:
                        time.sleep(UPLOAD_GAP)
                    sock.sendall(chunk if kind == "upload" else b"%x\r\n%s\r\n" % (len(chunk), chunk))
                if kind == "chunked-upload":
                    sock.sendall(b"0\r\n\r\n")
            _, status, headers, body, _ = read_response(f)
        except Exception as ex:  # the connection died under us: a reconnect, and a failed request
            ka.reconnect(f"{name}", f"{kind} request {i}: {ex!r}")
            stats.error(name, f"{kind} request {i}: {ex!r}")
            if sock is not None:
                sock.close()
            sock = f = None
            continue
        e = echo_of(body)
        want_len = UPLOAD if "upload" in kind else 0
        if status != 200 or e.get("path") != path or e.get("body_len") != want_len or \
                ("upload" in kind and e.get("body_sha256") != pattern_sha256(UPLOAD)):
            stats.error(name, f"{kind} request {i}: status {status} body {body[:200]!r}")
        else:
            stats.success(name, e.get("backend"))
            ka.finished(f"h1-{kind}", swaps.crossed(began, time.monotonic()))
        if any("close" in v.lower() for v in header(headers, "Connection")):
            ka.reconnect(f"{name}", f"{kind} request {i}: the response said Connection: close")
            sock.close()
            sock = f = None
    if sock is not None:
        sock.close()


def _h2_streams(conn, streams, timeout):
    """Reads frames until every stream in streams {id: {...}} ended. Returns
    None, or why the connection is no longer usable."""
    end = time.monotonic() + timeout
    open_ = set(streams)
    while open_:
        left = end - time.monotonic()
        if left <= 0:
            return f"no answer within {timeout:.0f}s on streams {sorted(open_)}"
        try:
            fr = conn.read_frame(left)
        except (socket.timeout, TimeoutError):
            continue
        if fr is None:
            return "the connection closed"
        if fr.type == h2.GOAWAY:
            return f"GOAWAY {fr.goaway()}"
        if fr.stream not in streams:
            continue
        st = streams[fr.stream]
        if fr.type == h2.HEADERS:
            st["status"] = h2.status_of(fr.payload)
        elif fr.type == h2.DATA:
            st["body"] += fr.payload
            if fr.payload:  # give the connection window back (each stream's own is never used up)
                conn.send(h2.frame(h2.WINDOW_UPDATE, 0, 0, struct.pack(">I", len(fr.payload))))
        elif fr.type == h2.RST_STREAM:
            st["reset"] = struct.unpack(">I", fr.payload[:4])[0]
            open_.discard(fr.stream)
            continue
        if fr.type in (h2.HEADERS, h2.DATA) and fr.flags & h2.END_STREAM:
            st["ended"] = time.monotonic()
            open_.discard(fr.stream)
    return None


def raw_h2_client(env, stats, ka, swaps, stop, name, port):
    """One HTTP/2 connection that never reconnects silently: rounds of four
    concurrent streams (two fast GETs, a slow GET, an upload whose DATA is
    sent slowly). A GOAWAY, a close or a reset stream is a failure."""
    conn = None
    sid = 1
    rnd = 0
    with ka.lock:
        ka.clients.add(name)
    while not stop.is_set():
        rnd += 1
        began = time.monotonic()
        try:
            if conn is None:
                conn = h2.H2Conn.connect(env, port)
                sid = 1
            streams = {}
            for kind in ("fast", "fast", "slow", "upload"):
                path = f"/{name}/{kind}/{rnd}-{sid}" + (f"?delay={DELAY}" if kind == "slow" else "")
                streams[sid] = {"kind": kind, "path": path, "status": None, "body": b"", "reset": None}
                if kind == "upload":
                    conn.request(sid, "POST", env.host, path, extra=[("content-length", str(UPLOAD // 4))],
                                 end_stream=False)
                else:
                    conn.request(sid, "GET", env.host, path)
                sid += 2
            up = [k for k, v in streams.items() if v["kind"] == "upload"][0]
            for n, chunk in enumerate(pieces(UPLOAD // 4)):  # fits the initial stream window
                time.sleep(UPLOAD_GAP)
                last = n == UPLOAD_PIECES - 1
                conn.send(h2.frame(h2.DATA, h2.END_STREAM if last else 0, up, chunk))
            why = _h2_streams(conn, streams, scaled(10))
        except (OSError, ValueError) as ex:
            why = repr(ex)
        if why is not None:
            ka.reconnect(name, f"round {rnd}: {why}")
            stats.error(name, f"round {rnd}: {why}")
            if conn is not None:
                conn.close()
            conn = None
            continue
        for st in streams.values():
            e = echo_of(st["body"])
            want_len = UPLOAD // 4 if st["kind"] == "upload" else 0
            if st["reset"] is not None or st["status"] != 200 or e.get("path") != st["path"] or \
                    e.get("body_len") != want_len or \
                    (st["kind"] == "upload" and e.get("body_sha256") != pattern_sha256(UPLOAD // 4)):
                stats.error(name, f"round {rnd} {st['kind']}: reset {st['reset']} status {st['status']} "
                                  f"body {st['body'][:200]!r}")
            else:
                stats.success(name, e.get("backend"))
                ka.finished(f"h2-{st['kind']}", swaps.crossed(began, st["ended"]))
        if sid > 2 ** 30:  # stream ids run out one day; not in this test
            conn.close()
            conn = None
    if conn is not None:
        conn.close()


def h2load_batches(env, stats, stop, port, results):
    """Bounded h2load batches (multiplexed streams on 2 connections, fast
    and slow URIs) until stop; h2load does not retry, so any stream a
    reload broke shows as failed, errored or non-2xx."""
    base = f"https://{env.host}:{port}"
    uris = [f"{base}/h2load/fast", f"{base}/h2load/fast2", f"{base}/h2load/fast3", f"{base}/h2load/slow?delay=0.2"]
    while not stop.is_set():
        argv = [*H2LOAD, f"--connect-to=127.0.0.1:{port}", *uris]
        try:
            r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=scaled(60))
            out = r.stdout.decode(errors="replace")
        except subprocess.TimeoutExpired:
            stats.error("h2load", "a batch did not finish within its time bound")
            continue
        m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                      r"(\d+) errored", out)
        codes = re.search(r"status codes: (\d+) 2xx", out)
        if not m or not codes:
            stats.error("h2load", f"unreadable h2load output: {out[-400:]!r}")
            continue
        total, _, done, ok, failed, errored = map(int, m.groups())
        results.append((total, ok, int(codes.group(1))))
        if r.returncode != 0 or ok != total or done != total or int(codes.group(1)) != total:
            stats.error("h2load", f"batch: {m.group(0)}; {codes.group(0)}; exit {r.returncode}")
        else:
            with stats.lock:
                stats.ok["h2load"] = stats.ok.get("h2load", 0) + total


def client(env, stats, stop, kind, port, tls, keepalive, gate=None):
    """Requests until stop is set. gate (a (lock, flag-dict) pair) limits
    requests to times when the listener exists."""
    conn = None
    i = 0
    while not stop.is_set():
        if gate is not None:
            lock, state = gate
            lock.acquire()
            if not state["up"]:
                lock.release()
                time.sleep(0.01)
                continue
        i += 1
        path = f"/{kind}/{threading.get_ident()}/{i}"
        try:
            if conn is None:
                conn = env.connection(port, tls, timeout=scaled(10))
            conn.request("GET", path)
            r = conn.getresponse()
            body = r.read()
            if tls and not keepalive and conn.sock is not None:
                fp = conn.sock.getpeercert(binary_form=True)
                with stats.lock:
                    stats.fingerprints.add(fp)
            if keepalive and r.will_close:  # http.client would reconnect silently
                stats.error(kind, f"the response to {path} said Connection: close on a keep-alive connection")
            if not keepalive or r.will_close:
                conn.close()
                conn = None
            e = json.loads(body) if r.status == 200 else {}
            if r.status != 200 or e.get("path") != path:
                stats.error(kind, f"status {r.status} body {body[:160]!r}")
            else:
                stats.success(kind, e.get("backend"))
        except Exception as ex:  # every failure counts
            stats.error(kind, repr(ex))
            if conn is not None:
                conn.close()
                conn = None
        finally:
            if gate is not None:
                gate[0].release()
    if conn is not None:
        conn.close()


def body(env):
    c = env.check
    certs = env.certs()
    a = env.backend("a")
    b = env.backend("b")
    p_main, p_http, p_extra, p_h2 = free_ports(4)
    path = os.path.join(env.manifest_dir, "albd.yaml")

    def manifests(s):
        wa, wb = WEIGHTS[s["weights"] % len(WEIGHTS)]
        docs = [instance(),
                certificate("site", certs.ecdsa if s["cert"] else certs.rsa),
                server_group("web", [a.addr + (wa,), b.addr + (wb,)]),
                server_group("side", [a.addr])]
        if s["group"]:
            docs.append(server_group("extra-group", [b.addr]))
        docs.append(https_listener("main", p_main, "site", "web", idleTimeoutSeconds=IDLE[s["idle"] % len(IDLE)]))
        docs.append(http_listener("plain", p_http, "extra-group" if s["group"] else "side"))
        docs.append(https_listener("h2", p_h2, "site", "web", http2=True,
                                   idleTimeoutSeconds=IDLE[s["idle"] % len(IDLE)]))
        if s["listener"]:
            docs.append(https_listener("extra", p_extra, "site", "side"))
        return yaml_docs(*docs)

    s = {"weights": 0, "cert": 0, "group": 0, "listener": 0, "idle": 0}
    write_in_place(path, manifests(s))
    albd = env.start_albd(ports=(p_main, p_http, p_h2))
    c.require(wait_for(lambda: backend_of(env, p_main) in ("a", "b"), scaled(5)), "the first configuration serves")
    fivexx0 = metrics(albd).get('albd_responses_total{code="5xx"}', 0)

    stats = Stats()
    ka = KeepAlive()
    swaps = Swaps()
    h2load_runs = []
    stop = threading.Event()
    gate = (threading.Lock(), {"up": False})
    threads = [threading.Thread(target=client, args=(env, stats, stop, "keepalive", p_main, True, True), daemon=True)
               for _ in range(KEEPALIVE_CLIENTS)]
    threads += [threading.Thread(target=client, args=(env, stats, stop, "newconn", p_main, True, False), daemon=True)
                for _ in range(NEWCONN_CLIENTS)]
    threads.append(threading.Thread(target=client, args=(env, stats, stop, "http-keepalive", p_http, False, True),
                                    daemon=True))
    threads.append(threading.Thread(target=client, args=(env, stats, stop, "extra-listener", p_extra, True, False,
                                                         gate), daemon=True))
    threads += [threading.Thread(target=raw_h1_client, args=(env, stats, ka, swaps, stop, f"raw-tls-{n}", p_main, True),
                                 daemon=True) for n in range(RAW_TLS_CLIENTS)]
    threads += [threading.Thread(target=raw_h1_client, args=(env, stats, ka, swaps, stop, f"raw-plain-{n}", p_http,
                                                             False), daemon=True) for n in range(RAW_PLAIN_CLIENTS)]
    threads.append(threading.Thread(target=raw_h2_client, args=(env, stats, ka, swaps, stop, "raw-h2", p_h2),
                                    daemon=True))
    threads.append(threading.Thread(target=h2load_batches, args=(env, stats, stop, p_h2, h2load_runs), daemon=True))
    for t in threads:
        t.start()

    kinds = ["weights", "group", "cert", "listener", "idle"]
    applied = 0
    not_applied = []
    start = time.monotonic()
    deadline = start + scaled(90)
    pace = DURATION / CHANGES
    for i in range(CHANGES):
        if time.monotonic() > deadline:
            break
        t0 = time.monotonic()
        k = kinds[i % len(kinds)]
        s[k] += 1
        if k in ("group", "cert", "listener"):
            s[k] %= 2
        g = generation(albd)
        text = manifests(s)
        removing_listener = k == "listener" and not s["listener"]
        if removing_listener:
            with gate[0]:
                gate[1]["up"] = False
        if i % 2:
            write_in_place(path, text)
        else:
            write_then_rename(path, text)
        if wait_generation_above(albd, g, timeout=scaled(5)) is not None:
            applied += 1
            swaps.add(t0, time.monotonic())
            if k == "listener" and s["listener"]:
                if wait_for(lambda: can_connect(p_extra), scaled(2)):
                    with gate[0]:
                        gate[1]["up"] = True
        else:
            not_applied.append((i, k))
        left = pace - (time.monotonic() - t0)
        if left > 0:
            time.sleep(left)
    # Let the load run a little on the last configuration.
    time.sleep(min(2.0, DURATION / 10))
    stop.set()
    for t in threads:
        t.join(scaled(20))
    elapsed = time.monotonic() - start

    total_ok = sum(stats.ok.values())
    log(f"load: {elapsed:.1f}s, {applied} changes applied of {CHANGES}, {total_ok} requests ok "
        f"({stats.ok}), {len(stats.errors)} failed; backends seen {stats.backends}")
    for e in stats.errors[:10]:
        log(f"  failure: {e}")
    c.ok(applied >= 50, "the manifests changed (and applied) at least 50 times", ">= 50", (applied, not_applied[:10]))
    c.eq(stats.errors[:10], [], "no request failed, reset or answered non-200 while the configuration changed")
    c.eq(len(stats.errors), 0, "failed request count")
    for kind in ("keepalive", "newconn", "http-keepalive", "extra-listener", "raw-tls-0", "raw-plain-0", "raw-h2"):
        c.ok(stats.ok.get(kind, 0) > 10, f"{kind} clients made requests throughout", "> 10", stats.ok.get(kind, 0))
    log("reconnects per keep-alive connection: " +
        ", ".join(f"{n}: {len(ka.reconnects.get(n, []))}" for n in sorted(ka.clients)))
    log(f"keep-alive clients: requests done {ka.done}, of them in flight at a swap {ka.crossed}; "
        f"h2load batches (total, succeeded, 2xx): {h2load_runs}")
    c.eq(ka.reconnects, {}, "no keep-alive connection (HTTP/1.1 over TLS and plain, HTTP/2) was closed, reset, "
         "told Connection: close or sent GOAWAY by a reload: none had to reconnect")
    # Requests really were in flight while the configuration swapped.
    need = 3 if SANITIZE else 5
    for kind in ("h1-slow", "h1-upload", "h1-chunked-upload", "h2-slow", "h2-upload"):
        c.ok(ka.crossed.get(kind, 0) >= need, f"{kind} requests were in flight at a swap and completed intact",
             f">= {need}", ka.crossed.get(kind, 0))
    c.ok(len(h2load_runs) >= 2 and all(t == ok == x for t, ok, x in h2load_runs),
         "h2load: every batch of multiplexed streams succeeded with 2xx across the swaps", ">= 2 clean batches",
         h2load_runs)
    c.ok(stats.backends.get("http-keepalive", set()) >= {"a", "b"},
         "the HTTP listener followed its group change (backends a and b both answered)", {"a", "b"},
         stats.backends.get("http-keepalive"))
    fps = {fingerprint_sha256(certs.rsa.cert), fingerprint_sha256(certs.ecdsa.cert)}
    seen = {hashlib.sha256(d).hexdigest() for d in stats.fingerprints}
    c.eq(seen, fps, "new connections saw both certificates as the certificate changed")
    m = metrics(albd)
    c.eq(m.get('albd_responses_total{code="5xx"}', 0) - fivexx0, 0, "albd answered no 5xx during the load")
    snaps = wait_for(lambda: metrics(albd).get("albd_snapshots_active", 99) <= 2, scaled(10))
    c.ok(snaps, "old snapshots are freed once the load stops (albd_snapshots_active <= 2)", "<= 2",
         metrics(albd).get("albd_snapshots_active"))
    albd.check_clean_exit(c)


run("zero_drop_under_reconfiguration", body)
