#!/usr/bin/env python3
"""HTTP/2 cookie fields are joined into one `cookie` header for the HTTP/1.1
backend (RFC 9113 8.2.3), however large: two and then five cookie fields
whose joined value is larger than everything else in the header block (the
join appends inside the buffer that holds the fields, which must grow while
it reads them). The backend gets exactly one cookie header with every value
in order, "; "-joined; albd (under ASan too) stays up and serves the next
request."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import certificate, echo_header, free_ports, https_listener, instance, run, scaled, server_group  # noqa: E402
import h2_frames as h2  # noqa: E402


def one_request(env, port, sid, path, cookies):
    """Status of one HTTP/2 request carrying the given cookie fields."""
    try:
        conn = h2.H2Conn.connect(env, port)
    except OSError as e:
        return f"connect failed: {e}"
    try:
        conn.request(sid, "GET", env.host, path, extra=[("cookie", v) for v in cookies])
        for f in conn.frames(scaled(5)):
            if f.type == h2.HEADERS and f.stream == sid:
                return h2.status_of(f.payload)
            if f.type in (h2.RST_STREAM, h2.GOAWAY):
                return f"frame {f.type}"
        return "no answer" if not conn.closed else "connection closed"
    finally:
        conn.close()


def body(env):
    c = env.check
    certs = env.certs()
    be = env.backend("a")
    (port,) = free_ports(1)
    env.write_manifests(instance(), certificate("rsa", certs.rsa), server_group("web", [be.addr]),
                        https_listener("main", port, "rsa", "web", http2=True))
    albd = env.start_albd(ports=(port,))

    cases = [
        ("/two", ["a=" + "x" * 3000, "b=" + "y" * 3000]),
        ("/five", [f"c{i}=" + chr(ord("k") + i) * (900 * (i + 1)) for i in range(5)]),
        ("/small", ["s=1", "t=2", "u=3"]),
    ]
    for path, cookies in cases:
        n0 = be.count()
        st = one_request(env, port, 1, path, cookies)
        c.eq(st, 200, f"{path}: {len(cookies)} cookie fields ({sum(map(len, cookies))} bytes) get 200")
        c.ok(albd.alive(), f"{path}: albd is still running", "alive", albd.stderr()[-1500:])
        if not albd.alive():
            return
        got = [r for r in be.requests[n0:] if r["path"] == path]
        c.eq(len(got), 1, f"{path}: the request reached the backend once")
        if got:
            values = echo_header({"headers": got[0]["headers"]}, "cookie")
            c.eq(len(values), 1, f"{path}: the backend sees one cookie header")
            c.ok(values == ["; ".join(cookies)], f"{path}: ... holding every value in order, '; '-joined",
                 "; ".join(cookies)[:80] + "...", [v[:80] + "..." for v in values])

    code, _, _ = env.curl(env.url(port, "/after"), "--http2")
    c.eq(code, 200, "the next client is served")
    albd.check_clean_exit(c)


run("http2_joins_large_cookies", body)
