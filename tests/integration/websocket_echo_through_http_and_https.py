#!/usr/bin/env python3
"""WebSocket (RFC 6455) through albd on an HTTP and an HTTPS (WSS) listener,
on by default: the Upgrade reaches the backend with Connection: Upgrade and
Upgrade: websocket, the 101 comes back with a valid Sec-WebSocket-Accept,
bytes the backend sends right after its 101 arrive, text / binary / ping
frames are echoed, the close handshake completes and the backend's TCP close
reaches the client. A backend that refuses the upgrade (403) gives the
client that ordinary response; a plain request still works afterwards."""
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (certificate, echo_of, free_ports, http_listener, https_listener,  # noqa: E402
                          instance, run, scaled, server_group, socket)
from ws import OP_BINARY, OP_PONG, OP_TEXT, WSBackend, WSClient, hval  # noqa: E402


def body(env):
    c = env.check
    certs = env.certs()
    wsb = WSBackend("ws")
    env.backends.append(wsb)
    port, p_http = free_ports(2)
    env.write_manifests(instance(), certificate("rsa", certs.rsa), server_group("ws", [wsb.addr]),
                        https_listener("wss", port, "rsa", "ws"), http_listener("ws-http", p_http, "ws"))
    albd = env.start_albd(ports=(port, p_http))

    for tls in (False, True):
        scheme = "wss" if tls else "ws"
        sock = env.tls_socket(port) if tls else socket.create_connection(("127.0.0.1", p_http),
                                                                         timeout=scaled(10))
        sock.settimeout(scaled(10))
        before = len(wsb.requests)
        ws = WSClient(sock, f"{env.host}:{port if tls else p_http}", f"/chat-{scheme}")
        c.eq(ws.status, 101, f"{scheme}: the upgrade is answered 101")
        c.ok(ws.accept_ok, f"{scheme}: Sec-WebSocket-Accept matches the key", None, ws.headers)
        c.eq([v.lower() for v in hval(ws.headers, "Upgrade")], ["websocket"], f"{scheme}: 101 carries Upgrade")
        c.eq([v.lower() for v in hval(ws.headers, "Connection")], ["upgrade"],
             f"{scheme}: 101 carries Connection: Upgrade")
        if ws.status != 101:
            ws.close_socket()
            continue
        req = wsb.requests[before]
        c.eq(req["path"], f"/chat-{scheme}", f"{scheme}: the backend got the upgrade request")
        c.eq([v.lower() for v in hval(req["headers"], "Upgrade")], ["websocket"],
             f"{scheme}: the backend saw Upgrade: websocket")
        c.eq([v.lower() for v in hval(req["headers"], "Connection")], ["upgrade"],
             f"{scheme}: the backend saw Connection: Upgrade")
        c.eq(len(hval(req["headers"], "Sec-WebSocket-Key")), 1, f"{scheme}: Sec-WebSocket-Key passed on")
        c.eq(len(hval(req["headers"], "X-Forwarded-For")), 1, f"{scheme}: X-Forwarded-For added as usual")
        c.eq(ws.recv(), (OP_TEXT, f"hello /chat-{scheme}".encode()),
             f"{scheme}: a frame the backend sent with its 101 arrives")
        ws.send("hi there")
        c.eq(ws.recv(), (OP_TEXT, b"hi there"), f"{scheme}: a text message is echoed")
        blob = os.urandom(70000)
        ws.send(blob)
        c.eq(ws.recv(), (OP_BINARY, blob), f"{scheme}: a 70 KB binary message is echoed")
        ws.send(b"ping!", op=9)
        c.eq(ws.recv(), (OP_PONG, b"ping!"), f"{scheme}: ping is answered with pong")
        c.eq(ws.close(1000), 1000, f"{scheme}: the close handshake completes")
        c.ok(ws.eof(scaled(5)), f"{scheme}: the backend's TCP close reaches the client")
        ws.close_socket()
    c.eq(wsb.unmasked, 0, "every client frame reached the backend masked (bytes untouched)")

    # A backend that refuses the upgrade: an ordinary response.
    sock = socket.create_connection(("127.0.0.1", p_http), timeout=scaled(10))
    ws = WSClient(sock, f"{env.host}:{p_http}", "/refuse?status=403")
    c.eq(ws.status, 403, "a refused upgrade gives the client the backend's 403")
    ws.close_socket()

    # The listeners still serve plain HTTP (the backend here speaks only
    # WebSocket and answers a plain request 400, which albd relays).
    st, _, b = env.https("GET", port, "/plain")
    c.eq(st, 400, "a plain request on the WSS listener is forwarded as usual")
    c.ok(b"not a websocket" in b, "... and the backend's answer relayed", None, b)
    albd.check_clean_exit(c)


run("websocket_echo_through_http_and_https", body)
