#!/usr/bin/env python3
"""The listener's idle timeout applies to a WebSocket tunnel: traffic in
either direction keeps it open past the timeout, and no byte either way for
idleTimeoutSeconds closes both the client and the backend connection."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (free_ports, http_listener, instance, run, scaled, server_group,  # noqa: E402
                          socket)
from ws import OP_TEXT, WSBackend, WSClient  # noqa: E402

IDLE = 2


def body(env):
    c = env.check
    wsb = WSBackend("ws")
    env.backends.append(wsb)
    (p_http,) = free_ports(1)
    env.write_manifests(instance(), server_group("ws", [wsb.addr]),
                        http_listener("ws-http", p_http, "ws", idleTimeoutSeconds=IDLE))
    albd = env.start_albd(ports=(p_http,))

    sock = socket.create_connection(("127.0.0.1", p_http))
    sock.settimeout(scaled(10))
    ws = WSClient(sock, env.host, "/idle")
    c.require(ws.status == 101, "upgraded", 101, ws.status)
    ws.recv()
    # Active for twice the idle timeout: a message every half timeout.
    start = time.monotonic()
    alive = True
    t0 = time.monotonic()
    while time.monotonic() - start < 2 * IDLE:
        ws.send("tick")
        try:
            alive = alive and ws.recv() == (OP_TEXT, b"tick")
        except Exception:  # noqa: BLE001
            alive = False
            break
        t0 = time.monotonic()  # the last byte either way
        time.sleep(IDLE / 4)
    c.ok(alive, f"a tunnel with traffic stays open past the {IDLE} s idle timeout")
    # Now idle.
    closed = ws.eof(scaled(IDLE * 4))
    waited = time.monotonic() - t0
    c.ok(closed, "an idle tunnel is closed")
    c.within(waited, IDLE * 0.8, scaled(IDLE * 2 + 1), "... after about the idle timeout")
    end = time.monotonic() + scaled(5)
    while time.monotonic() < end and wsb.closed_conns < 1:
        time.sleep(0.05)
    c.eq(wsb.closed_conns, 1, "the backend connection of the idle tunnel is closed too")
    ws.close_socket()
    albd.check_clean_exit(c)


run("websocket_idle_timeout", body)
