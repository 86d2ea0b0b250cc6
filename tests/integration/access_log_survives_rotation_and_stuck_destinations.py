#!/usr/bin/env python3
"""The access log under rotation and when its destination cannot take
lines, without ever slowing serving down:

1. Rotation under load: while clients send requests, the file is moved
   away (logrotate's `mv`) and albd gets SIGUSR1; every request is in the
   old or the new file, none lost, none twice, and the new file is used.
2. A FIFO nobody reads (a blocked pipe): every request is still answered,
   and the lines that do not fit are dropped and counted by
   albd_access_log_dropped_total.
3. A full disk (/dev/full: every write fails ENOSPC): every request is
   answered, each of its lines is counted dropped, albd warns once.
4. A path that cannot be opened is refused by the reconcile (located to
   the listener), not silently ignored.
albd exits 0 at the end with a destination still blocked."""
import os
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (free_ports, http_listener, instance, run, scaled,  # noqa: E402
                          server_group)


def count_lines(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return 0, set()
    paths = set(re.findall(rb'"path":"([^"]*)"', data))
    return data.count(b"\n"), paths


def metric(albd, name):
    st, body = albd.admin_get("/metrics")
    m = re.search(rb"^" + name.encode() + rb" (\d+)$", body, re.M)
    return int(m.group(1)) if m else None


def h2load(env, url, n, c=8):
    """h2load over HTTP/1.1; (succeeded, 2xx, seconds)."""
    t0 = time.monotonic()
    r = subprocess.run(["h2load", "--h1", "-n", str(n), "-c", str(c), url], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=scaled(120))
    took = time.monotonic() - t0
    out = r.stdout.decode(errors="replace")
    ok = re.search(r"(\d+) succeeded", out)
    two = re.search(r"status codes: (\d+) 2xx", out)
    return (int(ok.group(1)) if ok else -1, int(two.group(1)) if two else -1, took)


def body(env):
    c = env.check
    be = env.backend("be")
    p_rot, p_fifo, p_full, p_file = free_ports(4)
    rot = os.path.join(env.dir, "rot.log")
    fifo = os.path.join(env.dir, "stuck.fifo")
    plain = os.path.join(env.dir, "plain.log")
    os.mkfifo(fifo)
    # A reader that never reads: albd's open succeeds, its writes block.
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        env.write_manifests(
            instance(), server_group("web", [be.addr]),
            http_listener("rot", p_rot, "web", accessLog={"enabled": True, "path": rot}),
            http_listener("fifo", p_fifo, "web", accessLog={"enabled": True, "path": fifo}),
            http_listener("full", p_full, "web", accessLog={"enabled": True, "path": "/dev/full"}),
            http_listener("file", p_file, "web", accessLog={"enabled": True, "path": plain}))
        albd = env.start_albd(ports=(p_rot, p_fifo, p_full, p_file))

        # 1. Rotation under load.
        threads, per = 4, 150
        errors = []
        done = [0]
        lock = threading.Lock()

        # Each client sends a third of its requests, waits while the file
        # is moved and albd reopens it, then sends the rest: on a loaded
        # machine the clients could otherwise finish before the reopen.
        gate = threading.Event()

        def client(k):
            conn = env.connection(p_rot, tls=False)
            try:
                for i in range(per):
                    if i == per // 3:
                        gate.wait(scaled(30))
                    conn.request("GET", f"/r{k}-{i}")
                    r = conn.getresponse()
                    r.read()
                    if r.status != 200:
                        errors.append(r.status)
                    with lock:
                        done[0] += 1
            except Exception as ex:  # noqa: BLE001
                errors.append(repr(ex))
            finally:
                conn.close()

        ts = [threading.Thread(target=client, args=(k,)) for k in range(threads)]
        for t in ts:
            t.start()
        end = time.monotonic() + scaled(30)
        while done[0] < threads * (per // 3) and time.monotonic() < end:
            time.sleep(0.01)
        os.rename(rot, rot + ".1")
        albd.signal(signal.SIGUSR1)
        end = time.monotonic() + scaled(10)  # the reopen creates the new file
        while not os.path.exists(rot) and time.monotonic() < end:
            time.sleep(0.01)
        gate.set()
        for t in ts:
            t.join(scaled(60))
        total = threads * per
        c.eq(errors, [], "every request during the rotation answered 200")
        end = time.monotonic() + scaled(5)
        while time.monotonic() < end:
            n_old, paths_old = count_lines(rot + ".1")
            n_new, paths_new = count_lines(rot)
            if n_old + n_new >= total:
                break
            time.sleep(0.05)
        time.sleep(0.3)
        n_old, paths_old = count_lines(rot + ".1")
        n_new, paths_new = count_lines(rot)
        c.eq(n_old + n_new, total, "rotation: every request has its line in the old or the new file")
        c.eq(len(paths_old | paths_new), total, "rotation: no line lost, none twice")
        c.ok(n_new > 0 and n_old > 0, "rotation: lines before in the moved file, after in the new one", None,
             (n_old, n_new))
        c.ok("SIGUSR1" in albd.stderr(), "SIGUSR1 is logged")

        # A reference run on a normal file, for the timing comparison below.
        n = 4000
        ok, two, took_file = h2load(env, f"http://127.0.0.1:{p_file}/f", n)
        c.eq((ok, two), (n, n), f"{n} requests to a file-logging listener succeed")

        # 2. A FIFO nobody reads.
        dropped0 = metric(albd, "albd_access_log_dropped_total")
        ok, two, took_fifo = h2load(env, f"http://127.0.0.1:{p_fifo}/p", n)
        c.eq((ok, two), (n, n), f"blocked pipe: {n} requests all succeed")
        c.ok(took_fifo < max(4 * took_file, scaled(10)), "blocked pipe: serving is not slowed down",
             f"< 4 x {took_file:.2f}s", f"{took_fifo:.2f}s")
        time.sleep(0.5)
        dropped1 = metric(albd, "albd_access_log_dropped_total")
        c.ok(dropped0 is not None and dropped1 is not None and dropped1 > dropped0,
             "blocked pipe: dropped lines are counted", "> " + str(dropped0), dropped1)
        c.ok(dropped1 is not None and dropped0 is not None and dropped1 - dropped0 < n,
             "blocked pipe: what fits (pipe and buffers) is kept, not dropped", f"< {n}",
             None if dropped1 is None else dropped1 - dropped0)

        # 3. A full disk.
        m = 500
        ok, two, _ = h2load(env, f"http://127.0.0.1:{p_full}/x", m, c=4)
        c.eq((ok, two), (m, m), f"full disk: {m} requests all succeed")
        end = time.monotonic() + scaled(5)
        dropped2 = None
        while time.monotonic() < end:
            dropped2 = metric(albd, "albd_access_log_dropped_total")
            if dropped2 is not None and dropped2 - dropped1 >= m:
                break
            time.sleep(0.05)
        c.eq(None if dropped2 is None else dropped2 - dropped1, m, "full disk: each line is counted dropped")
        warns = albd.stderr().count("access log /dev/full: No space left on device")
        c.eq(warns, 1, "full disk: albd warns once, not per line")

        # 4. An unusable path: the reconcile refuses the listener, with where.
        env.write_manifests(
            instance(), server_group("web", [be.addr]),
            http_listener("rot", p_rot, "web", accessLog={"enabled": True, "path": "/nonexistent-dir/x.log"}),
            http_listener("fifo", p_fifo, "web", accessLog={"enabled": True, "path": fifo}),
            http_listener("full", p_full, "web", accessLog={"enabled": True, "path": "/dev/full"}),
            http_listener("file", p_file, "web", accessLog={"enabled": True, "path": plain}))
        albd.signal(signal.SIGHUP)
        end = time.monotonic() + scaled(10)
        while time.monotonic() < end and "/nonexistent-dir/x.log" not in albd.stderr():
            time.sleep(0.05)
        err = albd.stderr()
        c.ok("Listener/rot" in err and "/nonexistent-dir/x.log: No such file or directory" in err,
             "a path that cannot be opened is an error naming the listener and the path", None, err[-600:])
        st, _, _ = env.http("GET", p_file, "/still")
        c.eq(st, 200, "the other listeners keep serving")

        c.ok(albd.alive(), "albd is still running")
        albd.check_clean_exit(c)
    finally:
        os.close(reader)


run("access_log_survives_rotation_and_stuck_destinations", body)
