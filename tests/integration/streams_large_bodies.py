#!/usr/bin/env python3
"""256 MiB (64 MiB under ASan) uploads (Content-Length and chunked) and
downloads through HTTPS arrive intact, and albd's peak RSS stays far below
the body size: it streams with backpressure instead of buffering."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (SANITIZE, MiB, certificate, echo_of, free_ports, hashlib,  # noqa: E402
                          https_listener, instance, pattern_chunks, pattern_sha256, proc_mem_kib,
                          read_response, run, scaled, server_group)

SIZE = (64 if SANITIZE else 256) * MiB
# albd may hold buffers per connection, never the body: the bound is a
# quarter of the body (ASan: its allocator and shadow memory need more).
BOUND_KIB = (96 if SANITIZE else 64) * 1024


def body(env):
    c = env.check
    certs = env.certs()
    be = env.backend("a")
    (port,) = free_ports(1)
    env.write_manifests(instance(), certificate("rsa", certs.rsa), server_group("web", [be.addr]),
                        https_listener("web", port, "rsa", "web", requestTimeoutSeconds=600,
                                       idleTimeoutSeconds=600))
    extra = None
    if SANITIZE:  # a small quarantine, so freed buffers do not count as growth
        extra = {"ASAN_OPTIONS": (os.environ.get("ASAN_OPTIONS", "detect_leaks=1") + ":quarantine_size_mb=8")}
    albd = env.start_albd(ports=(port,), extra_env=extra)

    upload = os.path.join(env.dir, "upload.bin")
    with open(upload, "wb") as f:
        for piece in pattern_chunks(SIZE):
            f.write(piece)
    want = pattern_sha256(SIZE)

    # Warm up (TLS, pools, first allocations), then take the baseline.
    for _ in range(3):
        env.https("GET", port, "/warm")
    rss0 = proc_mem_kib(albd.pid, "VmRSS")
    print(f"albd RSS before: {rss0} KiB; body {SIZE // MiB} MiB")
    limit = scaled(90)

    def growth():
        return proc_mem_kib(albd.pid, "VmHWM") - rss0

    # 1. Upload with Content-Length.
    t = time.monotonic()
    code, out, err = env.curl(env.url(port, "/upload-cl"), "-T", upload, "-X", "POST", timeout=limit)
    e = echo_of(out)
    c.eq(code, 200, "Content-Length upload answers 200")
    c.eq((e.get("body_len"), e.get("body_sha256")), (SIZE, want), "Content-Length upload arrives intact")
    print(f"  upload CL {time.monotonic() - t:.1f}s, peak growth {growth()} KiB {err.strip()}")

    # 2. Chunked upload (curl reads stdin).
    t = time.monotonic()
    with open(upload, "rb") as stdin:
        argv = ["curl", "-sS", "--max-time", str(int(limit)), "--cacert", certs.ca.cert, "--resolve",
                f"{env.host}:{port}:127.0.0.1", "-T", "-", "-X", "POST", env.url(port, "/upload-chunked")]
        r = subprocess.run(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=limit + 10)
    e = echo_of(r.stdout)
    c.eq((e.get("body_len"), e.get("body_sha256")), (SIZE, want), "chunked upload arrives intact",)
    if not e:
        print("  curl:", r.stderr.decode(errors="replace"))
    print(f"  upload chunked {time.monotonic() - t:.1f}s, peak growth {growth()} KiB")

    # 3. Download (Content-Length), hashed as curl writes it.
    t = time.monotonic()
    argv = ["curl", "-sS", "--max-time", str(int(limit)), "--cacert", certs.ca.cert, "--resolve",
            f"{env.host}:{port}:127.0.0.1", env.url(port, f"/dl?bytes={SIZE}")]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    h, n = hashlib.sha256(), 0
    try:
        while True:
            b = p.stdout.read(1 * MiB)
            if not b:
                break
            h.update(b)
            n += len(b)
        p.wait(timeout=limit)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    c.eq((n, h.hexdigest()), (SIZE, want), "Content-Length download arrives intact")
    print(f"  download {time.monotonic() - t:.1f}s, peak growth {growth()} KiB")

    # 4. Chunked download by a client that stops reading for a while: albd
    #    must stop reading from the backend rather than buffer the body.
    t = time.monotonic()
    s = env.tls_socket(port, timeout=limit)
    f = s.makefile("rb")
    try:
        s.sendall(f"GET /dl?bytes={SIZE}&chunked=1 HTTP/1.1\r\nHost: {env.host}\r\n\r\n".encode())
        time.sleep(scaled(1.5))
        paused = proc_mem_kib(albd.pid, "VmRSS") - rss0
        c.ok(paused < BOUND_KIB, "albd RSS stays bounded while the client does not read",
             f"< {BOUND_KIB} KiB growth", f"{paused} KiB")
        h, count = hashlib.sha256(), [0]

        def sink(b):
            h.update(b)
            count[0] += len(b)
        ver, st, hdrs, _, framing = read_response(f, sink=sink)
        c.eq((st, count[0], h.hexdigest()), (200, SIZE, want), "paused chunked download arrives intact")
    finally:
        f.close()
        s.close()
    print(f"  paused download {time.monotonic() - t:.1f}s, peak growth {growth()} KiB")

    hwm = growth()
    c.ok(hwm < BOUND_KIB, "albd peak RSS (VmHWM) stays within the bound over its RSS before",
         f"< {BOUND_KIB} KiB", f"{hwm} KiB")
    os.unlink(upload)
    albd.check_clean_exit(c)


run("streams_large_bodies", body)
