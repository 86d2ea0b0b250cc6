#!/usr/bin/env python3
"""/status reads like a Kubernetes object's status: every resource has an
observedGeneration (bumped only when that resource's spec changes, kept
across reloads), a source file:line:col, and the conditions Accepted,
Programmed and Ready, each with status "True"/"False"/"Unknown", a
CamelCase reason, a message and an RFC 3339 lastTransitionTime that moves
only when that condition's status changes. A broken resource reads
Ready=False (never an "Invalid" condition) with its reason and the
location of its error, while the rest keeps serving; fixing it makes it
Ready=True again with a new lastTransitionTime. With --strict, a valid
change beside a broken resource reads Accepted=True, Programmed=False,
Ready=False, reason Blocked."""
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import free_ports, http_listener, instance, run, scaled, server_group  # noqa: E402
from reconcile_support import (backend_of, generation, line_of, reconciles, status, wait_backend,  # noqa: E402
                               wait_for, wait_generation_above, write_then_rename, yaml_docs)

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
CAMEL = re.compile(r"^[A-Z][A-Za-z0-9]*$")
SOURCE = re.compile(r"^.+:\d+:\d+$")
TYPES = ("Accepted", "Programmed", "Ready")


def by_key(st):
    """{"Kind/name": resource} of /status resources."""
    return {f'{r["kind"]}/{r["name"]}': r for r in st.get("resources", [])}


def cond(r, t):
    return next((c for c in r.get("conditions", []) if c.get("type") == t), None)


def snapshot(st):
    """{key: (observedGeneration, {type: (status, lastTransitionTime)})}."""
    return {k: (r.get("observedGeneration"),
                {c["type"]: (c.get("status"), c.get("lastTransitionTime")) for c in r.get("conditions", [])})
            for k, r in by_key(st).items()}


def check_shape(c, st, what):
    bad = []
    for k, r in by_key(st).items():
        g = r.get("observedGeneration")
        if not isinstance(g, int) or isinstance(g, bool) or g < 1:
            bad.append(f"{k}: observedGeneration {g!r}")
        if not isinstance(r.get("source"), str) or not SOURCE.match(r["source"]):
            bad.append(f"{k}: source {r.get('source')!r}")
        types = [x.get("type") for x in r.get("conditions", [])]
        for t in TYPES:
            if types.count(t) != 1:
                bad.append(f"{k}: {types.count(t)} {t} conditions")
        for x in r.get("conditions", []):
            if x.get("type") == "Invalid":
                bad.append(f"{k}: an Invalid condition")
            if x.get("status") not in ("True", "False", "Unknown"):
                bad.append(f"{k}/{x.get('type')}: status {x.get('status')!r}")
            if not isinstance(x.get("reason"), str) or not CAMEL.match(x["reason"]):
                bad.append(f"{k}/{x.get('type')}: reason {x.get('reason')!r}")
            if not isinstance(x.get("message"), str):
                bad.append(f"{k}/{x.get('type')}: message {x.get('message')!r}")
            if not isinstance(x.get("lastTransitionTime"), str) or not RFC3339.match(x["lastTransitionTime"]):
                bad.append(f"{k}/{x.get('type')}: lastTransitionTime {x.get('lastTransitionTime')!r}")
    c.eq(bad, [], f"{what}: every resource has observedGeneration, source and well-formed "
                  "Accepted/Programmed/Ready conditions")


def body(env):
    c = env.check
    a, b = env.backend("a"), env.backend("b")
    p_web, p_api = free_ports(2)
    base = os.path.join(env.manifest_dir, "base.yaml")
    lst = os.path.join(env.manifest_dir, "listeners.yaml")

    def groups(weight):
        return yaml_docs(instance(), server_group("ga", [a.addr + (weight,)]), server_group("gb", [b.addr]))

    def listeners(api_group):
        return yaml_docs(http_listener("web", p_web, "ga"), http_listener("api", p_api, api_group))

    write_then_rename(base, groups(100))
    write_then_rename(lst, listeners("gb"))
    albd = env.start_albd(ports=(p_web, p_api))
    c.ok(wait_backend(env, p_web, "a", tls=False) and wait_backend(env, p_api, "b", tls=False),
         "both listeners serve")

    st = status(albd)
    check_shape(c, st, "first apply")
    res = by_key(st)
    c.eq(sorted(res), ["Instance/test", "Listener/api", "Listener/web", "ServerGroup/ga", "ServerGroup/gb"],
         "/status lists every resource")
    c.eq({k: [(cond(r, t) or {}).get("status") for t in TYPES] for k, r in res.items()},
         {k: ["True"] * 3 for k in res}, "every resource is Accepted, Programmed and Ready")
    c.eq({k: r["observedGeneration"] for k, r in res.items()}, {k: 1 for k in res},
         "every resource starts at observedGeneration 1")
    web_src = res.get("Listener/web", {}).get("source", "")
    c.ok(re.search(r"listeners\.yaml:\d+:\d+$", web_src),
         "a ready resource's source is where its document is", "listeners.yaml:L:C", web_src)
    before = snapshot(st)

    # 1. Only ServerGroup/ga changes: only its observedGeneration moves, and
    #    no condition changes status, so no lastTransitionTime moves.
    time.sleep(1.1)  # a new stamp would differ by at least a second
    g0 = generation(albd)
    write_then_rename(base, groups(50))
    c.ok(wait_generation_above(albd, g0), "changing ServerGroup ga applies a new configuration generation")
    after = snapshot(status(albd))
    want = dict(before)
    want["ServerGroup/ga"] = (before["ServerGroup/ga"][0] + 1, before["ServerGroup/ga"][1])
    c.eq(after, want, "observedGeneration moves only for the changed ServerGroup ga; "
                      "every lastTransitionTime stays")

    # 2. A reload with nothing changed moves nothing.
    ok0 = reconciles(albd, "success")
    albd.signal(signal.SIGHUP)
    c.ok(wait_for(lambda: reconciles(albd, "success") > ok0, scaled(5)), "SIGHUP reconciles")
    c.eq(snapshot(status(albd)), after, "a reload of unchanged manifests keeps observedGeneration "
                                        "and lastTransitionTime")

    # 3. Listener api breaks (a server group that does not exist): it reads
    #    Ready=False with the reason and where, the rest keeps serving.
    time.sleep(1.1)
    bad_text = listeners("nope")
    part0 = reconciles(albd, "partial") + reconciles(albd, "failure")
    write_then_rename(lst, bad_text)
    c.ok(wait_for(lambda: reconciles(albd, "partial") + reconciles(albd, "failure") > part0, scaled(5)),
         "the broken listener is a reconcile that did not apply everything")
    st = status(albd)
    check_shape(c, st, "with a broken listener")
    res = by_key(st)
    api = res.get("Listener/api", {})
    ready = cond(api, "Ready") or {}
    c.eq(ready.get("status"), "False", "the broken listener reads Ready=False")
    c.ok(ready.get("reason") and CAMEL.match(ready["reason"]) and ready["reason"] != "Ready",
         "Ready=False has a CamelCase reason", "e.g. KeptLastGood", ready.get("reason"))
    c.ok("nope" in ready.get("message", ""), "Ready's message names the missing server group", "nope",
         ready.get("message"))
    want_line = line_of(bad_text, "serverGroup: nope")
    c.ok(re.search(r"listeners\.yaml:%d:\d+$" % want_line, ready.get("source", "")),
         "Ready=False carries the error's file:line:col", f"listeners.yaml:{want_line}:C", ready.get("source"))
    c.ok(re.search(r"listeners\.yaml:%d:\d+$" % want_line, api.get("source", "")),
         "the resource's source is the error's file:line:col", f"listeners.yaml:{want_line}:C", api.get("source"))
    c.eq((cond(api, "Accepted") or {}).get("status"), "False", "the broken listener is not Accepted")
    c.eq(api.get("observedGeneration"), after["Listener/api"][0] + 1,
         "the broken listener's new spec is a new observedGeneration")
    c.ok(ready.get("lastTransitionTime") != after["Listener/api"][1]["Ready"][1],
         "Ready's lastTransitionTime moved when it became False", "a new time", ready.get("lastTransitionTime"))
    c.eq({k: v for k, v in snapshot(st).items() if k != "Listener/api"},
         {k: v for k, v in after.items() if k != "Listener/api"},
         "every other resource keeps its observedGeneration and lastTransitionTime")
    c.eq(backend_of(env, p_web, tls=False), "a", "the web listener still serves")
    c.eq(backend_of(env, p_api, tls=False), "b", "the broken listener keeps serving its last good version")
    c.eq(st.get("ready"), True, "albd stays ready")

    # 4. Fixed: Ready=True again, with a new lastTransitionTime.
    time.sleep(1.1)
    ok0 = reconciles(albd, "success")
    write_then_rename(lst, listeners("ga"))
    c.ok(wait_for(lambda: reconciles(albd, "success") > ok0, scaled(5)), "the fixed listener applies")
    c.ok(wait_backend(env, p_api, "a", tls=False), "the fixed listener serves its new group")
    st = status(albd)
    check_shape(c, st, "fixed")
    api2 = by_key(st).get("Listener/api", {})
    r2 = cond(api2, "Ready") or {}
    c.eq(r2.get("status"), "True", "the fixed listener reads Ready=True")
    c.ok(r2.get("lastTransitionTime") not in (None, ready.get("lastTransitionTime")),
         "Ready's lastTransitionTime moved again", "a new time", r2.get("lastTransitionTime"))
    c.eq(api2.get("observedGeneration"), api.get("observedGeneration", 0) + 1,
         "the fixed spec is one more observedGeneration")
    albd.check_clean_exit(c)

    # 5. --strict: a valid change beside a broken resource is not applied:
    #    Accepted=True, Programmed=False and Ready=False, reason Blocked.
    write_then_rename(lst, listeners("gb"))
    strict = env.start_albd(ports=(p_web, p_api), args=("--strict",))
    c.ok(wait_backend(env, p_web, "a", tls=False), "--strict: web serves group ga")
    fail0 = reconciles(strict, "failure")
    write_then_rename(lst, yaml_docs(http_listener("web", p_web, "gb"), http_listener("api", p_api, "nope")))
    c.ok(wait_for(lambda: reconciles(strict, "failure") > fail0, scaled(5)), "--strict: the reconcile fails")
    st = status(strict)
    check_shape(c, st, "--strict with a broken listener")
    web = by_key(st).get("Listener/web", {})
    c.eq([((cond(web, t) or {}).get("status"), (cond(web, t) or {}).get("reason")) for t in TYPES],
         [("True", "Accepted"), ("False", "Blocked"), ("False", "Blocked")],
         "--strict: the valid change reads Accepted=True, Programmed=False and Ready=False (Blocked)")
    c.eq(backend_of(env, p_web, tls=False), "a", "--strict: web still serves its applied version")
    strict.check_clean_exit(c)


if __name__ == "__main__":
    run("status_reports_kubernetes_conditions", body)
