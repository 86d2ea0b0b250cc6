#!/usr/bin/env python3
"""Listeners come and go without disturbing the others: an added listener's
port serves; a changed port stops on the old number and serves on the new
one; a removed listener's port refuses new connections while a slow request
already in flight on it completes. A keep-alive connection to an unchanged
listener keeps its socket and keeps working across every change."""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (certificate, echo_of, free_ports, https_listener, instance, run, scaled,  # noqa: E402
                          server_group)
from reconcile_support import (backend_of, generation, refuses, wait_backend, wait_for,  # noqa: E402
                               wait_generation_above, write_in_place, yaml_docs)


def body(env):
    c = env.check
    certs = env.certs()
    a = env.backend("a")
    b = env.backend("b")
    p_a, p_b, p_c = free_ports(3)
    m = env.manifest_dir
    with open(os.path.join(m, "base.yaml"), "w") as f:
        f.write(yaml_docs(instance(), certificate("site", certs.rsa), server_group("ga", [a.addr]),
                          server_group("gb", [b.addr])))
    write_in_place(os.path.join(m, "a.yaml"), yaml_docs(https_listener("la", p_a, "site", "ga")))
    albd = env.start_albd(ports=(p_a,))
    c.require(wait_backend(env, p_a, "a", timeout=scaled(5)), "listener la serves on its port")

    # A keep-alive connection to the unchanged listener, used after every change.
    ka = env.connection(p_a)
    ka_sock = []

    def keepalive_request(what):
        try:
            ka.request("GET", f"/keepalive/{len(ka_sock)}")
            r = ka.getresponse()
            body = r.read()
            ka_sock.append(ka.sock)
            ok = r.status == 200 and echo_of(body).get("backend") == "a"
            c.ok(ok, f"{what}: the keep-alive connection to la still works", 200, (r.status, body[:200]))
            c.ok(ka.sock is not None and ka.sock is ka_sock[0], f"{what}: ... on the same socket")
        except Exception as ex:
            c.ok(False, f"{what}: the keep-alive connection to la still works", "an answer", repr(ex))

    keepalive_request("before any change")

    # Add lb.
    g = generation(albd)
    b_yaml = os.path.join(m, "b.yaml")
    write_in_place(b_yaml, yaml_docs(https_listener("lb", p_b, "site", "gb")))
    c.ok(wait_backend(env, p_b, "b", timeout=scaled(5)), "added listener lb serves on its port")
    c.ok(wait_generation_above(albd, g), "adding a listener moves the generation")
    c.eq(backend_of(env, p_a), "a", "la still serves after lb was added")
    keepalive_request("after adding lb")

    # Move lb to another port.
    g = generation(albd)
    write_in_place(b_yaml, yaml_docs(https_listener("lb", p_c, "site", "gb")))
    c.ok(wait_backend(env, p_c, "b", timeout=scaled(5)), "lb serves on its new port")
    c.ok(wait_for(lambda: refuses(p_b), scaled(5)), "lb's old port refuses connections")
    c.ok(wait_generation_above(albd, g), "changing a port moves the generation")
    c.eq(backend_of(env, p_a), "a", "la still serves after lb's port changed")
    keepalive_request("after lb's port changed")

    # Remove lb while a slow request is in flight on it.
    result = {}

    def slow():
        t = time.monotonic()
        try:
            result["answer"] = env.https("GET", p_c, "/slow?delay=2", timeout=scaled(20))
        except Exception as ex:  # reported below
            result["error"] = repr(ex)
        result["took"] = time.monotonic() - t

    n0 = b.count()
    th = threading.Thread(target=slow, daemon=True)
    th.start()
    c.require(b.wait_requests(n0 + 1, scaled(10)), "the slow request reached lb's backend")
    g = generation(albd)
    os.unlink(b_yaml)
    t_removed = time.monotonic()
    refused = wait_for(lambda: refuses(p_c), scaled(5))
    in_flight = th.is_alive()
    c.ok(refused, "removed listener lb's port refuses new connections",
         "refused", f"still accepting {time.monotonic() - t_removed:.1f}s after removal")
    c.ok(in_flight, "... while its slow request was still in flight")
    th.join(scaled(20))
    st, hdrs, body = result.get("answer", (None, [], b""))
    c.eq(st, 200, "the request in flight on the removed listener completes with 200")
    c.eq(echo_of(body).get("path"), "/slow?delay=2", "... with the whole answer")
    if "error" in result:
        print("slow request error:", result["error"])
    c.within(round(result.get("took", 0), 2), 1.9, scaled(8), "... after its full 2 s")
    c.ok(wait_generation_above(albd, g), "removing a listener moves the generation")
    c.eq(backend_of(env, p_a), "a", "la still serves after lb was removed")
    keepalive_request("after lb was removed")
    ka.close()

    albd.check_clean_exit(c)


run("listener_add_remove_port_change", body)
