#!/usr/bin/env python3
"""Issue 10's bar for health checks: three backends (separate processes)
under keep-alive load through albd, health checks every 1 s with
thresholds 2; SIGKILL one backend and report the client requests that
failed and how long until albd stopped choosing the killed server (passive
ejection: /status "up": false) and until its probes judged it down.

    ALBD=build/albd python3 bench/health_kill.py [seconds-after-kill] [clients]
    BENCH_CLIENT=h2load ...   h2load --h1 keep-alive clients instead of python threads

Loopback only; prints one summary line per figure."""
import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration", "lib"))
from albd_harness import Env, free_ports, http_listener, instance, server_group  # noqa: E402

BACKEND = r'''
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def log_message(self, *a): pass
    def do_GET(self):
        b = sys.argv[2].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(b)
    do_HEAD = do_GET
class S(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
S(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
'''


def main():
    after = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    n_threads = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    env = Env("health_kill")
    with env:
        ports = free_ports(4)
        bports, lport = ports[:3], ports[3]
        procs = []
        for i, p in enumerate(bports):
            procs.append(subprocess.Popen([sys.executable, "-c", BACKEND, str(p), f"b{i}"]))
        time.sleep(0.5)
        hc = {"enabled": True, "path": "/", "intervalSeconds": 1, "timeoutSeconds": 1,
              "healthyThreshold": 2, "unhealthyThreshold": 2}
        env.write_manifests(instance(), server_group("web", [("127.0.0.1", p) for p in bports], healthCheck=hc),
                            http_listener("web", lport, "web"))
        albd = env.start_albd(ports=(lport,), workers=2)
        key = f"127.0.0.1:{bports[1]}"
        for p in bports:
            albd.wait_health("web", f"127.0.0.1:{p}", "healthy")

        stop = threading.Event()
        lock = threading.Lock()
        log = []  # (time, backend or None, detail)

        def client():
            conn = env.connection(lport, tls=False, timeout=10)
            while not stop.is_set():
                try:
                    conn.request("GET", "/")
                    r = conn.getresponse()
                    b = r.read().decode()
                    with lock:
                        log.append((time.monotonic(), b if r.status == 200 else None, r.status))
                except OSError as ex:
                    with lock:
                        log.append((time.monotonic(), None, repr(ex)))
                    conn.close()
                    conn = env.connection(lport, tls=False, timeout=10)
            conn.close()

        use_h2load = os.environ.get("BENCH_CLIENT") == "h2load"
        h2 = None
        if use_h2load:
            h2 = subprocess.Popen(["h2load", "--h1", "-c", str(n_threads), "-D", str(int(after + 2)),
                                   f"http://127.0.0.1:{lport}/"], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)
            threads = []
        else:
            threads = [threading.Thread(target=client, daemon=True) for _ in range(n_threads)]
        for t in threads:
            t.start()
        time.sleep(2.0)
        t_kill = time.monotonic()
        procs[1].send_signal(signal.SIGKILL)
        t_up_false = t_probe_down = None
        while time.monotonic() - t_kill < after:
            e = albd.server_health().get(("web", key))
            now = time.monotonic()
            if e and not e["up"] and t_up_false is None:
                t_up_false = now
            if e and e["health"] == "unhealthy" and not e["ejected"] and t_probe_down is None:
                t_probe_down = now
            time.sleep(0.01)
        stop.set()
        for t in threads:
            t.join(10)
        if h2:
            out = h2.communicate(timeout=after + 30)[0].decode()
            for line in out.splitlines():
                if line.startswith(("requests:", "status codes:", "finished in")):
                    print("h2load", line.strip())
            print(f"killed server out of rotation (/status up=false) after: "
                  f"{'never' if t_up_false is None else f'{(t_up_false - t_kill) * 1000:.0f} ms'}")
            print(f"probes judged it down after: "
                  f"{'never' if t_probe_down is None else f'{(t_probe_down - t_kill) * 1000:.0f} ms'}")
            albd.stop()
            for p in procs:
                p.kill()
                p.wait()
            return
        before = [x for x in log if x[0] < t_kill]
        post = [x for x in log if x[0] >= t_kill]
        failed = [x for x in post if x[1] is None]
        last_b1 = max((x[0] for x in post if x[1] == "b1"), default=None)
        rate = len(log) / (log[-1][0] - log[0][0]) if len(log) > 1 else 0
        print(f"load: {n_threads} keep-alive clients, {len(before)} requests before the kill, "
              f"{len(post)} in {after:.0f} s after, ~{rate:.0f} req/s")
        print(f"failed client requests after SIGKILL: {len(failed)} "
              f"{sorted(set(str(x[2]) for x in failed))[:5]}")
        print(f"last response from the killed backend: "
              f"{'none after the kill' if last_b1 is None else f'{(last_b1 - t_kill) * 1000:.0f} ms after'}")
        print(f"killed server out of rotation (/status up=false) after: "
              f"{'never' if t_up_false is None else f'{(t_up_false - t_kill) * 1000:.0f} ms'}")
        print(f"probes judged it down (unhealthy, not just ejected) after: "
              f"{'never' if t_probe_down is None else f'{(t_probe_down - t_kill) * 1000:.0f} ms'}")
        st = json.loads(albd.admin_get("/status")[1])
        print("status:", json.dumps([s for g in st["serverGroups"] for s in g["servers"] if s["server"] == key]))
        albd.stop()
        for p in procs:
            p.kill()
            p.wait()


main()
