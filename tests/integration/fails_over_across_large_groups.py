#!/usr/bin/env python3
"""A request fails over across every server of its group, however many,
and tries each at most once (no 64-server limit on what a request
remembers as tried): 99 servers accept and close at once (the backend dies
before answering), the 99th of them (beyond 64) with weight 100; a GET to
the group with one answering server after them reaches it having tried
each failing server at most once, and a GET to the group without one gets
502 after exactly one attempt on each of the 99."""
import os
import selectors
import socket
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import echo_of, free_ports, http_listener, instance, run, server_group  # noqa: E402

N = 100


class Closers:
    """n listening sockets that accept and close at once, counting accepts."""

    def __init__(self, n):
        self.sel = selectors.DefaultSelector()
        self.socks, self.counts = [], {}
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            s.listen(64)
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ)
            self.socks.append(s)
            self.counts[s.getsockname()[1]] = 0
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping:
            for key, _ in self.sel.select(timeout=0.1):
                try:
                    conn, _ = key.fileobj.accept()
                except OSError:
                    continue
                # Counted before the close: albd learns of the attempt's end
                # only from the close, so every attempt it made is counted
                # by the time it answers.
                with self.lock:
                    self.counts[key.fileobj.getsockname()[1]] += 1
                conn.close()

    def ports(self):
        return [s.getsockname()[1] for s in self.socks]

    def snapshot(self):
        with self.lock:
            return dict(self.counts)

    def stop(self):
        self.stopping = True
        self.thread.join(5)
        for s in self.socks:
            s.close()


def body(env):
    c = env.check
    live = env.backend("live")
    closers = Closers(N - 1)
    try:
        port, port_none = free_ports(2)
        dying = [("127.0.0.1", p, 1) for p in closers.ports()]
        dying[-1] = (*dying[-1][:2], 100)  # index 98: the scheduler's first choice
        env.write_manifests(
            instance(),
            server_group("big", dying + [(*live.addr, 1)], scheduler="Wrr"),
            server_group("none", dying),
            http_listener("big", port, "big"),
            http_listener("none", port_none, "none"))
        albd = env.start_albd(ports=(port, port_none), workers=1)

        # The first request of the only worker starts at the first server.
        st, _, body_ = env.http("GET", port, "/first")
        c.eq(st, 200, "the GET is answered despite the failing servers")
        c.eq(echo_of(body_).get("backend") if st == 200 else None, "live", "by the 100th server")
        counts = closers.snapshot()
        c.ok(max(counts.values()) <= 1, "no failing server was tried twice", seen=max(counts.values()))
        c.eq(live.count(), 1, "the live server saw the request once")

        before = closers.snapshot()
        st, _, _ = env.http("GET", port_none, "/")
        c.eq(st, 502, "no answering server among 99: 502")
        after = closers.snapshot()
        c.eq(sorted({after[p] - before[p] for p in after}), [1], "... after trying each once")
        c.ok(albd.alive(), "albd still serves")
        albd.check_clean_exit(c)
    finally:
        closers.stop()


run("fails_over_across_large_groups", body)
