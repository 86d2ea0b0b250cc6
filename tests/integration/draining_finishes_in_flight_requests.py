#!/usr/bin/env python3
"""Connection draining. A server removed from its group (or set to weight
0) gets no new request but finishes the ones it has:

- connectionDrain off: a slow POST in flight on the removed server
  completes with 200 long after the reload; meanwhile a stream of quick
  requests sees no failure and none of them reaches the removed server.
- weight 0 behaves the same (and no new request reaches it).
- connectionDrain on, timeoutSeconds 1: a slow POST on the removed server
  is cut at about 1 s (the client gets 502: a POST is never repeated),
  while one on the kept server completes; the quick requests still all
  succeed.
- timeoutSeconds 0 cuts at once."""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import echo_of, free_ports, http_listener, instance, run, scaled, server_group  # noqa: E402


def body(env):
    c = env.check
    a, b = env.backend("a"), env.backend("b")
    (port,) = free_ports(1)

    def write(servers, drain=None):
        spec = {}
        if drain is not None:
            spec["connectionDrain"] = {"enabled": True, "timeoutSeconds": drain}
        env.write_manifests(instance(), server_group("web", servers, **spec), http_listener("web", port, "web"))

    write([(*a.addr, 100), (*b.addr, 100)])
    albd = env.start_albd(ports=(port,), workers=1)  # one rotation: two requests, one per server

    def slow_pair(delay):
        """Two slow POSTs at once (one per server); returns {backend: (status, end time)}."""
        res = {}

        def one(i):
            st, _, body_ = env.http("POST", port, f"/slow{i}?delay={delay}", body=b"x",
                                    timeout=scaled(30))
            res[i] = (st, echo_of(body_).get("backend"), time.monotonic())

        ts = [threading.Thread(target=one, args=(i,)) for i in range(2)]
        na, nb = a.count(), b.count()
        for t in ts:
            t.start()
        c.require(a.wait_requests(na + 1, scaled(5)) and b.wait_requests(nb + 1, scaled(5)),
                  "one slow request in flight on each server")
        return ts, res

    def quick_load(stop, out):
        while not stop.is_set():
            try:
                st, _, body_ = env.http("GET", port, "/q", timeout=scaled(10))
                out.append((st, echo_of(body_).get("backend"), time.monotonic()))
            except OSError as e:
                out.append((str(e), None, time.monotonic()))

    def reload_during(servers, drain, delay):
        ts, res = slow_pair(delay)
        stop, quick = threading.Event(), []
        lt = threading.Thread(target=quick_load, args=(stop, quick))
        lt.start()
        time.sleep(0.3)
        gen = albd.generation()
        write(servers, drain)
        c.require(albd.wait_generation(gen) is not None, "the reload serves")
        t_reload = time.monotonic()
        time.sleep(0.5)
        stop.set()
        lt.join(scaled(10))
        for t in ts:
            t.join(scaled(30))
        return t_reload, res, quick

    # 1. Removed, no drain: the in-flight request finishes.
    delay = scaled(3)
    t_reload, res, quick = reload_during([(*a.addr, 100)], None, delay)
    by = {r[1]: r for r in res.values()}
    c.eq(sorted((k, v[0]) for k, v in by.items()), [("a", 200), ("b", 200)],
         "no drain: both slow requests (one on the removed server) complete with 200")
    bad = [q for q in quick if q[0] != 200]
    c.eq(bad, [], "no drain: no quick request failed across the reload")
    late_b = [q for q in quick if q[1] == "b" and q[2] > t_reload]
    c.eq(late_b, [], "no drain: no request reaches the removed server after the reload")

    # 2. Weight 0, no drain: the same.
    write([(*a.addr, 100), (*b.addr, 100)])
    time.sleep(0.5)
    t_reload, res, quick = reload_during([(*a.addr, 100), (*b.addr, 0)], None, delay)
    by = {r[1]: r for r in res.values()}
    c.eq(sorted((k, v[0]) for k, v in by.items()), [("a", 200), ("b", 200)],
         "weight 0: the request in flight on it completes with 200")
    c.eq([q for q in quick if q[0] != 200], [], "weight 0: no quick request failed")
    c.eq([q for q in quick if q[1] == "b" and q[2] > t_reload], [], "weight 0: no new request reaches it")
    st = albd.server_health()
    c.eq((st.get(("web", f"{b.addr[0]}:{b.addr[1]}"), {}).get("draining"),
          st.get(("web", f"{a.addr[0]}:{a.addr[1]}"), {}).get("draining")), (True, False),
         "weight 0: /status shows that server draining, the other not")

    # 3. Removed with drain 1 s: the slow request on it is cut at ~1 s.
    write([(*a.addr, 100), (*b.addr, 100)], 1)
    time.sleep(0.5)
    delay = scaled(6)
    t_reload, res, quick = reload_during([(*a.addr, 100)], 1, delay)
    cut = [r for r in res.values() if r[0] != 200]
    done = [r for r in res.values() if r[0] == 200]
    c.eq(len(cut), 1, "drain 1 s: the request on the removed server does not complete")
    c.ok(cut and cut[0][0] == 502, "drain 1 s: its client gets 502", 502, cut and cut[0][0])
    if cut:
        after = cut[0][2] - t_reload
        c.ok(after < min(delay - 1, scaled(3)), "drain 1 s: it is cut about 1 s after the reload, "
             "not when the backend answers", f"< {min(delay - 1, scaled(3))} s", round(after, 2))
    c.eq([r[1] for r in done], ["a"], "drain 1 s: the request on the kept server completes")
    c.eq([q for q in quick if q[0] != 200], [], "drain 1 s: no quick request failed")

    # 4. timeoutSeconds 0: cut at once.
    write([(*a.addr, 100), (*b.addr, 100)], 0)
    time.sleep(0.5)
    t_reload, res, quick = reload_during([(*a.addr, 100)], 0, delay)
    cut = [r for r in res.values() if r[0] != 200]
    c.eq(len(cut), 1, "drain 0 s: the request on the removed server is cut")
    if cut:
        c.ok(cut[0][2] - t_reload < scaled(1.5), "drain 0 s: at once", "< 1.5 s", round(cut[0][2] - t_reload, 2))
    c.eq([q for q in quick if q[0] != 200], [], "drain 0 s: no quick request failed")
    albd.check_clean_exit(c)


run("draining_finishes_in_flight_requests", body)
