#!/usr/bin/env python3
"""A WebSocket survives every configuration change that keeps its listener
(a server weight, another listener added), and when its listener is removed
it drains like a request in flight: it keeps working until the drain
deadline (--drain-timeout), then albd closes it."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (free_ports, http_listener, instance, run, scaled, server_group,  # noqa: E402
                          socket)
from ws import OP_TEXT, WSBackend, WSClient  # noqa: E402


def body(env):
    c = env.check
    wsb = WSBackend("ws")
    env.backends.append(wsb)
    p_ws, p_other = free_ports(2)
    drain = 2.0

    def manifests(idle, other, keep_ws=True):
        docs = [instance(), server_group("ws", [wsb.addr])]
        if keep_ws:
            docs.append(http_listener("ws", p_ws, "ws", idleTimeoutSeconds=idle))
        if other:
            docs.append(http_listener("other", p_other, "ws"))
        env.write_manifests(*docs)

    manifests(30, False)
    albd = env.start_albd(ports=(p_ws,), args=["--drain-timeout", str(drain)])
    sock = socket.create_connection(("127.0.0.1", p_ws), timeout=scaled(10))
    sock.settimeout(scaled(10))
    ws = WSClient(sock, f"{env.host}:{p_ws}", "/live")
    c.eq(ws.status, 101, "the upgrade is answered 101")
    c.eq(ws.recv(), (OP_TEXT, b"hello /live"), "the backend's greeting arrives")

    # Changes that keep the listener: its idle timeout, another listener.
    for i, (idle, other) in enumerate(((31, False), (32, True), (33, False))):
        g = albd.generation()
        manifests(idle, other)
        c.ok(albd.wait_generation(g, scaled(5)), f"change {i + 1} applied")
        ws.send(f"after change {i + 1}")
        c.eq(ws.recv(), (OP_TEXT, f"after change {i + 1}".encode()),
             f"the WebSocket still echoes after change {i + 1}")

    # Remove its listener: it drains until the deadline, then closes.
    g = albd.generation()
    manifests(33, False, keep_ws=False)
    c.ok(albd.wait_generation(g, scaled(5)), "the removal applied")
    t0 = time.monotonic()
    ws.send("while draining")
    c.eq(ws.recv(), (OP_TEXT, b"while draining"), "the WebSocket still works while its listener drains")
    c.ok(ws.eof(drain + scaled(5)), "the WebSocket is closed once the drain deadline passed")
    waited = time.monotonic() - t0
    c.ok(waited >= drain * 0.5, "... not before the deadline", f">= {drain * 0.5}", round(waited, 2))
    ws.close_socket()
    albd.check_clean_exit(c)


run("websocket_survives_reconfiguration", body)
