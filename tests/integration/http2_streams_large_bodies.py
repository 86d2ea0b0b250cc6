#!/usr/bin/env python3
"""64 MiB through HTTP/2 both ways (curl --http2): the upload's digest is
checked at the backend, the download's at the client. A client that opens
a huge flow-control window and then stops reading does not grow albd's
memory (albd stops reading the backend instead), and gets every byte once
it reads again."""
import os
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (SANITIZE, MiB, certificate, echo_of, free_ports, hashlib,  # noqa: E402
                          https_listener, instance, pattern_chunks, pattern_sha256, proc_mem_kib, run,
                          scaled, server_group)
import h2_frames as h2  # noqa: E402

SIZE = 64 * MiB
BOUND_KIB = (64 if SANITIZE else 24) * 1024


def body(env):
    c = env.check
    certs = env.certs()
    be = env.backend("a")
    (port,) = free_ports(1)
    env.write_manifests(instance(), certificate("rsa", certs.rsa), server_group("web", [be.addr]),
                        https_listener("web", port, "rsa", "web", http2=True, requestTimeoutSeconds=120,
                                       idleTimeoutSeconds=120))
    extra = None
    if SANITIZE:
        extra = {"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "detect_leaks=1") + ":quarantine_size_mb=8"}
    albd = env.start_albd(ports=(port,), extra_env=extra)
    for _ in range(3):
        env.curl(env.url(port, "/warm"), "--http2")
    rss0 = proc_mem_kib(albd.pid, "VmRSS")
    limit = scaled(60)

    upload = os.path.join(env.dir, "upload.bin")
    with open(upload, "wb") as f:
        for piece in pattern_chunks(SIZE):
            f.write(piece)
    want = pattern_sha256(SIZE)

    # 1. Upload.
    t = time.monotonic()
    code, out, err = env.curl(env.url(port, "/up"), "--http2", "-T", upload, "-X", "POST", timeout=limit)
    e = echo_of(out)
    c.eq(code, 200, "a 64 MiB HTTP/2 upload answers 200")
    c.eq((e.get("body_len"), e.get("body_sha256")), (SIZE, want), "the upload arrives intact at the backend")
    print(f"  upload {time.monotonic() - t:.1f}s {err.strip()}")
    os.unlink(upload)

    # 2. Download, hashed as curl writes it.
    t = time.monotonic()
    argv = ["curl", "-sS", "--http2", "--max-time", str(int(limit)), "--cacert", certs.ca.cert, "--resolve",
            f"{env.host}:{port}:127.0.0.1", env.url(port, f"/dl?bytes={SIZE}")]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    hh, n = hashlib.sha256(), 0
    try:
        while True:
            b = p.stdout.read(MiB)
            if not b:
                break
            hh.update(b)
            n += len(b)
        p.wait(timeout=limit)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    c.eq((n, hh.hexdigest()), (SIZE, want), "a 64 MiB HTTP/2 download arrives intact")
    print(f"  download {time.monotonic() - t:.1f}s")

    # 3. A client that allows everything (2^31-1 windows) and stops reading.
    conn = h2.H2Conn.connect(env, port, settings={h2.SETTINGS_INITIAL_WINDOW_SIZE: 0x7FFFFFFF},
                             window=0x7FFFFFFF - 65535)
    conn.request(1, "GET", env.host, f"/dl?bytes={SIZE}&chunked=1")
    time.sleep(scaled(2))
    grown = proc_mem_kib(albd.pid, "VmRSS") - rss0
    print(f"  RSS growth while the client does not read: {grown} KiB")
    c.ok(grown < BOUND_KIB, "albd RSS stays bounded while an HTTP/2 client does not read",
         f"< {BOUND_KIB} KiB growth", f"{grown} KiB")
    hh, n, status, ended = hashlib.sha256(), 0, None, False
    for f in conn.frames(limit):
        if f.stream != 1:
            continue
        if f.type == h2.HEADERS and status is None:
            status = h2.status_of(f.payload)
        elif f.type == h2.DATA:
            hh.update(f.payload)
            n += len(f.payload)
        if f.flags & h2.END_STREAM:
            ended = True
            break
    conn.close()
    c.eq((status, n, hh.hexdigest(), ended), (200, SIZE, want, True),
         "the paused client then gets the whole body, intact")
    hwm = proc_mem_kib(albd.pid, "VmHWM") - rss0
    print(f"  peak RSS growth: {hwm} KiB")
    c.ok(hwm < BOUND_KIB, "albd peak RSS stays within the bound", f"< {BOUND_KIB} KiB", f"{hwm} KiB")
    albd.check_clean_exit(c)


run("http2_streams_large_bodies", body)
