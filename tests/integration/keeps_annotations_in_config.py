#!/usr/bin/env python3
"""metadata.annotations and metadata.namespace, as kustomize
(commonAnnotations, namespace:) and Argo CD (tracking annotations) write
them, are accepted on every kind, kept in /config beside the labels, and
compared by `albd plan --against`: the same manifests show "No changes."
(exit 0); an annotation-only change is a change (exit 2) shown as a
metadata change ("(metadata only)", the field's old → new), and once the
watcher applied it the plan is clean again. What serves does not change
(the same backend answers throughout)."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import free_ports, http_listener, instance, run, scaled, server_group  # noqa: E402
from reconcile_support import config, plan, wait_backend, wait_for, write_in_place, yaml_docs  # noqa: E402


def with_meta(d, annotations, namespace="shop"):
    d = json.loads(json.dumps(d))
    d["metadata"]["namespace"] = namespace
    d["metadata"]["annotations"] = dict(annotations)
    return d


def body(env):
    c = env.check
    be = env.backend("a")
    port, = free_ports(1)
    track = {"argocd.argoproj.io/tracking-id": "shop:albd/ServerGroup:shop/web",
             "config.kubernetes.io/origin": "path: base/albd.yaml"}
    path = os.path.join(env.manifest_dir, "albd.yaml")
    # The next commit's manifests, as CI plans them before they are synced
    # into the folder albd watches.
    nxt = os.path.join(env.dir, "next")
    os.makedirs(nxt)

    def write(ann, where=path):
        write_in_place(where, yaml_docs(with_meta(instance(), {"team": "edge"}),
                                       with_meta(server_group("web", [be.addr]), ann),
                                       with_meta(http_listener("web", port, "web"), {"team": "edge"})))

    write(track)
    albd = env.start_albd(ports=(port,))
    c.ok(wait_backend(env, port, "a", timeout=scaled(5), tls=False), "the configuration serves")

    _, cfg = config(albd)
    web = cfg["resources"]["ServerGroup"]["web"]
    c.eq(web.get("annotations"), track, "/config: the ServerGroup's annotations")
    c.eq(web.get("namespace"), "shop", "/config: the ServerGroup's namespace")
    c.eq(cfg["resources"]["Listener"]["web"].get("annotations"), {"team": "edge"},
         "/config: the Listener's annotations")
    c.eq(cfg["resources"]["Instance"]["test"].get("namespace"), "shop", "/config: the Instance's namespace")

    admin = f"http://127.0.0.1:{albd.admin_port}"
    rc, out, err = plan("-m", env.manifest_dir, "--against", admin)
    c.eq((rc, out.strip()), (0, "No changes. The running configuration matches the manifests."),
         "plan --against the running albd: no changes, exit 0")

    # An annotation-only change: a change (exit 2), shown as metadata.
    changed = dict(track, **{"argocd.argoproj.io/tracking-id": "shop2:albd/ServerGroup:shop/web"})
    write(changed, os.path.join(nxt, "albd.yaml"))
    rc, out, err = plan("-m", nxt, "--against", admin)
    c.eq(rc, 2, "plan: an annotation-only change is a change (exit 2)")
    c.ok("~ ServerGroup/web (metadata only)" in out, "plan: shown as a metadata-only update",
         "~ ServerGroup/web (metadata only)", out)
    c.ok('annotations.argocd.argoproj.io/tracking-id: "shop:albd/ServerGroup:shop/web" \u2192 '
         '"shop2:albd/ServerGroup:shop/web"' in out, "plan: the annotation's old \u2192 new", "field line", out)
    c.ok("Plan: 0 to add, 1 to change, 0 to destroy." in out, "plan: one change", "summary", out)
    rc, jout, _ = plan("-m", nxt, "--against", admin, "-o", "json")
    paths = [f["path"] for ch in json.loads(jout)["changes"] for f in ch["fields"]] if rc == 2 else []
    c.eq(paths, ["annotations.argocd.argoproj.io/tracking-id"], "plan -o json: the field path")

    # Synced: the watcher applies it; the plan is clean again; the same
    # backend serves.
    write(changed)
    ok = wait_for(lambda: config(albd)[1]["resources"]["ServerGroup"]["web"].get("annotations") == changed,
                  scaled(3))
    c.ok(ok, "the watcher applies the annotation change to /config")
    rc, out, _ = plan("-m", env.manifest_dir, "--against", admin)
    c.eq(rc, 0, "plan after the apply: no changes")
    c.ok(wait_backend(env, port, "a", timeout=scaled(2), tls=False), "the same backend serves")

    # A namespace change alone is a metadata change too.
    write_in_place(os.path.join(nxt, "albd.yaml"),
                   open(path).read().replace("namespace: shop", "namespace: shop-canary"))
    rc, out, _ = plan("-m", nxt, "--against", admin)
    c.ok(rc == 2 and '~ Listener/web (metadata only)' in out and
         'namespace: "shop" \u2192 "shop-canary"' in out, "plan: a namespace change is a metadata change",
         "exit 2, metadata only", (rc, out))
    albd.check_clean_exit(c)


run("keeps_annotations_in_config", body)
