#!/usr/bin/env python3
"""A backend slower than requestTimeoutSeconds (1 s) gets the client a 504
after about a second; faster answers are unaffected."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (certificate, echo_of, free_ports, https_listener, instance, run,  # noqa: E402
                          scaled, server_group)


def body(env):
    c = env.check
    certs = env.certs()
    be = env.backend("slow")
    (port,) = free_ports(1)
    env.write_manifests(instance(), certificate("rsa", certs.rsa), server_group("web", [be.addr]),
                        https_listener("web", port, "rsa", "web", requestTimeoutSeconds=1))
    albd = env.start_albd(ports=(port,))

    st, _, b = env.https("GET", port, "/fast")
    c.eq((st, echo_of(b).get("path")), (200, "/fast"), "a fast answer is 200")
    st, _, b = env.https("GET", port, "/quick?delay=0.3")
    c.eq(st, 200, "an answer after 0.3 s (within the 1 s timeout) is 200")

    for attempt in range(2):
        t = time.monotonic()
        st, _, _ = env.https("GET", port, f"/slow{attempt}?delay=4", timeout=scaled(10))
        took = time.monotonic() - t
        c.eq(st, 504, f"a backend slower than the request timeout gets a 504 (try {attempt + 1})")
        c.within(round(took, 2), 0.9, scaled(2.5), f"the 504 comes after about 1 s (try {attempt + 1})")

    # Timeouts do not poison the listener.
    st, _, b = env.https("GET", port, "/after")
    c.eq((st, echo_of(b).get("path")), (200, "/after"), "a fast request after a 504 is 200")
    albd.check_clean_exit(c)


run("answers_504_on_request_timeout", body)
