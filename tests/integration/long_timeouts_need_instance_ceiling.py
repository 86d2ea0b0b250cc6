#!/usr/bin/env python3
"""Listener idle and request timeouts above 600 s are allowed where the
instance raises its ceiling (spec.maxTimeoutSeconds, at most 3600): an
instance with maxTimeoutSeconds 3600 runs a listener with
idleTimeoutSeconds 1800, /config exports both fields, and an idle
keep-alive connection stays open. A listener timeout above its instance's
ceiling is refused with an error located at the listener's field that names
the instance and its ceiling, and the last good listener keeps serving;
`albd plan` shows the ceiling change."""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (albd_binary, echo_of, free_ports, http_listener, instance, read_response, run,  # noqa: E402
                          scaled, server_group, socket)
from reconcile_support import (config, line_of, located, reconciles, status, wait_for,  # noqa: E402
                               write_in_place, yaml_docs)


def body(env):
    c = env.check
    be = env.backend("a")
    (port,) = free_ports(1)
    path = os.path.join(env.manifest_dir, "albd.yaml")

    def manifests(ceiling, idle):
        inst = instance(maxTimeoutSeconds=ceiling) if ceiling else instance()
        return yaml_docs(inst, server_group("web", [be.addr]),
                         http_listener("web", port, "web", idleTimeoutSeconds=idle, requestTimeoutSeconds=1800))

    write_in_place(path, manifests(3600, 1800))
    albd = env.start_albd(ports=(port,))

    _, cfg = config(albd)
    c.eq(cfg["resources"].get("Instance", {}).get("test", {}).get("spec", {}).get("maxTimeoutSeconds"), 3600,
         "/config exports the instance's maxTimeoutSeconds")
    lspec = cfg["resources"].get("Listener", {}).get("web", {}).get("spec", {})
    c.eq((lspec.get("idleTimeoutSeconds"), lspec.get("requestTimeoutSeconds")), (1800, 1800),
         "/config exports the listener's 1800 s idle and request timeouts")

    # The listener serves, and an idle keep-alive connection stays usable.
    s = socket.create_connection(("127.0.0.1", port), timeout=scaled(10))
    f = s.makefile("rb")
    try:
        s.sendall(f"GET /one HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        _, st, _, b, _ = read_response(f)
        c.eq((st, echo_of(b).get("path")), (200, "/one"), "a listener with idleTimeoutSeconds 1800 serves")
        time.sleep(scaled(2))
        s.sendall(f"GET /two HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        _, st, _, b, _ = read_response(f)
        c.eq((st, echo_of(b).get("path")), (200, "/two"), "the idle keep-alive connection is still usable")
    finally:
        f.close()
        s.close()

    # albd plan against the running albd shows a ceiling change.
    other = os.path.join(env.dir, "plan-manifests")
    os.makedirs(other, exist_ok=True)
    with open(os.path.join(other, "albd.yaml"), "w") as fh:
        fh.write(manifests(2400, 1800))
    p = subprocess.run([albd_binary(), "plan", "-m", other, "--against", f"http://127.0.0.1:{albd.admin_port}"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=scaled(30), text=True)
    c.eq(p.returncode, 2, "albd plan exits 2 (changes) for a new ceiling")
    c.ok("maxTimeoutSeconds: 3600 → 2400" in p.stdout, "albd plan shows maxTimeoutSeconds 3600 → 2400",
         "maxTimeoutSeconds: 3600 → 2400", p.stdout + p.stderr)

    # Raising the listener to 3000 s under a ceiling of 2400 is refused, at the
    # listener's field, naming the instance; the last good (1800 s) keeps serving.
    failed_before = reconciles(albd, "partial") + reconciles(albd, "failure")
    text = manifests(2400, 3000)
    write_in_place(path, text)
    albd.signal(signal.SIGHUP)
    refused = wait_for(lambda: reconciles(albd, "partial") + reconciles(albd, "failure") > failed_before,
                       scaled(10))
    c.ok(refused, "the reload with idleTimeoutSeconds 3000 above the instance's 2400 is refused")
    st = status(albd)
    where = located(st, "albd.yaml")
    c.eq(where, (line_of(text, "idleTimeoutSeconds: 3000"), 23), "the error is located at idleTimeoutSeconds")
    msgs = " ".join(str(p.get("message", "")) for p in st.get("problems", []))
    for r in st.get("resources", []):
        msgs += " ".join(str(x.get("message", "")) for x in r.get("conditions", []))
    c.ok("spec.idleTimeoutSeconds" in msgs and 'instance "test"' in msgs and "2400" in msgs,
         "the message names the field, the instance and its ceiling", "field, instance, 2400", msgs)
    _, cfg = config(albd)
    c.eq(cfg["resources"].get("Instance", {}).get("test", {}).get("spec", {}).get("maxTimeoutSeconds"), 2400,
         "the valid instance change (ceiling 2400) applies")
    c.eq(cfg["resources"].get("Listener", {}).get("web", {}).get("spec", {}).get("idleTimeoutSeconds"), 1800,
         "the last good listener (1800 s) keeps running")
    code, _, _ = env.http("GET", port, "/after")
    c.eq(code, 200, "the listener still answers after the refused reload")
    albd.check_clean_exit(c)


run("long_timeouts_need_instance_ceiling", body)
