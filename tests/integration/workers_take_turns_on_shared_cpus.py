#!/usr/bin/env python3
"""--workers 0 starts one worker per CPU albd may run on (its affinity
mask: taskset, a container's cpuset), not per CPU online. With more
workers than those CPUs, the workers take turns (each yields its CPU once
it has run 1 ms without a pause, so a worker with events does not wait
for the scheduler's next tick), albd says so at start, and requests are
served; with no more workers than CPUs nothing changes."""
import concurrent.futures
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import certificate, free_ports, https_listener, instance, run, server_group  # noqa: E402

TURNS = "the workers take turns"


def workers_of(pid):
    names = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                names.append(f.read().strip())
        except OSError:
            continue  # a thread that ended meanwhile
    return sorted(n for n in names if n.startswith("albd-w"))


def body(env):
    c = env.check
    certs = env.certs()
    be = env.backend("a")
    (port,) = free_ports(1)
    env.write_manifests(instance(), certificate("rsa", certs.rsa), server_group("web", [be.addr]),
                        https_listener("web", port, "rsa", "web"))
    allowed = sorted(os.sched_getaffinity(0))

    def serve_many(tag):
        def one(i):
            st, _, _ = env.https("GET", port, f"/{tag}/{i}")
            return st
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            return sorted(set(pool.map(one, range(40))))

    # Children inherit the affinity of the thread that starts them: albd
    # runs on one CPU while this thread's mask is narrowed.
    os.sched_setaffinity(0, {allowed[0]})
    try:
        albd = env.start_albd(ports=(port,), workers=0)
        c.eq(workers_of(albd.pid), ["albd-w0"], "--workers 0 on one allowed CPU starts one worker")
        c.ok(TURNS not in albd.stderr(), "one worker on one CPU takes no turns", "no " + TURNS,
             albd.stderr()[-400:])
        albd.stop()

        albd = env.start_albd(ports=(port,), workers=3)
    finally:
        os.sched_setaffinity(0, allowed)
    err = albd.stderr()
    c.ok("3 workers on 1 CPU (the CPUs albd may run on): " + TURNS in err,
         "three workers on one CPU take turns, and albd says so at start",
         "3 workers on 1 CPU ...: " + TURNS, err[-400:])
    c.eq(sorted(os.sched_getaffinity(albd.pid)), [allowed[0]], "albd runs on the one CPU it was given")
    c.eq(serve_many("turns"), [200], "40 requests, 8 at a time, are served by workers taking turns")
    albd.stop()

    albd = env.start_albd(ports=(port,), workers=len(allowed))
    c.ok(TURNS not in albd.stderr(), "as many workers as CPUs take no turns", "no " + TURNS,
         albd.stderr()[-400:])
    c.eq(len(workers_of(albd.pid)), len(allowed), "--workers N starts N workers")
    c.eq(serve_many("alone"), [200], "and they serve")
    albd.stop()


if __name__ == "__main__":
    run("workers_take_turns_on_shared_cpus", body)
