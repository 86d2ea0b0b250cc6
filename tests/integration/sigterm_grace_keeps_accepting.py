#!/usr/bin/env python3
"""SIGTERM with --shutdown-grace: /readyz answers 503 "draining" at once
(admin and probe endpoints), /healthz stays 200, the listener keeps
accepting and serving new connections for the grace, then refuses them; the
endpoints answer until the drain ends; albd exits 0. A second SIGTERM during
the grace ends it at once."""
import http.client
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (free_ports, http_listener, instance, run, scaled,  # noqa: E402
                          server_group, socket)


def get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def body(env):
    c = env.check
    be = env.backend("a")
    port, probe = free_ports(2)
    env.write_manifests(instance(), server_group("web", [be.addr]), http_listener("web", port, "web"))
    grace = 3.0
    albd = env.start_albd(ports=(port,), args=("--shutdown-grace", str(grace), "--probe",
                                               f"127.0.0.1:{probe}"))
    c.eq(get(albd.admin_port, "/readyz")[0], 200, "ready before SIGTERM")
    slow = {}

    def slow_request():
        try:
            slow["answer"] = env.http("GET", port, "/slow?delay=5", timeout=scaled(15))[0]
        except Exception as ex:  # reported below
            slow["answer"] = repr(ex)

    th = threading.Thread(target=slow_request, daemon=True)
    th.start()
    c.require(be.wait_requests(1, scaled(10)), "a slow (5 s) request reached the backend")
    albd.signal(signal.SIGTERM)
    sent = time.monotonic()
    time.sleep(0.1)
    st, b = get(albd.admin_port, "/readyz")
    c.eq((st, b), (503, b"draining\n"), "admin /readyz answers 503 draining at once after SIGTERM")
    c.eq(get(probe, "/readyz"), (503, b"draining\n"), "probe /readyz answers 503 draining")
    c.eq(get(probe, "/healthz")[0], 200, "probe /healthz still 200 during the grace")
    served = 0
    refused_early = False
    while time.monotonic() - sent < grace - 0.6:
        try:
            st, _, _ = env.http("GET", port, "/during-grace", timeout=2)
            served += st == 200
        except ConnectionRefusedError:
            refused_early = True
            break
        time.sleep(0.1)
    c.ok(served >= 3 and not refused_early, "new connections are accepted and served during the grace",
         ">= 3 served, none refused", f"{served} served, refused={refused_early}")
    got_refused = None
    while time.monotonic() - sent < grace + scaled(3):
        if refused(port):
            got_refused = time.monotonic() - sent
            break
        time.sleep(0.05)
    c.ok(got_refused is not None and got_refused >= grace - 0.1,
         "the listener refuses connections once the grace is over", f">= {grace} s", got_refused)
    c.ok(th.is_alive(), "the slow request is still in flight after the grace")
    try:
        drain_answer = get(albd.admin_port, "/readyz")
    except OSError as ex:
        drain_answer = repr(ex)
    c.eq(drain_answer, (503, b"draining\n"), "the admin endpoint still answers while requests drain")
    th.join(scaled(15))
    c.eq(slow.get("answer"), 200, "the in-flight request completes with 200")
    albd.proc.wait(timeout=scaled(10))
    albd.check_clean_exit(c)

    # A second SIGTERM ends the grace at once.
    albd2 = env.start_albd(ports=(port,), args=("--shutdown-grace", "60"))
    albd2.signal(signal.SIGTERM)
    time.sleep(0.3)
    c.ok(not refused(port), "during a 60 s grace the listener still accepts")
    albd2.signal(signal.SIGTERM)
    t = time.monotonic()
    try:
        albd2.proc.wait(timeout=scaled(10))
    except Exception:
        pass
    c.ok(not albd2.alive(), "a second SIGTERM ends the grace: albd exits", "exited",
         f"running after {time.monotonic() - t:.1f} s")
    albd2.check_clean_exit(c)


run("sigterm_grace_keeps_accepting", body)
