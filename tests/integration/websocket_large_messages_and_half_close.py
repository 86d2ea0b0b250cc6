#!/usr/bin/env python3
"""A WebSocket tunnel carries large messages both ways at once with
backpressure (the client sends while it receives the echo), and handles
half-close: when the backend shuts down its write side the client sees EOF
after the last frame and can still send to the backend; when the client
then shuts down its side, the backend sees EOF and the tunnel ends."""
import hashlib
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (SANITIZE, certificate, free_ports, http_listener, https_listener,  # noqa: E402
                          instance, run, scaled, server_group, socket)
from ws import OP_BINARY, OP_TEXT, WSBackend, WSClient, encode_frame  # noqa: E402

MiB = 1024 * 1024


def body(env):
    c = env.check
    certs = env.certs()
    wsb = WSBackend("ws")
    env.backends.append(wsb)
    port, p_http = free_ports(2)
    env.write_manifests(instance(), certificate("rsa", certs.rsa), server_group("ws", [wsb.addr]),
                        https_listener("wss", port, "rsa", "ws"), http_listener("ws-http", p_http, "ws"))
    albd = env.start_albd(ports=(port, p_http))

    size = (4 if SANITIZE else 16) * MiB
    count = 3
    for tls in (False, True):
        scheme = "wss" if tls else "ws"
        sock = env.tls_socket(port) if tls else socket.create_connection(("127.0.0.1", p_http))
        sock.settimeout(scaled(20))
        ws = WSClient(sock, env.host, f"/big-{scheme}")
        c.require(ws.status == 101, f"{scheme}: upgraded", 101, ws.status)
        ws.recv()  # greeting
        blobs = [os.urandom(size) for _ in range(count)]
        frames = [encode_frame(OP_BINARY, b, mask=True) for b in blobs]
        err = []

        def sender():
            try:
                for f in frames:
                    sock.sendall(f)
            except OSError as ex:
                err.append(ex)

        t0 = time.monotonic()
        got = []
        if tls:
            # One SSL object must not be read and written from two threads
            # at once (Python's ssl does not serialise them): over TLS each
            # message is sent, then its echo read. Both directions at once
            # are proven on the plain listener; the tunnel code is the same.
            # A failed send is the sender refused (err), a failed read is
            # the echo missing (got): each has its own check.
            try:
                for f in frames:
                    try:
                        sock.sendall(f)
                    except OSError as ex:
                        err.append(ex)
                        break
                    op, payload = ws.recv()
                    got.append((op, hashlib.sha256(payload).hexdigest()))
            except Exception as ex:  # noqa: BLE001 - reported below
                got.append(repr(ex))
        else:
            t = threading.Thread(target=sender, daemon=True)
            t.start()
            try:
                for _ in range(count):
                    op, payload = ws.recv()
                    got.append((op, hashlib.sha256(payload).hexdigest()))
            except Exception as ex:  # noqa: BLE001 - reported below
                got.append(repr(ex))
            t.join(scaled(20))
        want = [(OP_BINARY, hashlib.sha256(b).hexdigest()) for b in blobs]
        c.eq(got, want, f"{scheme}: {count} messages of {size // MiB} MiB echoed intact")
        c.eq(err, [], f"{scheme}: the sender was never refused")
        log_rate = count * size * 2 / MiB / max(time.monotonic() - t0, 1e-3)
        print(f"     {scheme}: {log_rate:.0f} MiB/s through the tunnel (both ways)")
        c.eq(ws.close(1000), 1000, f"{scheme}: close handshake after the large messages")
        ws.close_socket()

    # Half-close, on the plain listener (TCP FIN both ways).
    sock = socket.create_connection(("127.0.0.1", p_http))
    sock.settimeout(scaled(10))
    ws = WSClient(sock, env.host, "/half")
    ws.recv()
    ws.send("halfclose")
    c.eq(ws.recv(), (OP_TEXT, b"bye"), "the backend's last frame before its FIN arrives")
    c.ok(ws.eof(scaled(5)), "the backend's FIN reaches the client as EOF")
    ws.send("still here")
    ws.shutdown_write()
    end = time.monotonic() + scaled(5)
    while time.monotonic() < end and not wsb.after_halfclose:
        time.sleep(0.05)
    c.eq(wsb.after_halfclose, [b"still here"], "the client can still send after the backend's FIN")
    end = time.monotonic() + scaled(5)
    while time.monotonic() < end and wsb.closed_conns < 3:
        time.sleep(0.05)
    c.eq(wsb.closed_conns, 3, "the client's FIN reaches the backend and every tunnel ended")
    ws.close_socket()
    albd.check_clean_exit(c)


run("websocket_large_messages_and_half_close", body)
