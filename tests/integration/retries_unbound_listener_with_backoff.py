#!/usr/bin/env python3
"""Readiness and listeners that cannot bind: an empty manifest folder is
not ready (503: nothing to serve); a listener whose port another process
holds is contained (the other listener serves) and albd tries it again by
itself, backing off, so it serves soon after the port is free -- without
a change to the manifests or a SIGHUP."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (free_ports, http_listener, instance, run, scaled,  # noqa: E402
                          server_group)


def readyz(albd):
    try:
        return albd.admin_get("/readyz")
    except OSError:
        return None, b""


def body(env):
    c = env.check
    be = env.backend("be")
    p_ok, p_busy = free_ports(2)

    # 1. An empty folder: alive, not ready.
    albd = env.start_albd(ready=False)
    end = time.monotonic() + scaled(10)
    st = None
    while time.monotonic() < end:
        st, b = readyz(albd)
        if st is not None and b"no listener" in b:
            break
        time.sleep(0.05)
    c.eq((st, b), (503, b"not ready: no listener\n"), "an empty manifest folder is not ready")
    albd.check_clean_exit(c)

    # 2. A port held by another process (without SO_REUSEPORT: albd cannot bind it).
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", p_busy))
    holder.listen(1)
    env.write_manifests(instance(), server_group("web", [be.addr]), http_listener("ok", p_ok, "web"),
                        http_listener("busy", p_busy, "web"))
    albd = env.start_albd(ports=(p_ok,))
    st, _, _ = env.http("GET", p_ok, "/a")
    c.eq(st, 200, "the other listener serves")
    time.sleep(1.5)
    c.ok("retrying the listeners" in albd.stderr(), "albd retries the failed listener by itself", None,
         albd.stderr()[-800:])
    holder.close()
    served, end = None, time.monotonic() + scaled(10)
    t0 = time.monotonic()
    while time.monotonic() < end:
        try:
            st, _, _ = env.http("GET", p_busy, "/b", timeout=1)
            if st == 200:
                served = time.monotonic() - t0
                break
        except OSError:
            pass
        time.sleep(0.1)
    c.ok(served is not None and served < scaled(6), "once the port is free, the listener serves within the backoff",
         "< 6 s", served)
    retries = albd.stderr().count("retrying the listeners")
    time.sleep(2.5)
    c.eq(albd.stderr().count("retrying the listeners"), retries, "retries stop once every listener serves")
    c.ok(albd.alive(), "albd is still running")
    albd.check_clean_exit(c)


run("retries_unbound_listener_with_backoff", body)
