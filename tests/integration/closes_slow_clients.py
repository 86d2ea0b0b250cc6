#!/usr/bin/env python3
"""Slowloris defences: a client trickling its request head one byte at a
time is cut off with 408 by the head deadline (limits.headerTimeoutSeconds,
counted from the first byte, not reset by each byte), and one trickling its
body below limits.minBodyRateBytesPerSecond is cut off with 408 too; a
normal client on the same listener is served."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (free_ports, http_listener, instance, read_response, run, scaled,  # noqa: E402
                          server_group, socket, wait_closed)

HEAD_S = 2
WINDOW_S = 5  # the fixed body-rate window (proxy/h1.c)


def trickle(sock, data, interval, until):
    """Send data one byte per interval until the peer answers or closes, or
    until `until` seconds passed. Returns seconds spent."""
    t0 = time.monotonic()
    sock.setblocking(True)
    for b in data:
        if time.monotonic() - t0 > until:
            break
        try:
            sock.sendall(bytes([b]))
        except OSError:
            break
        sock.settimeout(interval)
        try:
            if sock.recv(1, socket.MSG_PEEK):
                break
        except (socket.timeout, TimeoutError):
            pass
        except OSError:
            break
    return time.monotonic() - t0


def body(env):
    c = env.check
    be = env.backend("a")
    (port,) = free_ports(1)
    env.write_manifests(instance(), server_group("web", [be.addr]),
                        http_listener("web", port, "web", idleTimeoutSeconds=30, requestTimeoutSeconds=30,
                                      limits={"headerTimeoutSeconds": HEAD_S, "minBodyRateBytesPerSecond": 1000}))
    albd = env.start_albd(ports=(port,))

    # Head trickled at 4 bytes/s: the idle timer (30 s) would never fire.
    s = socket.create_connection(("127.0.0.1", port))
    head = b"GET /slow HTTP/1.1\r\nHost: albd.test\r\n" + b"X-Pad: " + b"p" * 200 + b"\r\n\r\n"
    spent = trickle(s, head, 0.25, scaled(HEAD_S * 4))
    f = s.makefile("rb")
    s.settimeout(scaled(5))
    try:
        _, st, hdrs, _, _ = read_response(f)
    except (OSError, ValueError) as ex:
        st, hdrs = repr(ex), []
    c.eq(st, 408, "a head trickled one byte at a time is answered 408")
    c.within(spent, HEAD_S * 0.8, scaled(HEAD_S + 2), "... by the head deadline from its first byte")
    c.eq(wait_closed(s, scaled(3))[0], True, "... and the connection is closed")
    f.close()
    s.close()
    c.eq(be.count(), 0, "the backend never saw the slow head")

    # Body trickled at 4 bytes/s against a minimum of 1000 bytes/s.
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /slow-body HTTP/1.1\r\nHost: albd.test\r\nContent-Length: 100000\r\n\r\n" + b"x" * 10)
    spent = trickle(s, b"y" * 1000, 0.25, scaled(WINDOW_S * 4))
    f = s.makefile("rb")
    s.settimeout(scaled(5))
    try:
        _, st, hdrs, _, _ = read_response(f)
    except (OSError, ValueError) as ex:
        st = repr(ex)
    c.eq(st, 408, "a body trickled below the minimum rate is answered 408")
    c.within(spent, WINDOW_S * 0.8, scaled(WINDOW_S + 3), "... after one rate window")
    c.eq(wait_closed(s, scaled(3))[0], True, "... and the connection is closed")
    f.close()
    s.close()
    c.ok(be.count() <= 1, "the backend saw at most the one slow request", "<= 1", be.count())

    # A normal client is served.
    st, _, _ = env.http("POST", port, "/fast", body=b"z" * 200000)
    c.eq(st, 200, "a client sending at full speed is served")
    albd.check_clean_exit(c)


run("closes_slow_clients", body)
