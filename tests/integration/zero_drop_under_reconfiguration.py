#!/usr/bin/env python3
"""Zero dropped requests while the configuration changes: keep-alive and
new-connection HTTPS clients (and an HTTP keep-alive client) run a bounded
load while the manifests change at least 50 times (server weights, a server
group added and removed, the certificate swapped for another one with the
same name, an extra listener added and removed, the idle timeout). Every
request to a listener that exists must succeed with 200 and the echo of
its own path; any error, reset or non-200 fails the test. Old snapshots are
freed once the load stops."""
import hashlib
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (SANITIZE, certificate, free_ports, http_listener, https_listener, instance, log,  # noqa: E402
                          run, scaled, server_group)
from reconcile_support import (backend_of, can_connect, fingerprint_sha256, generation, metrics, wait_for,  # noqa: E402
                               wait_generation_above, write_in_place, write_then_rename, yaml_docs)

DURATION = 10.0 if SANITIZE else 20.0
CHANGES = 60
KEEPALIVE_CLIENTS = 4
NEWCONN_CLIENTS = 2
WEIGHTS = [(100, 50), (50, 100), (100, 100), (70, 30), (1, 100)]
IDLE = [15, 30, 60]


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
    p_main, p_http, p_extra = free_ports(3)
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
        if s["listener"]:
            docs.append(https_listener("extra", p_extra, "site", "side"))
        return yaml_docs(*docs)

    s = {"weights": 0, "cert": 0, "group": 0, "listener": 0, "idle": 0}
    write_in_place(path, manifests(s))
    albd = env.start_albd(ports=(p_main, p_http))
    c.require(wait_for(lambda: backend_of(env, p_main) in ("a", "b"), scaled(5)), "the first configuration serves")
    fivexx0 = metrics(albd).get('albd_responses_total{code="5xx"}', 0)

    stats = Stats()
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
    for kind in ("keepalive", "newconn", "http-keepalive", "extra-listener"):
        c.ok(stats.ok.get(kind, 0) > 10, f"{kind} clients made requests throughout", "> 10", stats.ok.get(kind, 0))
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
