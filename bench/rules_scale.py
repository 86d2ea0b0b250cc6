#!/usr/bin/env python3
"""Forwarding rules at scale (issue 11's Bar), on one albd in one run:
requests/s and CPU per request on a listener holding N host+path rules
against a listener holding one, alternating runs of wrk; the time to apply
a one-rule change on the N-rule listener (albd's own "applied generation"
line); and memory per rule (RSS with the N rules against without them).
Rules answer with a fixed response, so the numbers are albd's own routing
and answering, not a backend's.

usage: ALBD=build/albd python3 bench/rules_scale.py [N] [seconds per run] [rounds]"""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

ALBD = os.environ.get("ALBD", "build/albd")
N = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
SECS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 3


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def rule(i, content="ok"):
    return (f"    - {{name: r{i}, priority: {i + 1}, conditions: {{host: [h{i}.example.com], "
            f"path: [\"/p{i}/*\"]}}, actions: {{fixedResponse: {{code: 200, content: {content}}}}}}}\n")


def write(d, big, p_big, p_one, n, changed=None):
    text = ("apiVersion: albd/v1\nkind: Instance\nmetadata: {name: b}\nspec: {addresses: [127.0.0.1]}\n---\n"
            "apiVersion: albd/v1\nkind: Listener\nmetadata: {name: one}\nspec:\n"
            f"  protocol: HTTP\n  port: {p_one}\n"
            "  defaultAction: {fixedResponse: {code: 404}}\n  rules:\n" + rule(n // 2))
    if big:
        text += ("---\napiVersion: albd/v1\nkind: Listener\nmetadata: {name: big}\nspec:\n"
                 f"  protocol: HTTP\n  port: {p_big}\n"
                 "  defaultAction: {fixedResponse: {code: 404}}\n  rules:\n")
        text += "".join(rule(i, "changed" if i == changed else "ok") for i in range(n))
    tmp = os.path.join(d, ".m.tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, os.path.join(d, "m.yaml"))


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        v = f.read().rsplit(")", 1)[1].split()
    return int(v[11]) + int(v[12])


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def wrk(port, host, path):
    r = subprocess.run(["wrk", "-t1", "-c32", f"-d{SECS}s", "-H", f"Host: {host}",
                        f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True)
    m = re.search(r"Requests/sec:\s+([\d.]+)", r.stdout)
    n = re.search(r"(\d+) requests in", r.stdout)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", r.stdout)
    if bad:
        sys.exit(f"wrk saw non-2xx answers: {r.stdout}")
    return float(m.group(1)), int(n.group(1))


def start(d, log):
    p = subprocess.Popen([ALBD, "run", "-m", d, "-a", "off", "-w", "1"], stdout=log, stderr=log)
    return p


def wait_log(path, pattern, after, timeout=120):
    end = time.time() + timeout
    while time.time() < end:
        with open(path) as f:
            lines = f.read().splitlines()[after:]
        for line in lines:
            m = re.search(pattern, line)
            if m:
                return m
        time.sleep(0.05)
    sys.exit(f"no {pattern!r} in {path}")


def main():
    d = tempfile.mkdtemp(prefix="albd-rules-bench-")
    p_big, p_one = free_port(), free_port()
    logpath = os.path.join(d, "albd.log")
    # Memory: the same albd configuration without and with the N rules.
    write(d, False, p_big, p_one, N)
    log = open(logpath, "w")
    a = start(d, log)
    wait_log(logpath, r"applied generation 1 ", 0)
    time.sleep(1)
    rss0 = rss_kib(a.pid)
    a.send_signal(signal.SIGTERM)
    a.wait()
    write(d, True, p_big, p_one, N)
    log = open(logpath, "w")
    a = start(d, log)
    m = wait_log(logpath, r"applied generation 1 .* in ([\d.]+) ms", 0)
    first_ms = float(m.group(1))
    time.sleep(1)
    rss1 = rss_kib(a.pid)
    print(f"rules: {N}; first load {first_ms:.0f} ms; RSS {rss0} KiB without, {rss1} KiB with: "
          f"{(rss1 - rss0) * 1024 / N:.0f} bytes per rule")
    mid = N // 2
    hz = os.sysconf("SC_CLK_TCK")
    res = {"one": [], "big": []}
    for r in range(ROUNDS):
        for name, port in (("one", p_one), ("big", p_big)):
            t0 = cpu_ticks(a.pid)
            rps, n = wrk(port, f"h{mid}.example.com", f"/p{mid}/x")
            cpu = (cpu_ticks(a.pid) - t0) / hz
            res[name].append((rps, cpu * 1e6 / n))
            print(f"round {r + 1} {name:>3}: {rps:9.0f} req/s, {cpu * 1e6 / n:6.2f} us CPU per request")
    for name in ("one", "big"):
        v = res[name]
        res[name] = (sum(x[0] for x in v) / len(v), sum(x[1] for x in v) / len(v))
    print(f"mean: 1 rule {res['one'][0]:.0f} req/s {res['one'][1]:.2f} us; {N} rules {res['big'][0]:.0f} req/s "
          f"{res['big'][1]:.2f} us; ratio req/s {res['big'][0] / res['one'][0]:.3f}, "
          f"CPU/request {res['big'][1] / res['one'][1]:.3f}")
    # A one-rule change on the N-rule listener.
    with open(logpath) as f:
        after = len(f.read().splitlines())
    times, cpus = [], []
    for k in range(3):
        t0 = cpu_ticks(a.pid)
        write(d, True, p_big, p_one, N, changed=mid + k)
        m = wait_log(logpath, rf"applied generation {k + 2} .* in ([\d.]+) ms", after)
        times.append(float(m.group(1)))
        time.sleep(0.5)
        cpus.append((cpu_ticks(a.pid) - t0) * 1000 / hz)
    print(f"one-rule change on the {N}-rule listener applied in " + ", ".join(f"{t:.0f}" for t in times) +
          " ms (wall); albd CPU " + ", ".join(f"{t:.0f}" for t in cpus) + " ms")
    a.send_signal(signal.SIGTERM)
    a.wait()


main()
