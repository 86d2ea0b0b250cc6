#!/usr/bin/env python3
"""One Host / :authority check for HTTP/1.1 and HTTP/2: userinfo
("a@host"), a comma list, and a port that is not a number from 1 to 65535
(empty, 0, too large, not digits) are answered 400 on both protocols and
never reach the backend; valid names (with and without a port, IPv4,
[IPv6]) are served on both."""
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (certificate, echo_header, echo_of, free_ports, https_listener, instance,  # noqa: E402
                          read_response, run, scaled, server_group)
from h2_frames import status_of  # noqa: E402



def hpack_int(n, prefix_bits, first):
    """An HPACK integer with an N-bit prefix; first: the bits above it."""
    limit = (1 << prefix_bits) - 1
    if n < limit:
        return bytes([first | n])
    out = [first | limit]
    n -= limit
    while n >= 128:
        out.append(n % 128 + 128)
        n //= 128
    out.append(n)
    return bytes(out)


def hpack_literal(name, value):
    """A literal field without indexing, new name, no Huffman coding."""
    n, v = name.encode(), value.encode()
    return b"\x00" + hpack_int(len(n), 7, 0) + n + hpack_int(len(v), 7, 0) + v


def frame(typ, flags, sid, payload):
    return len(payload).to_bytes(3, "big") + bytes([typ, flags]) + sid.to_bytes(4, "big") + payload


def read_exact(s, n):
    b = b""
    while len(b) < n:
        d = s.recv(n - len(b))
        if not d:
            return None
        b += d
    return b


BAD = ["user@albd.test", "user:pw@albd.test:{port}", "albd.test,evil.example", "albd.test:99999",
       "albd.test:65536", "albd.test:0", "albd.test:", "albd.test:https", "albd.test:-1",
       "albd.test:{port}:1", "[::1", "[::1]x"]
# Refused by nghttp2 itself before albd sees them (RST_STREAM
# PROTOCOL_ERROR: whitespace and "/" are not authority characters): still
# 400 over HTTP/1.1, and never at the backend either way.
BAD_NGHTTP2 = ["albd.test, evil.example", "albd.test/x"]
GOOD = ["albd.test:{port}", "albd.test", "127.0.0.1:{port}", "[::1]:{port}", "ALBD.test:{port}", "albd.test:080"]


def body(env):
    c = env.check
    certs = env.certs()
    be = env.backend("a")
    (port,) = free_ports(1)
    env.write_manifests(instance(), certificate("rsa", certs.rsa), server_group("web", [be.addr]),
                        https_listener("web", port, "rsa", "web", http2=True))
    albd = env.start_albd(ports=(port,))

    def h1(authority, path):
        """HTTP/1.1 with Host: authority; the status (or a description)."""
        s = env.tls_socket(port)
        f = s.makefile("rb")
        try:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n".encode())
            return read_response(f)[1]
        except (OSError, ValueError) as ex:
            return f"no response ({ex!r})"
        finally:
            f.close()
            s.close()

    def h2(authority, path, hosts=()):
        """HTTP/2 with :authority: authority (None: none) and host fields,
        sent as is (a minimal client: nghttp and curl check the authority
        themselves); the status, or a description of what came instead."""
        ctx = env.tls_context()
        ctx.set_alpn_protocols(["h2"])
        raw = socket.create_connection(("127.0.0.1", port), timeout=scaled(10))
        s = ctx.wrap_socket(raw, server_hostname=env.host)
        try:
            if s.selected_alpn_protocol() != "h2":
                return "not h2"
            fields = [(":method", "GET"), (":scheme", "https"), (":path", path)]
            if authority is not None:
                fields.append((":authority", authority))
            fields += [("host", v) for v in hosts]
            block = b"".join(hpack_literal(k, v) for k, v in fields)
            s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b"") + frame(1, 0x5, 1, block))
            while True:
                head = read_exact(s, 9)
                if head is None:
                    return "closed"
                ln, typ, flags, sid = int.from_bytes(head[:3], "big"), head[3], head[4], \
                    int.from_bytes(head[5:9], "big") & 0x7FFFFFFF
                payload = read_exact(s, ln) if ln else b""
                if typ == 4 and not flags & 1:
                    s.sendall(frame(4, 1, 0, b""))
                elif typ == 3 and sid == 1:
                    return f"RST_STREAM {int.from_bytes(payload[:4], 'big')}"
                elif typ == 7:
                    return f"GOAWAY {int.from_bytes(payload[4:8], 'big')}"
                elif typ == 1 and sid == 1:
                    if flags & 0x8:  # padded
                        payload = payload[1:len(payload) - payload[0]]
                    if flags & 0x20:  # priority
                        payload = payload[5:]
                    # nghttp2 sends a status of the static table (200, 400)
                    # as an indexed field first (after any table size update).
                    return status_of(payload) or f"status field {payload[:4].hex()}"
        except (OSError, ValueError) as ex:
            return f"no response ({ex!r})"
        finally:
            s.close()

    cases = [(a.format(port=port), 400) for a in BAD] + [(a, "RST_STREAM 1") for a in BAD_NGHTTP2]
    for i, (a, want) in enumerate(cases):
        c.eq(h1(a, f"/bad-h1-{i}"), 400, f"HTTP/1.1 Host {a!r} is answered 400")
        c.eq(h2(a, f"/bad-h2-{i}"), want, f"HTTP/2 :authority {a!r} is answered {want}")
    # HTTP/2 with host fields instead of (or beside) :authority: the same
    # check as HTTP/1.1's Host, which a request needs (one).
    ok_host = f"albd.test:{port}"
    c.eq(h2(None, "/h2-host-bad", hosts=["user@albd.test"]), 400, "HTTP/2 host 'user@albd.test' is answered 400")
    c.eq(h2(None, "/h2-host-port", hosts=["albd.test:65536"]), 400, "HTTP/2 host with port 65536 is answered 400")
    c.eq(h2(ok_host, "/h2-auth-and-bad-host", hosts=["a@b"]), 400,
         "HTTP/2 :authority with a bad host field beside it is answered 400")
    # nghttp2 resets these itself; albd would answer 400 (like HTTP/1.1).
    refused = (400, "RST_STREAM 1")
    r = h2(None, "/h2-two-hosts", hosts=[ok_host, "evil.example"])
    c.ok(r in refused, "HTTP/2 two host fields (no :authority) are refused, like two Host headers over HTTP/1.1",
         refused, r)
    r = h2(None, "/h2-no-host")
    c.ok(r in refused, "HTTP/2 without :authority or host is refused, like HTTP/1.1 without Host", refused, r)
    c.eq([r["path"] for r in be.requests], [], "no request with a bad authority reached the backend")
    c.eq(h2(None, "/h2-host-only", hosts=[ok_host]), 200, "HTTP/2 with one valid host field and no :authority is served")
    c.eq([echo_header({"headers": r["headers"]}, "Host") for r in be.requests], [[ok_host]],
         "its host field reaches the backend as Host")

    for i, a in enumerate(GOOD):
        a = a.format(port=port)
        n = be.count()
        c.eq(h1(a, f"/good-h1-{i}"), 200, f"HTTP/1.1 Host {a!r} is served")
        c.eq(h2(a, f"/good-h2-{i}"), 200, f"HTTP/2 :authority {a!r} is served")
        hosts = [echo_header({"headers": r["headers"]}, "Host") for r in be.requests[n:]]
        c.eq(hosts, [[a], [a]], f"{a!r} reaches the backend as its Host on both protocols")

    albd.check_clean_exit(c)


run("rejects_bad_authority_on_both_protocols", body)
