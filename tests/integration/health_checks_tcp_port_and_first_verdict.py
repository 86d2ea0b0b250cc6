#!/usr/bin/env python3
"""TCP health checks judge by the connect alone (a listener that speaks no
HTTP is healthy; once it stops listening the server is down after the
threshold); healthCheck.port sends probes to another port than the
server's; a probe that times out says "timeout"; and a server without a
verdict yet counts as healthy (start-up never empties a group)."""
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import echo_of, free_ports, http_listener, instance, run, scaled, server_group  # noqa: E402


class Silent:
    """Accepts TCP connections and closes them without a byte: no HTTP."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            s.close()

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def body(env):
    c = env.check
    app, app2, hc_side = env.backend("app"), env.backend("app2"), env.backend("hc-side")
    slow = env.backend("slow")
    silent = Silent()
    p1, p2, p3 = free_ports(3)
    tcp = {"enabled": True, "protocol": "TCP", "port": silent.port, "intervalSeconds": 1,
           "timeoutSeconds": 1, "healthyThreshold": 2, "unhealthyThreshold": 2}
    port_hc = {"enabled": True, "path": "/side", "port": hc_side.port, "intervalSeconds": 1,
               "healthyThreshold": 2, "unhealthyThreshold": 2}
    # Probes of "slow" hang 30 s: its first probe result (a timeout) takes
    # 4 s, its first verdict (two timeouts) 8 s.
    slow_hc = {"enabled": True, "path": "/hang?delay=30", "timeoutSeconds": 4, "intervalSeconds": 1,
               "healthyThreshold": 2, "unhealthyThreshold": 2}
    env.write_manifests(
        instance(),
        server_group("tcp", [app.addr], healthCheck=tcp),
        server_group("side", [app2.addr], healthCheck=port_hc),
        server_group("slow", [slow.addr], healthCheck=slow_hc),
        http_listener("tcp", p1, "tcp"), http_listener("side", p2, "side"), http_listener("slow", p3, "slow"))
    t_start = time.monotonic()
    albd = env.start_albd(ports=(p1, p2, p3))
    skey, akey = f"127.0.0.1:{slow.port}", f"127.0.0.1:{app.port}"
    a2key = f"127.0.0.1:{app2.port}"

    # Before its first verdict the slow server is "unknown" and serves.
    e = albd.server_health()[("slow", skey)]
    if time.monotonic() - t_start < 3.5:
        c.eq((e["health"], e["up"], e["lastProbe"]), ("unknown", True, None),
             "a server not judged yet is unknown and up")
        st, _, b = env.http("GET", p3, "/first")
        c.eq((st, echo_of(b).get("backend")), (200, "slow"), "it takes requests before its first verdict")
    else:
        c.ok(False, "albd took too long to start to see the state before the first verdict")

    e = albd.wait_health("tcp", akey, "healthy")
    c.require(e is not None, "a TCP check on a listener that speaks no HTTP is healthy")
    c.eq((e["lastProbe"]["result"], e["lastProbe"]["reason"]), ("success", "connected"),
         "the TCP probe's result is the connect")
    c.ok(silent.accepted >= 1, "the TCP probe went to healthCheck.port", ">= 1", silent.accepted)

    e = albd.wait_health("side", a2key, "healthy")
    c.require(e is not None, "the HTTP check on healthCheck.port passes")
    side = [r for r in hc_side.requests if r["path"] == "/side"]
    c.ok(len(side) >= 1, "HTTP probes went to healthCheck.port", ">= 1", len(side))
    if side:
        c.eq(side[0]["method"], "HEAD", "the default probe method is HEAD")
        c.eq(side[0]["version"], "HTTP/1.1", "the default probe version is HTTP/1.1")
        c.eq([v for k, v in side[0]["headers"] if k.lower() == "host"], ["127.0.0.1"],
             "the default Host is the server's address")
    c.eq([r for r in app2.requests if r["path"] == "/side"], [], "no probe went to the server's own port")

    # The TCP check's listener goes away: down after two refused connects.
    silent.close()
    e = albd.wait_health("tcp", akey, "unhealthy", timeout=scaled(6))
    c.require(e is not None, "the TCP check fails once nothing listens")
    c.eq(e["lastProbe"]["reason"], "refused", "the reason is refused")
    st, _, _ = env.http("GET", p1, "/x")
    c.eq(st, 200, "fail-open: the group still forwards")

    # The slow server: its probes time out.
    e = albd.wait_health("slow", skey, "unhealthy", timeout=scaled(15))
    c.require(e is not None, "probes that time out mark the server down")
    c.eq(e["lastProbe"]["reason"], "timeout", "the reason is timeout")
    albd.check_clean_exit(c)


run("health_checks_tcp_port_and_first_verdict", body)
