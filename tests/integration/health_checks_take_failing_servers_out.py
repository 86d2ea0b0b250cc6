#!/usr/bin/env python3
"""Under keep-alive load over three backends, one starts failing its health
check: after the unhealthy threshold (2 probes, 1 s apart) it gets no new
request, no client request fails, /status and /metrics say so; when its
check passes again it is back after the healthy threshold (2 probes). The
probes carry the group's method, path, Host and HTTP version, close their
connection, and come from one prober per process (4 workers, not 4x the
probes). While b is down the group's /status entry is Degraded."""
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (echo_header, echo_of, free_ports, http_listener, instance, run,  # noqa: E402
                          scaled, server_group)


def probes(b):
    return [r for r in b.requests if r["path"] == "/hc"]


def traffic_after(b, t):
    """Requests (not probes) that reached b after monotonic time t."""
    return [r for r in b.requests if r["path"] != "/hc" and r["time"] > t]


def degraded(albd):
    """(reason, message) of the ServerGroup web's Degraded condition, or None."""
    st, body = albd.admin_get("/status")
    for r in json.loads(body)["resources"]:
        if r["kind"] == "ServerGroup" and r["name"] == "web":
            for cond in r["conditions"]:
                if cond["type"] == "Degraded":
                    return cond["reason"], cond.get("message")
    return None


class Load:
    """Threads sending GETs over keep-alive connections until stopped."""

    def __init__(self, env, port, n=4):
        self.env, self.port = env, port
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.failures = []
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(n)]
        for t in self.threads:
            t.start()

    def _run(self, k):
        conn = self.env.connection(self.port, tls=False, timeout=scaled(10))
        i = 0
        while not self.stop_ev.is_set():
            i += 1
            try:
                conn.request("GET", f"/load/{k}/{i}")
                r = conn.getresponse()
                body = r.read()
                good = r.status == 200 and echo_of(body).get("backend")
                with self.lock:
                    if good:
                        self.ok += 1
                    else:
                        self.failures.append(f"{r.status} {body[:80]!r}")
            except OSError as ex:
                with self.lock:
                    self.failures.append(repr(ex))
                conn.close()
                conn = self.env.connection(self.port, tls=False, timeout=scaled(10))
        conn.close()

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(scaled(15))


def body(env):
    c = env.check
    a, b, x = env.backend("a"), env.backend("b"), env.backend("c")
    (port,) = free_ports(1)
    hc = {"enabled": True, "protocol": "HTTP", "method": "GET", "path": "/hc", "host": "health.internal",
          "httpVersion": "HTTP1.0", "codes": ["http_2xx"], "intervalSeconds": 1, "timeoutSeconds": 1,
          "healthyThreshold": 2, "unhealthyThreshold": 2}
    env.write_manifests(instance(), server_group("web", [a.addr, b.addr, x.addr], healthCheck=hc),
                        http_listener("web", port, "web"))
    albd = env.start_albd(ports=(port,), workers=4)
    bkey = f"127.0.0.1:{b.port}"

    for be in (a, b, x):
        e = albd.wait_health("web", f"127.0.0.1:{be.port}", "healthy")
        c.ok(e is not None, f"backend {be.name} is healthy after its first probe")

    # What a probe looks like at the backend.
    p = probes(b)
    c.ok(len(p) >= 1, "backend b received probes for /hc")
    if p:
        r = p[-1]
        c.eq(r["method"], "GET", "probe method is the configured GET")
        c.eq(r["version"], "HTTP/1.0", "probe uses the configured HTTP/1.0")
        c.eq(echo_header(r, "Host"), ["health.internal"], "probe Host is the configured host")
        c.eq([v.lower() for v in echo_header(r, "Connection")], ["close"], "probe asks for a short connection")
        c.eq(echo_header(r, "User-Agent"), ["albd-health-check"], "probe names itself")

    # One prober per process: 4 workers must not mean 4 probes per interval.
    n0, t0 = len(probes(a)), time.monotonic()
    time.sleep(3.0)
    rate = (len(probes(a)) - n0) / (time.monotonic() - t0)
    print(f"probes per second at one backend with 4 workers: {rate:.2f}")
    c.within(rate, 0.6, 1.5, "about one probe per interval per server, whatever the workers")

    load = Load(env, port)
    time.sleep(1.0)
    c.ok(len(traffic_after(b, time.monotonic() - 1.0)) > 0, "b takes its share of the load before failing")

    # b starts failing its check (but still serves requests).
    t_fail = time.monotonic()
    b.set_status("/hc", 500)
    e = albd.wait_health("web", bkey, "unhealthy", timeout=scaled(8))
    t_down = time.monotonic()
    c.require(e is not None, "b is reported unhealthy after failing its check")
    took = t_down - t_fail
    print(f"b marked down {took:.2f} s after its check began to fail (interval 1 s, threshold 2)")
    c.within(took, 0.9, scaled(4.0), "b is marked down after two failed probes, 1 to ~3 s")
    c.eq(e["lastProbe"]["result"], "failure", "last probe of b is a failure")
    c.eq(e["lastProbe"]["reason"], "status code 500", "the reason names the status code")
    c.ok(e["lastProbe"]["time"].endswith("Z"), "the last probe has a UTC time", None, e["lastProbe"]["time"])
    c.eq(e["up"], False, "b is not up")
    c.eq(e["transitions"], 1, "one transition so far")
    c.eq(degraded(albd), ("ServersDown", f"1 of 3 servers down: {bkey} (status code 500)"),
         "/status gives the group a Degraded condition naming b and why")
    c.eq(albd.metric(f'albd_server_up{{group="web",server="{bkey}"}}'), 0.0, "albd_server_up of b is 0")
    c.eq(albd.metric(f'albd_server_up{{group="web",server="127.0.0.1:{a.port}"}}'), 1.0,
         "albd_server_up of a is 1")
    c.eq(albd.metric(f'albd_health_transitions_total{{group="web",server="{bkey}"}}'), 1.0,
         "albd_health_transitions_total of b is 1")

    # Requests in flight when the verdict flipped may still land; none after.
    time.sleep(1.5)
    late = traffic_after(b, t_down + 0.2)
    c.eq(len(late), 0, "no request reaches b once it is down")
    c.ok(len(traffic_after(a, t_down + 0.2)) > 0 and len(traffic_after(x, t_down + 0.2)) > 0,
         "a and c carry the load meanwhile")

    # b's check passes again: back after two good probes.
    t_ok = time.monotonic()
    b.set_status("/hc", None)
    e = albd.wait_health("web", bkey, "healthy", timeout=scaled(8))
    t_up = time.monotonic()
    c.require(e is not None, "b is healthy again after its check passes")
    print(f"b back {t_up - t_ok:.2f} s after its check passed (threshold 2)")
    c.within(t_up - t_ok, 0.9, scaled(4.0), "b comes back after two good probes, not one")
    c.eq(e["transitions"], 2, "two transitions: down and up")
    c.eq(degraded(albd), None, "the group is not Degraded any more")
    time.sleep(1.0)
    c.ok(len(traffic_after(b, t_up + 0.1)) > 0, "b receives requests again")
    load.stop()
    print(f"load: {load.ok} requests answered by a backend, {len(load.failures)} failed")
    c.ok(load.ok > 200, "the load ran", "> 200", load.ok)
    c.eq(load.failures[:5], [], "no client request failed")
    c.eq(albd.metric(f'albd_health_transitions_total{{group="web",server="{bkey}"}}'), 2.0,
         "albd_health_transitions_total of b is 2")
    albd.check_clean_exit(c)


run("health_checks_take_failing_servers_out", body)
