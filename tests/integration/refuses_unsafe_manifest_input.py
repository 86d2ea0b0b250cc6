#!/usr/bin/env python3
"""Manifest input an attacker (or an accident) can put in the folder costs
time and memory in proportion to its size, and reads only what it should:
a self-referencing alias, a "billion laughs", flow and block nesting tens
of thousands deep, a FIFO as a certificate, /dev/zero as a key and a
*.yaml link to a file outside the folder each make `albd validate` exit 1
promptly with a located error (never quoting the outside file); and while
`albd run` serves, each dropped into the watched folder is reported in
/status while /healthz keeps answering, the last good configuration keeps
serving, and SIGTERM still stops albd."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import albd_binary, free_ports, http_listener, instance, run, scaled, server_group  # noqa: E402
from reconcile_support import backend_of, located, status, wait_backend, wait_for, write_in_place, yaml_docs  # noqa: E402

SECRET = "hunter2-outside-secret-line"
HEAD = "apiVersion: albd/v1\nkind: Instance\nmetadata: {name: bomb}\n"


def self_alias():
    return HEAD + "spec: {edition: Standard, addresses: &a [*a, *a]}\n", "anchors (&name)"


def laughs():
    lines = [HEAD + "spec:", "  edition: Standard", '  l0: &l0 ["lol"]']
    for k in range(1, 12):
        lines.append(f"  l{k}: &l{k} [" + ", ".join([f"*l{k - 1}"] * 10) + "]")
    lines.append("  addresses: *l11")
    return "\n".join(lines) + "\n", "anchors (&name)"


def flow_deep():
    return HEAD + "spec: {addresses: " + "[" * 300000 + "\n", "nested deeper than 64 levels"


def block_deep():
    return HEAD + "spec:\n  addresses:\n  " + "- " * 100000 + "x\n", "nested deeper than 64 levels"


def fifo_certificate(d):
    fifo = os.path.join(d, "cert.fifo")
    if not os.path.exists(fifo):
        os.mkfifo(fifo)
    text = ("apiVersion: albd/v1\nkind: Certificate\nmetadata: {name: fifo}\nspec:\n  source:\n"
            f"    files:\n      certificate: {fifo}\n      privateKey: /dev/zero\n")
    return text, "not a regular file"


def outside_link(env, d, name="bomb.yaml"):
    secret = os.path.join(env.dir, "secret.txt")
    with open(secret, "w") as f:
        f.write(SECRET + "\n")
    path = os.path.join(d, name)
    os.symlink(secret, path)
    return path


def validate(env, d):
    """(exit status or None on timeout, seconds, stderr)."""
    t0 = time.monotonic()
    try:
        r = subprocess.run([albd_binary(), "validate", "-m", d], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=scaled(15))
        return r.returncode, time.monotonic() - t0, r.stderr.decode(errors="replace")
    except subprocess.TimeoutExpired:
        return None, time.monotonic() - t0, ""


def validate_cases(env):
    c = env.check
    cases = [("self alias", self_alias), ("billion laughs", laughs), ("flow nesting", flow_deep),
             ("block nesting", block_deep)]
    for i, (what, make) in enumerate(cases):
        d = os.path.join(env.dir, f"v{i}")
        os.makedirs(d)
        text, msg = make()
        with open(os.path.join(d, "m.yaml"), "w") as f:
            f.write(text)
        rc, secs, err = validate(env, d)
        c.eq(rc, 1, f"validate, {what}: exits 1 (None: still running after {scaled(15):.0f} s)")
        c.ok(secs < scaled(5), f"validate, {what}: returns promptly", f"< {scaled(5)} s", round(secs, 2))
        c.ok("m.yaml:" in err and msg in err, f"validate, {what}: a located error saying {msg!r}", msg, err[:300])

    d = os.path.join(env.dir, "vfifo")
    os.makedirs(d)
    text, msg = fifo_certificate(d)
    with open(os.path.join(d, "c.yaml"), "w") as f:
        f.write(text)
    rc, secs, err = validate(env, d)
    c.eq(rc, 1, "validate, FIFO certificate and /dev/zero key: exits 1 (None: blocked)")
    c.ok(secs < scaled(5), "validate, FIFO certificate: returns promptly", f"< {scaled(5)} s", round(secs, 2))
    c.ok("c.yaml:7:" in err and "c.yaml:8:" in err and err.count(msg) >= 2,
         "validate, FIFO certificate and /dev/zero key: both located as not regular files", msg, err[:400])

    d = os.path.join(env.dir, "vlink")
    os.makedirs(d)
    outside_link(env, d)
    rc, secs, err = validate(env, d)
    c.eq(rc, 1, "validate, link out of the folder: exits 1")
    c.ok("bomb.yaml: error: a link to a file outside the manifest folder" in err,
         "validate, link out of the folder: names the link", "a link to a file outside", err[:300])
    c.ok(SECRET not in err and "hunter2" not in err, "validate, link out of the folder: never quotes the target",
         "no secret", err[:300])


def healthz_ok(albd):
    try:
        st, _ = albd.admin_get("/healthz", timeout=scaled(2))
        return st == 200
    except OSError:
        return False


def run_cases(env):
    c = env.check
    a = env.backend("a")
    (port,) = free_ports(1)
    write_in_place(os.path.join(env.manifest_dir, "base.yaml"),
                   yaml_docs(instance(), server_group("ga", [a.addr]), http_listener("web", port, "ga")))
    albd = env.start_albd(ports=(port,))
    c.require(wait_backend(env, port, "a", tls=False), "run: the base configuration serves")
    bomb = os.path.join(env.manifest_dir, "bomb.yaml")
    cases = [("self alias", self_alias), ("billion laughs", laughs), ("flow nesting", flow_deep),
             ("block nesting", block_deep), ("FIFO certificate", lambda: fifo_certificate(env.dir)),
             ("link out of the folder", None)]
    for what, make in cases:
        if make is None:
            outside_link(env, env.manifest_dir)
        else:
            write_in_place(bomb, make()[0])
        # /healthz answers all along, while the file is reconciled.
        end, misses, polls = time.monotonic() + scaled(2), 0, 0
        while time.monotonic() < end:
            polls += 1
            misses += not healthz_ok(albd)
            time.sleep(0.1)
        c.eq(misses, 0, f"run, {what}: /healthz answered every poll ({polls}) after the file was dropped")
        st = wait_for(lambda: (lambda s: s if located(s, "bomb.yaml") or "bomb.yaml" in repr(s) else None)(
            status(albd)), scaled(5))
        c.ok(st is not None, f"run, {what}: /status reports bomb.yaml", "bomb.yaml", st and repr(st)[:300])
        if make is None:
            blob = repr(status(albd))
            c.ok(SECRET not in blob and "hunter2" not in blob,
                 "run, link out of the folder: /status never quotes the target", "no secret", blob[:600])
        c.eq(backend_of(env, port, tls=False), "a", f"run, {what}: the last good configuration still serves")
        os.unlink(bomb)
    c.ok(wait_for(lambda: not any(p.get("severity") == "error" for p in status(albd).get("problems", [])),
                  scaled(5)), "run: with the files gone, /status has no errors")
    albd.check_clean_exit(c, timeout=scaled(10))


def body(env):
    validate_cases(env)
    run_cases(env)


run("refuses_unsafe_manifest_input", body)
