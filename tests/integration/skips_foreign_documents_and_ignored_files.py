#!/usr/bin/env python3
"""A manifest folder shared with other tools: documents of other APIs (a
kustomization.yaml, a Kubernetes Deployment in the same file as an albd
document) are skipped with a located note — by `albd validate` and
`albd plan` (exit status unchanged) and in `albd run`'s /status (severity
"note", not an error, the configuration applies) — and --refuse-foreign
makes each an error. Files that .albdignore (gitignore syntax) matches are
not read: a broken file in an ignored folder or matching an ignored glob is
no error, and writing one reconciles nothing; a changed .albdignore applies
at once (un-ignoring a broken file makes its error appear)."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import albd_binary, free_ports, http_listener, instance, run, scaled, server_group  # noqa: E402
from reconcile_support import (line_of, metrics, plan, status, wait_backend, wait_for,  # noqa: E402
                               write_in_place, yaml_docs)

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: app}
spec:
  replicas: 2
"""
KUSTOMIZATION = "resources: [albd.yaml, app.yaml]\ncommonLabels: {app: shop}\n"
BROKEN = "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: [\n"


def validate(*args):
    r = subprocess.run([albd_binary(), "validate", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=scaled(60))
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def reconcile_count(albd):
    return sum(v for k, v in metrics(albd).items() if k.startswith("albd_reconciles_total"))


def body(env):
    c = env.check
    m = env.manifest_dir
    be = env.backend("a")
    port, = free_ports(1)
    env.write_manifests(instance(), server_group("web", [be.addr]), http_listener("web", port, "web"))
    app = os.path.join(m, "app.yaml")
    write_in_place(app, yaml_docs(server_group("extra", [be.addr])) + "---\n" + DEPLOYMENT)
    write_in_place(os.path.join(m, "kustomization.yaml"), KUSTOMIZATION)
    os.makedirs(os.path.join(m, "drafts"))
    write_in_place(os.path.join(m, "drafts", "broken.yaml"), BROKEN)
    write_in_place(os.path.join(m, "old.draft.yaml"), BROKEN)
    ignore = os.path.join(m, ".albdignore")
    write_in_place(ignore, "# work in progress\ndrafts/\n*.draft.yaml\n")
    deploy_line = line_of(open(app).read(), "apps/v1")

    # validate: notes, located; valid.
    rc, out, err = validate("-m", m)
    c.eq(rc, 0, "validate: exit 0 with documents of other APIs and ignored broken files")
    c.ok(f"app.yaml:{deploy_line}:13: note: not an albd document (apiVersion \"apps/v1\", kind "
         "\"Deployment\"): skipped" in err, "validate: the Deployment is a located note", "note line", err)
    c.ok("kustomization.yaml:1:1: note: not an albd document (no apiVersion, no kind): skipped" in err,
         "validate: kustomization.yaml (no apiVersion) is a note", "note line", err)
    c.ok("error" not in err and "broken" not in err and "draft" not in err,
         "validate: no error, and the ignored files are not read", "no error", err)
    c.ok("2 server groups" in out, "validate: both albd server groups count", "2 server groups", out)

    # --refuse-foreign: each is an error.
    rc, out, err = validate("-m", m, "--refuse-foreign")
    c.eq(rc, 1, "validate --refuse-foreign: exit 1")
    c.ok(err.count("error: not an albd document") == 2 and "refused (--refuse-foreign)" in err,
         "validate --refuse-foreign: two located errors", "2 errors", err)

    # plan: the same notes on stderr, exit 2 (everything is new).
    rc, out, err = plan("-m", m)
    c.eq(rc, 2, "plan: exit 2 (against nothing)")
    c.ok(err.count("note: not an albd document") == 2, "plan: the notes on stderr", "2 notes", err)
    c.ok("Deployment" not in out and "+ ServerGroup/extra" in out, "plan: only albd resources planned",
         "ServerGroup/extra, no Deployment", out)
    rc, out, err = plan("-m", m, "--refuse-foreign")
    c.eq(rc, 1, "plan --refuse-foreign: exit 1")

    # run: applies; /status shows notes, not errors.
    albd = env.start_albd(ports=(port,))
    c.ok(wait_backend(env, port, "a", timeout=scaled(5), tls=False), "run: the configuration serves")
    st = status(albd)
    sev = sorted(p["severity"] for p in st["problems"])
    c.eq(sev, ["note", "note"], "run: /status problems are two notes")
    c.ok(any(p["source"].endswith(f"app.yaml:{deploy_line}:13") for p in st["problems"]),
         "run: the note is located", f"app.yaml:{deploy_line}:13", st["problems"])
    c.eq(st["lastError"], None, "run: no lastError")
    c.eq(albd.admin_get("/readyz")[0], 200, "run: ready")

    # Writing what .albdignore ignores reconciles nothing.
    time.sleep(scaled(0.3))
    before = reconcile_count(albd)
    write_in_place(os.path.join(m, "drafts", "more.yaml"), BROKEN)
    os.makedirs(os.path.join(m, "drafts", "deeper"))
    write_in_place(os.path.join(m, "drafts", "deeper", "x.yaml"), BROKEN)
    write_in_place(os.path.join(m, "new.draft.yaml"), BROKEN)
    time.sleep(scaled(1.0))
    c.eq(reconcile_count(albd), before, "writing ignored files reconciles nothing")
    # ...while a watched file still does.
    write_in_place(app, yaml_docs(server_group("extra2", [be.addr])) + "---\n" + DEPLOYMENT)
    c.ok(wait_for(lambda: reconcile_count(albd) > before, scaled(3)), "a watched file reconciles")

    # Un-ignoring drafts/ applies at once: its broken files are errors now.
    write_in_place(ignore, "*.draft.yaml\n")
    def drafts_errors():
        return [p for p in status(albd)["problems"] if p["severity"] == "error" and "/drafts/" in p["source"]]
    errs = wait_for(drafts_errors, scaled(3))
    c.ok(errs and len(errs) == 3, "a changed .albdignore applies: drafts/ is read (3 located errors)",
         3, errs)
    c.ok(wait_backend(env, port, "a", timeout=scaled(2), tls=False), "the configuration still serves")
    albd.check_clean_exit(c)

    # run --refuse-foreign: errors in /status; the albd resources still apply.
    write_in_place(ignore, "drafts/\n*.draft.yaml\n")
    port2, = free_ports(1)
    env.write_manifests(instance(), server_group("web", [be.addr]), http_listener("web", port2, "web"))
    a2 = env.start_albd(ports=(port2,), args=("--refuse-foreign",))
    c.ok(wait_backend(env, port2, "a", timeout=scaled(5), tls=False), "run --refuse-foreign: albd's part serves")
    sev = sorted(p["severity"] for p in status(a2)["problems"])
    c.eq(sev, ["error", "error"], "run --refuse-foreign: /status problems are two errors")
    a2.check_clean_exit(c)


run("skips_foreign_documents_and_ignored_files", body)
