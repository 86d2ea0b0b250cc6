#!/usr/bin/env python3
"""Worker threads are named albd-w<N> and run as SCHED_BATCH by default (a
worker woken on a busy CPU waits for the running task's slice and then
handles everything that arrived at once); --worker-scheduling normal keeps
SCHED_OTHER; the agent thread is never changed; a bad value is a usage
error. Either way, requests are served."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (albd_binary, certificate, free_ports, https_listener, instance, run,  # noqa: E402
                          scaled, server_group)

POLICY = {os.SCHED_OTHER: "SCHED_OTHER", os.SCHED_BATCH: "SCHED_BATCH", os.SCHED_IDLE: "SCHED_IDLE"}


def threads(pid):
    """{thread name: [scheduling policy name, ...]} of every thread of pid."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            pol = POLICY.get(os.sched_getscheduler(int(tid)), "other policy")
        except (OSError, ProcessLookupError):
            continue  # a thread that ended meanwhile
        out.setdefault(name, []).append(pol)
    return out


def body(env):
    c = env.check
    certs = env.certs()
    be = env.backend("a")
    (port,) = free_ports(1)
    env.write_manifests(instance(), certificate("rsa", certs.rsa), server_group("web", [be.addr]),
                        https_listener("web", port, "rsa", "web"))

    albd = env.start_albd(ports=(port,), workers=3)
    t = threads(albd.pid)
    c.eq(sorted(n for n in t if n.startswith("albd-w")), ["albd-w0", "albd-w1", "albd-w2"],
         "the three workers are named albd-w0..albd-w2")
    c.eq(sorted(p for n, ps in t.items() if n.startswith("albd-w") for p in ps), ["SCHED_BATCH"] * 3,
         "by default every worker runs as SCHED_BATCH")
    c.eq(POLICY.get(os.sched_getscheduler(albd.pid)), "SCHED_OTHER",
         "the agent thread keeps the default policy (reconciles, admin endpoint)")
    st, _, b = env.https("GET", port, "/batch")
    c.eq(st, 200, "a request is served by batch workers")
    albd.stop()

    albd = env.start_albd(ports=(port,), workers=2, args=("--worker-scheduling", "normal"))
    t = threads(albd.pid)
    c.eq(sorted(p for n, ps in t.items() if n.startswith("albd-w") for p in ps), ["SCHED_OTHER"] * 2,
         "--worker-scheduling normal keeps the workers SCHED_OTHER")
    st, _, b = env.https("GET", port, "/normal")
    c.eq(st, 200, "a request is served by normal workers")
    albd.stop()

    r = subprocess.run([albd_binary(), "run", "-m", env.manifest_dir, "--admin", "off",
                        "--worker-scheduling", "fifo"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=scaled(10))
    err = r.stderr.decode(errors="replace")
    c.eq(r.returncode, 64, "an unknown --worker-scheduling value is a usage error (exit 64)")
    c.ok("--worker-scheduling is batch or normal" in err, "the usage error names the accepted values",
         "--worker-scheduling is batch or normal", err[-300:])


if __name__ == "__main__":
    run("workers_use_batch_scheduling", body)
