#!/usr/bin/env python3
"""Open connections end up spread evenly over the workers, whatever the
kernel's SO_REUSEPORT hash picked: a worker that accepts while it serves
clearly more connections than another hands the new one over. 96
keep-alive connections, opened one after the other or all at once, stay
open; the worker that served each (the middle field of X-Request-Id) is
counted, and /metrics counts the hand-overs. Without the hand-over the
hash splits 96 connections by more than 6 about every other run; with it
the counts stay within albd's margin (2 + 1/16 of a worker's
connections: at most 5 here)."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (echo_of, free_ports, http_listener, instance, run, scaled,  # noqa: E402
                          server_group)

N = 96
MAX_APART = 6


def worker_of(sock_file):
    """Reads one response (Content-Length) and returns the worker field of
    the X-Request-Id the backend saw, or None."""
    status = sock_file.readline()
    length = 0
    while True:
        line = sock_file.readline()
        if line in (b"\r\n", b""):
            break
        k, _, v = line.decode("latin-1").partition(":")
        if k.strip().lower() == "content-length":
            length = int(v.strip())
    body = sock_file.read(length)
    if not status.startswith(b"HTTP/1.1 200"):
        return None
    for k, v in echo_of(body).get("headers", []):
        if k.lower() == "x-request-id":
            parts = v.split("-")
            return parts[1] if len(parts) == 3 else None
    return None


def wait_no_connections(c, albd, what):
    """Closed connections count as load until albd has closed them too."""
    end = time.monotonic() + scaled(10)
    n = albd.metric("albd_connections_active")
    while n != 0 and time.monotonic() < end:
        time.sleep(0.05)
        n = albd.metric("albd_connections_active")
    c.eq(n, 0, f"{what}: albd closed every connection")


def spread(c, port, host, burst, what):
    socks, files, workers = [], [], {}
    try:
        for _ in range(N):
            s = socket.create_connection(("127.0.0.1", port), timeout=scaled(10))
            socks.append(s)
            files.append(s.makefile("rb"))
            if not burst:
                s.sendall(f"GET /one HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
                w = worker_of(files[-1])
                workers[w] = workers.get(w, 0) + 1
        if burst:
            for s in socks:
                s.sendall(f"GET /one HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            for f in files:
                w = worker_of(f)
                workers[w] = workers.get(w, 0) + 1
    finally:
        for f in files:
            f.close()
        for s in socks:
            s.close()
    counts = sorted(workers.get(w, 0) for w in ("0", "1"))
    c.eq(sum(counts), N, f"{what}: every connection was answered by worker 0 or 1", )
    c.ok(counts[1] - counts[0] <= MAX_APART, f"{what}: the workers serve as many connections give or take {MAX_APART}",
         f"<= {MAX_APART} apart", f"{counts[0]} and {counts[1]}")


def body(env):
    c = env.check
    be = env.backend("a")
    (port,) = free_ports(1)
    env.write_manifests(instance(), server_group("web", [be.addr]), http_listener("web", port, "web"))
    albd = env.start_albd(ports=(port,), workers=2)
    host = f"{env.host}:{port}"
    wait_no_connections(c, albd, "before")
    spread(c, port, host, False, "one after the other")
    wait_no_connections(c, albd, "after the first")
    spread(c, port, host, True, "all at once")
    handed = albd.metric("albd_connections_handed_over_total")
    c.ok(handed is not None and 0 <= handed <= 2 * N,
         "albd_connections_handed_over_total counts the hand-overs", f"0..{2 * N}", handed)
    albd.check_clean_exit(c)


run("spreads_connections_over_workers", body)
