#!/usr/bin/env python3
"""Draining and long-lived connections: a WebSocket to a server removed
from its group lives on while connectionDrain is off (it ends when the
client closes it); with connectionDrain on (timeoutSeconds 1) albd closes
it about 1 s after the server's removal, while a WebSocket to the kept
server goes on."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import free_ports, http_listener, instance, run, scaled, server_group, socket  # noqa: E402
from ws import OP_TEXT, WSBackend, WSClient  # noqa: E402


def body(env):
    c = env.check
    w1, w2 = WSBackend("w1"), WSBackend("w2")
    env.backends += [w1, w2]
    (port,) = free_ports(1)

    def write(servers, drain=None):
        spec = {"connectionDrain": {"enabled": True, "timeoutSeconds": drain}} if drain is not None else {}
        env.write_manifests(instance(), server_group("ws", [s.addr for s in servers], **spec),
                            http_listener("ws", port, "ws", idleTimeoutSeconds=60))

    def connect(path):
        sock = socket.create_connection(("127.0.0.1", port), timeout=scaled(10))
        sock.settimeout(scaled(10))
        ws = WSClient(sock, f"{env.host}:{port}", path)
        c.eq(ws.status, 101, f"{path}: the upgrade is answered 101")
        c.eq(ws.recv(), (OP_TEXT, f"hello {path}".encode()), f"{path}: the greeting arrives")
        return ws

    def reload(servers, drain=None):
        g = albd.generation()
        write(servers, drain)
        c.require(albd.wait_generation(g, scaled(5)) is not None, "the reload serves")
        return time.monotonic()

    write([w1, w2])
    albd = env.start_albd(ports=(port,), workers=1)  # one rotation: w1 first
    old = connect("/off")
    reload([w2])  # w1 removed, drain off
    time.sleep(scaled(1.5))
    old.send("still here")
    c.eq(old.recv(), (OP_TEXT, b"still here"), "drain off: the WebSocket to the removed server goes on")
    old.close_socket()

    reload([w1, w2], 1)  # a new rotation: w1 first, w2 second
    cut = connect("/cut")
    kept = connect("/kept")
    t0 = reload([w2], 1)
    c.ok(cut.eof(scaled(5)), "drain 1 s: albd closes the WebSocket to the removed server")
    waited = time.monotonic() - t0
    c.ok(0.5 <= waited < scaled(3), "drain 1 s: about 1 s after the removal", "0.5-3 s", round(waited, 2))
    kept.send("kept")
    c.eq(kept.recv(), (OP_TEXT, b"kept"), "drain 1 s: the WebSocket to the kept server goes on")
    cut.close_socket()
    kept.close_socket()
    albd.check_clean_exit(c)


run("draining_cuts_websockets_only_with_a_timeout", body)
