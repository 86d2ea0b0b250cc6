#!/usr/bin/env python3
"""albd watches its manifest tree and reconciles every way files really
change: an in-place write, an editor's write-then-rename, a file added or
removed, a folder added (moved in, or created) and removed, the Kubernetes
ConfigMap "..data" link swap, the manifest folder itself a link swapped to a
new release (without SIGHUP); SIGHUP forces a reconcile; and a slow
truncate-then-write save never applies a half-written file (a continuous
client never sees the listener vanish, and the generation moves once).

Each case checks that the change serves (another backend answers, a port
opens or closes) and that the generation moved, within a bounded time."""
import os
import shutil
import signal
import sys
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (Albd, TestFailure, certificate, free_ports, http_listener, instance, log,  # noqa: E402
                          run, scaled, server_group)
from reconcile_support import (ConfigMapDir, Poller, backend_of, can_connect, generation, reconciles,  # noqa: E402
                               refuses, wait_backend, wait_for, wait_generation_above, write_in_place,
                               write_slowly, write_then_rename, yaml_docs)


class World:
    """What every case shares: one albd on env.manifest_dir, two backends."""

    def __init__(self, env):
        self.env = env
        self.c = env.check
        certs = env.certs()
        self.a = env.backend("a")
        self.b = env.backend("b")
        (self.p_main, self.p_file, self.p_dir, self.p_dir2, self.p_hup, self.p_side, self.p_cm,
         self.p_cm2, self.p_rel) = free_ports(9)
        self.base = yaml_docs(instance(), certificate("site", certs.rsa),
                              server_group("ga", [self.a.addr]), server_group("gb", [self.b.addr]))
        self.m = env.manifest_dir
        with open(os.path.join(self.m, "base.yaml"), "w") as f:
            f.write(self.base)
        self.main = os.path.join(self.m, "main.yaml")
        write_in_place(self.main, self.listener("main", self.p_main, "ga"))
        self.albd = env.start_albd(ports=(self.p_main,))

    @staticmethod
    def listener(name, port, group):
        # Plain HTTP keeps the checks about the watch, not TLS.
        return yaml_docs(http_listener(name, port, group))

    def serves(self, what, port, backend, gen_before, albd=None):
        """Checks that port is answered by backend and the generation moved."""
        albd = albd or self.albd
        t = time.monotonic()
        ok = wait_backend(self.env, port, backend, timeout=scaled(5), tls=False)
        took = time.monotonic() - t
        self.c.ok(ok, f"{what}: backend {backend} answers on port {port} (after {took:.2f}s)", backend,
                  backend_of(self.env, port, tls=False))
        g = wait_generation_above(albd, gen_before, timeout=scaled(2))
        self.c.ok(g is not None, f"{what}: the generation moved past {gen_before}", f"> {gen_before}",
                  generation(albd))

    def closed(self, what, port):
        ok = wait_for(lambda: refuses(port), scaled(5))
        self.c.ok(ok, f"{what}: port {port} refuses connections", "refused", "still accepting")


def in_place_write(w):
    g = generation(w.albd)
    write_in_place(w.main, w.listener("main", w.p_main, "gb"))
    w.serves("in-place write", w.p_main, "b", g)


def editor_write_then_rename(w):
    g = generation(w.albd)
    write_then_rename(w.main, w.listener("main", w.p_main, "ga"), suffix=".tmp")  # main.yaml.tmp renamed over main.yaml
    w.serves("write-then-rename", w.p_main, "a", g)


def file_added(w):
    g = generation(w.albd)
    write_in_place(os.path.join(w.m, "extra.yaml"), w.listener("extra", w.p_file, "gb"))
    w.serves("file added", w.p_file, "b", g)


def file_removed(w):
    g = generation(w.albd)
    os.unlink(os.path.join(w.m, "extra.yaml"))
    w.closed("file removed", w.p_file)
    w.c.ok(wait_generation_above(w.albd, g), "file removed: the generation moved")
    w.c.ok(backend_of(w.env, w.p_main, tls=False) == "a", "file removed: the other listener still serves")


def folder_added_and_removed(w):
    # A folder prepared elsewhere and moved in: no event names the file inside.
    prepared = os.path.join(w.env.dir, "team")
    os.makedirs(prepared)
    write_in_place(os.path.join(prepared, "team.yaml"), w.listener("team", w.p_dir, "ga"))
    g = generation(w.albd)
    team = os.path.join(w.m, "team")
    os.rename(prepared, team)
    w.serves("folder moved in", w.p_dir, "a", g)
    # The new folder is watched: a change inside it applies.
    g = generation(w.albd)
    write_in_place(os.path.join(team, "team.yaml"), w.listener("team", w.p_dir, "gb"))
    w.serves("file changed inside the new folder", w.p_dir, "b", g)
    # A folder created in place, then a file written into it.
    g = generation(w.albd)
    nested = os.path.join(w.m, "more", "deeper")
    os.makedirs(nested)
    write_in_place(os.path.join(nested, "deep.yaml"), w.listener("deep", w.p_dir2, "ga"))
    w.serves("folder created, then a file written in it", w.p_dir2, "a", g)
    # Both removed.
    g = generation(w.albd)
    shutil.rmtree(team)
    w.closed("folder removed", w.p_dir)
    shutil.rmtree(os.path.join(w.m, "more"))
    w.closed("nested folder removed", w.p_dir2)
    w.c.ok(wait_generation_above(w.albd, g), "folders removed: the generation moved")


def sighup_forces_reconcile(w):
    # SIGHUP with nothing changed: a reconcile runs (and changes nothing).
    # The count must be still before the signal, so only SIGHUP can move it.
    ok0 = reconciles(w.albd, "success")
    time.sleep(scaled(0.5))
    w.c.eq(reconciles(w.albd, "success"), ok0, "before SIGHUP: no reconcile is running")
    w.albd.signal(signal.SIGHUP)
    w.c.ok(wait_for(lambda: reconciles(w.albd, "success") > ok0, scaled(5)),
           "SIGHUP runs a reconcile (albd_reconciles_total{result=success} grows)")
    # A change the watcher cannot see: the file is written through a hard
    # link outside the tree, so inotify reports nothing for the manifest dir
    # (it reports events by the path a file was opened with). The watcher
    # must not have applied it before the signal: only SIGHUP can.
    hup = os.path.join(w.m, "hup.yaml")
    g = generation(w.albd)
    write_in_place(hup, w.listener("hup", w.p_hup, "ga"))
    w.serves("hup.yaml added", w.p_hup, "a", g)
    outside = os.path.join(w.env.dir, "hup-link.yaml")
    os.link(hup, outside)
    g = generation(w.albd)
    write_in_place(outside, w.listener("hup", w.p_hup, "gb"))
    time.sleep(scaled(1.0))  # well past the watcher's debounce
    w.c.eq(generation(w.albd), g, "before SIGHUP: the write through the outside link is not applied")
    w.c.eq(backend_of(w.env, w.p_hup, tls=False), "a", "before SIGHUP: backend a still answers on the hup port")
    w.albd.signal(signal.SIGHUP)
    w.serves("SIGHUP after a change the watcher cannot see", w.p_hup, "b", g)
    os.unlink(outside)
    g = generation(w.albd)
    os.unlink(hup)
    w.closed("hup.yaml removed", w.p_hup)


def slow_truncate_then_write(w):
    # main.yaml becomes: a new 'side' listener first, then 'main' moved to
    # gb. Half-way through the write, 'main' is cut: applying that would drop
    # it or fail. Two clients poll 'main' all along.
    g0 = generation(w.albd)
    pollers = [Poller(w.env, w.p_main, tls=False, keepalive=False, name="new-conn"),
               Poller(w.env, w.p_main, tls=False, keepalive=True, name="keep-alive")]
    for p in pollers:
        p.start()
    time.sleep(scaled(0.3))
    text = w.listener("side", w.p_side, "gb") + w.listener("main", w.p_main, "gb")
    w.c.ok(text.index("name: main") > len(text) // 3, "the half-written file would cut the 'main' listener")
    write_slowly(w.main, text, pause=0.05)
    ok = wait_backend(w.env, w.p_main, "b", timeout=scaled(5), tls=False)
    w.c.ok(ok, "slow save: the final content serves (backend b on 'main')")
    w.c.ok(wait_for(lambda: can_connect(w.p_side), scaled(5)), "slow save: the new 'side' listener serves")
    time.sleep(scaled(1.0))  # anything else the watcher might still apply
    for p in pollers:
        p.stop()
    g1 = generation(w.albd)
    w.c.eq(g1 - g0, 1, "slow save: exactly one new generation (no half-written state applied)")
    for p in pollers:
        n, failures, seen = p.snapshot()
        w.c.ok(n > 5, f"slow save ({p.name} client): requests answered all along", "> 5", n)
        w.c.eq(failures[:5], [], f"slow save ({p.name} client): no request failed; the listener never vanished")
        order = [s[1] for s in seen]
        w.c.ok(order in (["a", "b"], ["b"]), f"slow save ({p.name} client): backend a then b, no flapping",
               ["a", "b"], order)


def configmap_layout(w):
    env = w.env
    cm = ConfigMapDir(os.path.join(env.dir, "configmap"))
    cm.update({"base.yaml": w.base, "listeners.yaml": w.listener("cm", w.p_cm, "ga")})
    albd = Albd(env, cm.path, ports=(w.p_cm,))
    env.albds.append(albd)
    albd.wait_ready()
    w.c.ok(wait_backend(env, w.p_cm, "a", timeout=scaled(5), tls=False), "ConfigMap: the first data serves")
    g = generation(albd)
    old = cm.current
    cm.update({"base.yaml": w.base, "listeners.yaml": w.listener("cm", w.p_cm, "gb")})
    w.c.ok(not os.path.exists(os.path.join(cm.path, old)), "ConfigMap: the old data folder is gone")
    w.serves("ConfigMap ..data swap", w.p_cm, "b", g, albd=albd)
    g = generation(albd)
    cm.update({"base.yaml": w.base,
               "listeners.yaml": w.listener("cm", w.p_cm, "gb") + w.listener("cm2", w.p_cm2, "ga")})
    w.serves("ConfigMap swap adding a listener", w.p_cm2, "a", g, albd=albd)
    g = generation(albd)
    cm.update({"base.yaml": w.base, "listeners.yaml": w.listener("cm", w.p_cm, "gb")})
    w.closed("ConfigMap swap removing a listener", w.p_cm2)
    w.c.ok(wait_generation_above(albd, g), "ConfigMap: the generation moved")
    albd.check_clean_exit(w.c)


def release_link_swap(w):
    """The manifest folder is a link that a deploy swaps to a new release
    folder: no event is raised in the old tree, but the link's own folder
    is watched, so the new release applies without SIGHUP — and from then
    on edits inside the new release are watched
    (follows_a_swapped_manifest_link checks more of it)."""
    env = w.env
    releases = [os.path.join(env.dir, f"release{i}") for i in (1, 2)]
    for d, group in zip(releases, ("ga", "gb")):
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "base.yaml"), "w") as f:
            f.write(w.base)
        write_in_place(os.path.join(d, "main.yaml"), w.listener("rel", w.p_rel, group))
    current = os.path.join(env.dir, "current")
    os.symlink(releases[0], current)
    albd = Albd(env, current, ports=(w.p_rel,))
    env.albds.append(albd)
    albd.wait_ready()
    w.c.ok(wait_backend(env, w.p_rel, "a", timeout=scaled(5), tls=False), "release 1 serves")
    g = generation(albd)
    os.symlink(releases[1], current + ".new")
    os.replace(current + ".new", current)
    w.serves("release link swapped (no SIGHUP)", w.p_rel, "b", g, albd=albd)
    time.sleep(scaled(0.3))  # release 2's files settle: later loads trust the watcher for them
    g = generation(albd)
    write_in_place(os.path.join(releases[1], "main.yaml"), w.listener("rel", w.p_rel, "ga"))
    w.serves("an edit inside the new release", w.p_rel, "a", g, albd=albd)
    albd.check_clean_exit(w.c)


CASES = [in_place_write, editor_write_then_rename, file_added, file_removed, folder_added_and_removed,
         sighup_forces_reconcile, slow_truncate_then_write, configmap_layout, release_link_swap]


def body(env):
    w = World(env)
    w.c.ok(wait_backend(env, w.p_main, "a", timeout=scaled(5), tls=False), "the first configuration serves")
    for case in CASES:
        log(f"# {case.__name__}")
        try:
            case(w)
        except TestFailure as ex:
            w.c.ok(False, f"{case.__name__} stopped: {ex}")
        except Exception:
            w.c.ok(False, f"{case.__name__} raised:\n{traceback.format_exc()}")
    w.c.ok(w.albd.alive(), "albd is still running after every case")
    w.albd.check_clean_exit(w.c)


run("watch_reconciles_changes", body)
