#!/usr/bin/env python3
"""Invalid manifests never interrupt service: a YAML syntax error, an
unknown field, a reference to a missing server group and a port held by
another process are each reported (/status with file:line:col, a failed
reconcile in /metrics) while the last good configuration keeps serving;
requests from a keep-alive and a new-connection client succeed throughout.
Fixing the input applies it. A valid change made alongside an invalid
resource still applies (invalid input is contained per resource). A
SIGHUP in the middle of an in-place save waits for the save."""
import os
import signal
import sys
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (TestFailure, certificate, free_ports, http_listener, instance, log, run,  # noqa: E402
                          scaled, server_group)
from reconcile_support import (Poller, backend_of, hold_port, line_of, located, metrics, reconciles, status,  # noqa: E402
                               wait_backend, wait_for, write_in_place, yaml_docs)


def not_applied(albd):
    """Reconciles that left something unapplied: with per-resource
    containment an invalid resource makes a reconcile "partial"; with
    --strict (or nothing valid to apply) it is a "failure"."""
    return reconciles(albd, "partial") + reconciles(albd, "failure")


def listener_lines(port, group, name="web"):
    return ["---", "apiVersion: albd/v1", "kind: Listener", "metadata:", f"  name: {name}", "spec:",
            "  instance: test", "  protocol: HTTPS", f"  port: {port}", "  http2: false", "  tls:",
            "    certificate: site", "  defaultAction:", "    forward:", f"      serverGroup: {group}"]


def text(lines):
    return "\n".join(lines) + "\n"


class World:
    def __init__(self, env):
        self.env = env
        self.c = env.check
        certs = env.certs()
        self.a = env.backend("a")
        self.b = env.backend("b")
        self.p_web, self.p_extra, self.p_busy = free_ports(3)
        with open(os.path.join(env.manifest_dir, "base.yaml"), "w") as f:
            f.write(yaml_docs(instance(), certificate("site", certs.rsa), server_group("ga", [self.a.addr]),
                              server_group("gb", [self.b.addr])))
        self.listeners = os.path.join(env.manifest_dir, "listeners.yaml")
        write_in_place(self.listeners, text(listener_lines(self.p_web, "ga")))
        self.albd = env.start_albd(ports=(self.p_web,))
        self.serving = "a"

    def expect_rejected(self, what, filename=None, line=None, mentions=None):
        """Waits for a failed reconcile, then checks that the last good
        configuration still serves and that /status locates the problem."""
        c = self.c
        c.ok(wait_for(lambda: not_applied(self.albd) > self.fail0, scaled(5)),
             f"{what}: /metrics counts a reconcile that did not apply everything (partial or failure)",
             f"> {self.fail0}", not_applied(self.albd))
        c.ok(metrics(self.albd).get("albd_invalid_resources", 0) > 0,
             f"{what}: /metrics albd_invalid_resources counts the invalid resource", "> 0",
             metrics(self.albd).get("albd_invalid_resources"))
        st = status(self.albd)
        errors = [p for p in st.get("problems", []) if p.get("severity") == "error"]
        c.ok(errors or st.get("lastError"), f"{what}: /status reports the error", "problems or lastError", st)
        if mentions:
            blob = repr(st)
            c.ok(mentions in blob, f"{what}: /status mentions {mentions!r}", mentions, blob[:1500])
        if filename:
            loc = located(st, filename)
            c.ok(loc is not None and loc[0] > 0, f"{what}: /status locates it as {filename}:line:col",
                 f"{filename}:L:C", [p.get("source") for p in st.get("problems", [])])
            if line is not None and loc is not None:
                c.eq(loc[0], line, f"{what}: the location's line is the offending line")
        c.eq(backend_of(self.env, self.p_web), self.serving, f"{what}: the last good configuration still serves")

    def expect_fixed(self, what, backend):
        c = self.c
        ok = wait_backend(self.env, self.p_web, backend, timeout=scaled(5))
        c.ok(ok, f"{what}: the fixed change applies (backend {backend} answers)")
        if ok:
            self.serving = backend
        st = wait_for(lambda: (lambda s: s if not s.get("lastError") else None)(status(self.albd)), scaled(3))
        c.ok(st is not None, f"{what}: /status has no lastError after the fix", None,
             status(self.albd).get("lastError"))
        errors = [p for p in (st or {}).get("problems", []) if p.get("severity") == "error"]
        c.eq(errors, [], f"{what}: /status has no error problems after the fix")
        c.ok(wait_for(lambda: metrics(self.albd).get("albd_invalid_resources", 1) == 0, scaled(3)),
             f"{what}: albd_invalid_resources is 0 after the fix", 0,
             metrics(self.albd).get("albd_invalid_resources"))

    def begin(self):
        self.fail0 = not_applied(self.albd)


def yaml_syntax_error(w):
    w.begin()
    lines = listener_lines(w.p_web, "gb")
    i = lines.index("  tls:")
    lines[i:i + 2] = ["  tls: {certificate: site"]  # an unclosed flow mapping
    write_in_place(w.listeners, text(lines))
    w.expect_rejected("YAML syntax error", "listeners.yaml")
    write_in_place(w.listeners, text(listener_lines(w.p_web, "gb")))
    w.expect_fixed("YAML syntax error", "b")


def unknown_field(w):
    w.begin()
    lines = listener_lines(w.p_web, "ga")
    lines.insert(lines.index("  http2: false"), "  idleTimeout: 30")  # a typo of idleTimeoutSeconds
    t = text(lines)
    write_in_place(w.listeners, t)
    w.expect_rejected("unknown field", "listeners.yaml", line_of(t, "idleTimeout:"), mentions="idleTimeout")
    write_in_place(w.listeners, text(listener_lines(w.p_web, "ga")))
    w.expect_fixed("unknown field", "a")


def bad_reference(w):
    w.begin()
    t = text(listener_lines(w.p_web, "nonexistent"))
    # Alongside, in another file, a valid new listener.
    extra = os.path.join(w.env.manifest_dir, "extra.yaml")
    write_in_place(extra, yaml_docs(http_listener("extra", w.p_extra, "gb")))
    write_in_place(w.listeners, t)
    w.expect_rejected("bad reference", "listeners.yaml", line_of(t, "serverGroup: nonexistent"),
                      mentions="nonexistent")
    served = wait_backend(w.env, w.p_extra, "b", timeout=scaled(3), tls=False)
    w.c.ok(served, "bad reference: the valid new listener in another file still applies (per-resource "
           "containment)", "backend b on the extra listener", backend_of(w.env, w.p_extra, tls=False))
    write_in_place(w.listeners, text(listener_lines(w.p_web, "gb")))
    w.expect_fixed("bad reference", "b")
    w.c.ok(wait_backend(w.env, w.p_extra, "b", timeout=scaled(3), tls=False),
           "bad reference: the extra listener serves after the fix")


def port_in_use(w):
    blocker = hold_port(w.p_busy)
    try:
        w.begin()
        busy = os.path.join(w.env.manifest_dir, "busy.yaml")
        t = yaml_docs(http_listener("busy", w.p_busy, "ga"))
        write_in_place(busy, t)
        w.expect_rejected("port in use", "busy.yaml", mentions=str(w.p_busy))
    finally:
        blocker.close()
    ok0 = reconciles(w.albd, "success")
    w.albd.signal(signal.SIGHUP)  # nothing in the manifests changed: ask for a reconcile
    w.c.ok(wait_for(lambda: reconciles(w.albd, "success") > ok0, scaled(5)), "port in use: SIGHUP reconciles")
    w.c.ok(wait_backend(w.env, w.p_busy, "a", timeout=scaled(5), tls=False),
           "port in use: once the port is free the listener applies")
    st = status(w.albd)
    w.c.ok(not st.get("lastError"), "port in use: /status has no lastError after the fix", None,
           st.get("lastError"))


def sighup_during_in_place_save(w):
    """A SIGHUP (a config-management tool, a retry) that lands while an
    in-place save has truncated the file but not yet written it must not
    read the empty file as "every resource in it deleted"."""
    c = w.c
    w.begin()
    f = open(w.listeners, "w")  # the save has begun: the file is empty now
    try:
        w.albd.signal(signal.SIGHUP)
        time.sleep(0.5)  # well under the watcher's 2 s wait for a writer
        c.eq(backend_of(w.env, w.p_web), w.serving,
             "SIGHUP during an in-place save: the last configuration still serves (the half-written file "
             "is not read as its listener deleted)")
        f.write(text(listener_lines(w.p_web, "ga")))
    finally:
        f.close()
    w.expect_fixed("SIGHUP during an in-place save", "a")


CASES = [yaml_syntax_error, unknown_field, bad_reference, port_in_use, sighup_during_in_place_save]


def body(env):
    w = World(env)
    c = w.c
    c.require(wait_backend(env, w.p_web, "a", timeout=scaled(5)), "the valid configuration serves")
    pollers = [Poller(env, w.p_web, keepalive=True, name="keep-alive"),
               Poller(env, w.p_web, keepalive=False, name="new-conn")]
    for p in pollers:
        p.start()
    started = time.monotonic()
    time.sleep(scaled(0.3))
    for case in CASES:
        log(f"# {case.__name__}")
        try:
            case(w)
        except TestFailure as ex:
            c.ok(False, f"{case.__name__} stopped: {ex}")
        except Exception:
            c.ok(False, f"{case.__name__} raised:\n{traceback.format_exc()}")
    # The cases apply within tens of milliseconds each: give the clients a
    # few seconds of the whole sequence so "throughout" means something.
    time.sleep(max(0.0, scaled(3) - (time.monotonic() - started)))
    for p in pollers:
        p.stop()
    for p in pollers:
        n, failures, _ = p.snapshot()
        log(f"{p.name} client: {n} requests answered, {len(failures)} failed")
        c.ok(n > 20, f"{p.name} client: requests were answered throughout", "> 20", n)
        c.eq(failures[:5], [], f"{p.name} client: no request failed while invalid input came and went")
    w.albd.check_clean_exit(c)


run("keeps_last_good_on_invalid_input", body)
