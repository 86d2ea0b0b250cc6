#!/usr/bin/env python3
"""Passive ejection: connections to a server that are refused, or reset
before any response byte, mark it down after as many in a row as the
unhealthy threshold -- long before the probes would (threshold 10, interval
2 s: 20 s) -- and no client GET fails meanwhile (failover). The next
successful probe brings it back."""
import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (dead_port, echo_of, free_ports, http_listener, instance, run,  # noqa: E402
                          scaled, server_group)

HC = {"enabled": True, "path": "/hc", "intervalSeconds": 2, "timeoutSeconds": 1,
      "healthyThreshold": 2, "unhealthyThreshold": 10}


class Flaky:
    """A TCP server that resets every connection at once (mode "reset"), or
    answers one HTTP request with 200 and closes (mode "http")."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.mode = "reset"
        self.accepted = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                mode = self.mode
            if mode == "reset":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
            else:
                threading.Thread(target=self._http, args=(s,), daemon=True).start()

    def _http(self, s):
        try:
            s.settimeout(5)
            buf = b""
            while b"\r\n\r\n" not in buf:
                d = s.recv(4096)
                if not d:
                    return
                buf += d
            body = b'{"backend": "flaky"}'
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
        except OSError:
            pass
        finally:
            s.close()

    def count(self):
        with self.lock:
            return self.accepted


def burst(env, port, n):
    out = {}
    for i in range(n):
        st, _, b = env.http("GET", port, f"/b{i}")
        k = echo_of(b).get("backend") if st == 200 else st
        out[k] = out.get(k, 0) + 1
    return out


def body(env):
    c = env.check
    a = env.backend("a")
    flaky = Flaky()
    dead = dead_port()
    p1, p2 = free_ports(2)
    env.write_manifests(
        instance(),
        server_group("resets", [a.addr, ("127.0.0.1", flaky.port)], healthCheck=HC),
        server_group("refused", [a.addr, ("127.0.0.1", dead)], healthCheck=HC),
        http_listener("resets", p1, "resets"), http_listener("refused", p2, "refused"))
    albd = env.start_albd(ports=(p1, p2))
    fkey, dkey = f"127.0.0.1:{flaky.port}", f"127.0.0.1:{dead}"
    time.sleep(0.5)  # the first probes ran (and failed): 1 of 10, still usable
    e = albd.server_health()[("resets", fkey)]
    c.ok(e["health"] != "unhealthy", "one failed probe of 10 does not mark the server down", None, e)

    t0 = time.monotonic()
    got = burst(env, p1, 40)
    print("resetting server, 40 GETs:", got, "connections it saw:", flaky.count())
    c.eq(got, {"a": 40}, "every GET is answered by a (a reset fails over)")
    e = albd.server_health()[("resets", fkey)]
    c.eq((e["health"], e["up"], e["ejected"]), ("unhealthy", False, True),
         "the resetting server is ejected (down, not by a probe)")
    c.ok(time.monotonic() - t0 < scaled(10), "ejected long before 10 probes (20 s) could")
    c.eq(albd.metric(f'albd_server_up{{group="resets",server="{fkey}"}}'), 0.0, "albd_server_up is 0")

    n = flaky.count()
    got = burst(env, p1, 40)
    c.eq(got, {"a": 40}, "after ejection every GET goes to a")
    extra = flaky.count() - n
    c.ok(extra <= 2, "the ejected server sees at most the prober's connections", "<= 2", extra)

    got = burst(env, p2, 30)
    c.eq(got, {"a": 30}, "refused connections fail over: every GET answered by a")
    e = albd.server_health()[("refused", dkey)]
    c.eq((e["health"], e["ejected"]), ("unhealthy", True), "the refusing server is ejected too")

    # The server recovers: the next good probe (every 2 s) brings it back.
    flaky.mode = "http"
    t1 = time.monotonic()
    e = albd.wait_health("resets", fkey, "healthy", timeout=scaled(6))
    c.require(e is not None, "a good probe brings the ejected server back")
    print(f"back {time.monotonic() - t1:.2f} s after it recovered")
    c.eq((e["ejected"], e["transitions"]), (False, 2), "not ejected any more; two transitions")
    got = burst(env, p1, 20)
    c.ok(got.get("flaky", 0) >= 5, "it receives requests again", ">= 5 of 20", got)
    albd.check_clean_exit(c)


run("health_checks_eject_passively", body)
