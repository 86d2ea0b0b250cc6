#!/usr/bin/env python3
"""A backend connection that closes after the request went out, before any
response byte, is retried on another server only for a request that is
safe to repeat (GET, HEAD, OPTIONS, PUT, DELETE without a body sent): a POST
gets 502 and the second server never sees it, over HTTP/1.1 and HTTP/2. A
server that refuses the connection (nothing was sent) is skipped for every
method."""
import os
import socket
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (certificate, echo_of, free_ports, http_listener, https_listener,  # noqa: E402
                          instance, run, scaled, server_group)


class Dropper:
    """Accepts, reads what the proxy sends, closes without answering; counts
    the requests it swallowed by their request lines."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.addr = self.sock.getsockname()
        self.lock = threading.Lock()
        self.lines = []
        self.stopped = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(scaled(2))
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    d = conn.recv(65536)
                    if not d:
                        break
                    data += d
            except OSError:
                pass
            if data:
                with self.lock:
                    self.lines.append(data.split(b"\r\n", 1)[0].decode(errors="replace"))
            conn.close()

    def seen(self):
        with self.lock:
            return list(self.lines)

    def stop(self):
        self.stopped = True
        self.sock.close()


def body(env):
    c = env.check
    certs = env.certs()
    drop = Dropper()
    good = env.backend("good")
    (refused,) = free_ports(1)  # nothing listens there
    p_h1, p_h2, p_ref = free_ports(3)
    env.write_manifests(
        instance(),
        certificate("rsa", certs.rsa),
        # The dropper is tried first: weight 100 against 1 (smooth weighted
        # round robin picks the heavy server first on every worker).
        server_group("drop-first", [drop.addr + (100,), good.addr + (1,)]),
        server_group("refused-first", [("127.0.0.1", refused, 100), good.addr + (1,)]),
        http_listener("h1", p_h1, "drop-first"),
        https_listener("h2", p_h2, "rsa", "drop-first", http2=True),
        http_listener("ref", p_ref, "refused-first"))
    albd = env.start_albd(ports=(p_h1, p_h2, p_ref))

    def good_paths():
        return [r["path"] for r in good.requests]

    # HTTP/1.1.
    for method, path, data, want in (("POST", "/h1-post", b"", 502), ("POST", "/h1-post-body", b"abc", 502),
                                     ("PATCH", "/h1-patch", b"", 502), ("GET", "/h1-get", None, 200),
                                     ("HEAD", "/h1-head", None, 200), ("DELETE", "/h1-delete", None, 200),
                                     ("PUT", "/h1-put", b"", 200)):
        st, _, b = env.http(method, p_h1, path, body=data)
        c.eq(st, want, f"HTTP/1.1 {method} after a connection closed unanswered: {want}")
        if want == 200 and method != "HEAD":
            c.eq(echo_of(b).get("path"), path, f"HTTP/1.1 {method} was served by the second server")
    # HTTP/2.
    for method, path, args, want in (("POST", "/h2-post", ["-d", ""], 502),
                                      ("POST", "/h2-post-body", ["-d", "abc"], 502),
                                      ("GET", "/h2-get", [], 200)):
        code, out, err = env.curl(env.url(p_h2, path), "--http2", "-X", method, *args)
        # With a body still in flight, the 502 ends the stream early and
        # curl may report the stream reset (92) instead of the status.
        fine = code == want or (args[1:] == ["abc"] and code == 0 and "(92)" in err)
        c.ok(fine, f"HTTP/2 {method} {path} after a connection closed unanswered: {want}", want,
             (code, err))
        if want == 200:
            c.eq(echo_of(out).get("path"), path, f"HTTP/2 {method} was served by the second server")

    seen = drop.seen()
    for path in ("/h1-post", "/h1-post-body", "/h1-patch", "/h2-post", "/h2-post-body", "/h1-get", "/h2-get"):
        c.ok(any(f" {path} " in line for line in seen), f"{path} went to the first (closing) server first",
             "seen there", seen)
    c.eq(sorted(p for p in good_paths() if "post" in p or "patch" in p), [],
         "no POST or PATCH reached the second server")
    c.eq(sorted(good_paths()), sorted(["/h1-get", "/h1-head", "/h1-delete", "/h1-put", "/h2-get"]),
         "the idempotent requests reached the second server, once each")

    # Nothing was sent when the connect failed: a POST moves on too.
    st, _, b = env.http("POST", p_ref, "/ref-post", body=b"xyz")
    c.eq((st, echo_of(b).get("path"), echo_of(b).get("body_len")), (200, "/ref-post", 3),
         "a POST whose first server refused the connection is served by the next one")

    albd.check_clean_exit(c)
    drop.stop()


run("retries_only_idempotent_requests", body)
