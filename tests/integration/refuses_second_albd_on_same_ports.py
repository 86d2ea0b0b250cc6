#!/usr/bin/env python3
"""A second `albd run` on the ports of a running one (SO_REUSEPORT would let
it bind and the kernel would split the connections) refuses to start: exit
1, a message naming the port and --share-ports; the first keeps every
connection. With --share-ports it starts and serves. A listener added later
on a port another albd serves is refused (contained) with the same message,
while the rest applies."""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (Albd, free_ports, http_listener, instance, run, scaled,  # noqa: E402
                          server_group, to_yaml)


def body(env):
    c = env.check
    a = env.backend("a")
    b = env.backend("b")
    port, other = free_ports(2)
    env.write_manifests(instance(), server_group("web", [a.addr]), http_listener("web", port, "web"))
    first = env.start_albd(ports=(port,))

    # Same manifests, another admin port: refused.
    second = Albd(env, env.manifest_dir)
    env.albds.append(second)
    try:
        rc = second.proc.wait(timeout=scaled(10))
    except subprocess.TimeoutExpired:
        rc = None
    second.exit_status = rc if rc is not None else second.stop()
    err = second.stderr()
    c.eq(rc, 1, "a second albd on the same port exits 1")
    c.ok(f"127.0.0.1:{port}" in err and "--share-ports" in err and "refusing to start" in err,
         "its message names the address and --share-ports", "port, --share-ports", err[-600:])

    # The first still gets every connection.
    got = [env.http("GET", port, "/")[0] for _ in range(20)]
    c.eq(got, [200] * 20, "the first albd still serves every connection")
    c.eq(a.count(), 20, "all 20 requests reached the first albd's backend")

    # A listener added later on a port another albd serves: contained.
    mdir2 = os.path.join(env.dir, "m2")
    os.makedirs(mdir2)
    with open(os.path.join(mdir2, "a.yaml"), "w") as f:
        f.write("\n".join("---\n" + to_yaml(d) for d in (
            instance(), server_group("other", [b.addr]), http_listener("other", other, "other"))) + "\n")
    third = Albd(env, mdir2)
    env.albds.append(third)
    third.wait_ready()
    with open(os.path.join(mdir2, "b.yaml"), "w") as f:
        f.write("---\n" + to_yaml(http_listener("steal", port, "other")) + "\n")
    time.sleep(scaled(1))
    _, body_ = third.admin_get("/status")
    c.ok(b"--share-ports" in body_ and b"Listener" in body_, "a listener added on a served port is refused "
         "with the same reason in /status", "--share-ports", body_[:600])
    for _ in range(10):
        env.http("GET", port, "/")
    c.eq(a.count(), 30, "the first albd still gets all connections on its port")
    c.ok(third.alive(), "the other albd keeps running (only that listener is contained)")
    third.stop()

    # --share-ports: starts and serves on the same port (a hand-over).
    sharing = env.start_albd(ports=(port,), args=("--share-ports",))
    c.ok(sharing.alive(), "with --share-ports a second albd starts")
    first.signal(signal.SIGTERM)
    first.proc.wait(timeout=scaled(10))
    c.eq(env.http("GET", port, "/")[0], 200, "after the first stops, the sharing albd serves the port")
    first.check_clean_exit(c)
    sharing.check_clean_exit(c)


run("refuses_second_albd_on_same_ports", body)
