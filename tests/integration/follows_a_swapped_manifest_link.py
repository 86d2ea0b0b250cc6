#!/usr/bin/env python3
"""`albd run -m LINK` where LINK is a symbolic link that a deploy re-points
to a new folder while keeping the old one (git-sync's --link, Capistrano's
`current`): albd applies the new folder without SIGHUP, within a bounded
time, and from then on watches the new folder, not the old one.

Swapped as git-sync does it (a new link renamed over the old one:
`ln -sfn B link.tmp && mv -T link.tmp link`) and as `ln -sfn B link` does
it; with the link given as -m and with the link on the way to it
(-m LINK/albd: the manifests in a folder of the synced repository).

What is applied is read from /config: each folder's ServerGroup carries a
label naming its folder, so no traffic is needed."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import Albd, log, run, scaled  # noqa: E402
from reconcile_support import config, metrics, wait_for, write_in_place  # noqa: E402

BOUND = 3.0  # seconds (scaled) from the swap to the new folder in /config


def group(release):
    return ("apiVersion: albd/v1\nkind: ServerGroup\n"
            f"metadata:\n  name: web\n  labels: {{release: \"{release}\"}}\n"
            "spec:\n  servers: [{address: 127.0.0.1, port: 8081}]\n")


def release_of(albd):
    _, cfg = config(albd)
    return cfg["resources"]["ServerGroup"]["web"]["labels"].get("release")


def sh(cmd, cwd):
    r = subprocess.run(["sh", "-c", cmd], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=30)
    if r.returncode != 0:
        raise RuntimeError(f"{cmd}: {r.stdout.decode(errors='replace')}")


def applies(c, albd, want, what):
    """Checks that /config shows release want within BOUND; returns the
    seconds it took."""
    t0 = time.monotonic()
    ok = wait_for(lambda: release_of(albd) == want, scaled(BOUND))
    took = time.monotonic() - t0
    c.ok(ok, f"{what}: /config shows release {want} without SIGHUP (after {took:.2f}s, "
         f"bound {scaled(BOUND):.1f}s)", want, release_of(albd))
    return took


def reconcile_count(albd):
    m = metrics(albd)
    return sum(v for k, v in m.items() if k.startswith("albd_reconciles_total"))


def stays(c, albd, want, what, before):
    """Checks that nothing was reconciled since the count before, well past
    the debounce, and that want still serves."""
    time.sleep(scaled(1.0))
    c.eq((reconcile_count(albd), release_of(albd)), (before, want), what + " (no reconcile)")


def link_as_m(env):
    """-m is the link itself."""
    c = env.check
    base = os.path.join(env.dir, "git")
    for name in ("A", "B"):
        os.makedirs(os.path.join(base, name))
        write_in_place(os.path.join(base, name, "m.yaml"), group(name))
    os.symlink("A", os.path.join(base, "link"))
    albd = Albd(env, os.path.join(base, "link"))
    env.albds.append(albd)
    # A folder without a listener is never ready (/readyz): wait for /config.
    wait_for(lambda: release_of(albd) == "A", scaled(10))
    c.eq(release_of(albd), "A", "link -> A: A serves")

    sh("ln -sfn B link.tmp && mv -T link.tmp link", base)  # git-sync's atomic swap
    took = applies(c, albd, "B", "ln -sfn B link.tmp && mv -T link.tmp link")
    c.ok(os.path.isdir(os.path.join(base, "A")), "the old folder A is still there")

    # The new folder is the one watched now, the old one no longer is.
    time.sleep(scaled(0.3))
    write_in_place(os.path.join(base, "B", "m.yaml"), group("B2"))
    applies(c, albd, "B2", "an edit inside B")
    time.sleep(scaled(0.3))
    before = reconcile_count(albd)
    write_in_place(os.path.join(base, "A", "m.yaml"), group("A-stale"))
    stays(c, albd, "B2", "an edit inside the old folder A applies nothing", before)

    sh("ln -sfn A link", base)  # the plain form: no temporary name
    applies(c, albd, "A-stale", "ln -sfn A link (back to the kept folder)")
    log(f"swap to applied: {took:.3f}s")
    c.ok("now resolves to" in albd.stderr(), "the log says where the link now leads")
    albd.check_clean_exit(c)


def link_on_the_way(env):
    """-m is a folder below the link (git-sync's link to a commit, the
    manifests in its albd/ folder)."""
    c = env.check
    base = os.path.join(env.dir, "sync")
    for name in ("rev1", "rev2"):
        os.makedirs(os.path.join(base, name, "albd"))
        write_in_place(os.path.join(base, name, "albd", "m.yaml"), group(name))
    os.symlink("rev1", os.path.join(base, "current"))
    albd = Albd(env, os.path.join(base, "current", "albd"))
    env.albds.append(albd)
    wait_for(lambda: release_of(albd) == "rev1", scaled(10))
    c.eq(release_of(albd), "rev1", "current -> rev1: rev1 serves")
    sh("ln -sfn rev2 current.tmp && mv -T current.tmp current", base)
    applies(c, albd, "rev2", "-m current/albd, current swapped to rev2")
    # Other names in the link's folder change nothing.
    time.sleep(scaled(0.3))
    before = reconcile_count(albd)
    os.makedirs(os.path.join(base, "rev3", "albd"))
    write_in_place(os.path.join(base, "rev3", "albd", "m.yaml"), group("rev3"))
    stays(c, albd, "rev2", "a new folder beside the link applies nothing", before)
    albd.check_clean_exit(c)


def body(env):
    for case in (link_as_m, link_on_the_way):
        log(f"# {case.__name__}")
        case(env)


run("follows_a_swapped_manifest_link", body)
