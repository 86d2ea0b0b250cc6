#!/usr/bin/env python3
"""Label selectors, as kubectl writes them (k=v, k==v, k!=v, k in (a,b),
k notin (a,b), k, !k; comma = AND), select resources by metadata.labels:
`albd plan -l SELECTOR` plans only the selected resources (a resource is
kept when it matches on either side, so a label change into the selection
shows as an update); the admin endpoint's /config?l=... and /status?l=...
(percent-encoded, several l= ANDed) list only them. A bad selector is exit
64 with a located message from plan and 400 from the admin endpoint."""
import json
import os
import re
import sys
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import free_ports, http_listener, instance, run, server_group  # noqa: E402
from reconcile_support import plan, yaml_docs  # noqa: E402


def labelled(d, **labels):
    d["metadata"]["labels"] = labels
    return d


def names(cfg):
    """{kind: sorted names} of the non-empty kinds of a /config document."""
    return {k: sorted(v) for k, v in cfg.get("resources", {}).items() if v}


def changed(text):
    """The "+/~/- Kind/name" lines of a plan, as a sorted list of "sign Kind/name"."""
    return sorted(m.group(1) + " " + m.group(2) for m in re.finditer(r"^\s*([+~-]) (\w+/[\w.-]+)", text, re.M))


def body(env):
    c = env.check
    be = env.backend("a")
    p_web, p_api = free_ports(2)

    def docs(web_weight=100, api_weight=100, legacy_labels=None):
        legacy = server_group("legacy", [be.addr])
        if legacy_labels:
            labelled(legacy, **legacy_labels)
        return [instance(),
                labelled(server_group("web", [be.addr + (web_weight,)]), team="web", env="prod"),
                labelled(server_group("api", [be.addr + (api_weight,)]), team="api", env="dev"),
                legacy,
                labelled(http_listener("web", p_web, "web"), team="web"),
                labelled(http_listener("api", p_api, "api"), team="api", env="prod")]

    env.write_manifests(*docs())
    albd = env.start_albd(ports=(p_web, p_api))

    def get(path, sel_params=()):
        q = "&".join("l=" + urllib.parse.quote(s, safe="") for s in sel_params)
        return albd.admin_get(path + ("?" + q if q else ""))

    def selected(*sels):
        st, b = get("/config", sels)
        return names(json.loads(b)) if st == 200 else st

    everything = {"Instance": ["test"], "ServerGroup": ["api", "legacy", "web"], "Listener": ["api", "web"]}
    c.eq(selected(), everything, "/config without l= lists everything")
    table = [
        ("team=web", {"ServerGroup": ["web"], "Listener": ["web"]}),
        ("team==api", {"ServerGroup": ["api"], "Listener": ["api"]}),
        ("team in (web,api),env", {"ServerGroup": ["api", "web"], "Listener": ["api"]}),
        ("!team", {"Instance": ["test"], "ServerGroup": ["legacy"]}),
        ("env!=prod", {"Instance": ["test"], "ServerGroup": ["api", "legacy"], "Listener": ["web"]}),
        ("env notin (prod, qa)", {"Instance": ["test"], "ServerGroup": ["api", "legacy"], "Listener": ["web"]}),
        ("team, env=prod", {"ServerGroup": ["web"], "Listener": ["api"]}),
        ("team=nobody", {}),
        ("", everything),
    ]
    for sel, want in table:
        c.eq(selected(sel), want, f"/config?l={sel!r}")
    c.eq(selected("team=api", "env=prod"), {"Listener": ["api"]}, "two l= parameters are ANDed")
    # '+' is a space in a query; the raw form works too.
    st, b = albd.admin_get("/config?l=team+in+(web)")
    c.eq((st, names(json.loads(b)) if st == 200 else b), (200, {"ServerGroup": ["web"], "Listener": ["web"]}),
         "/config?l=team+in+(web) ('+' is a space)")

    st, b = get("/status", ["team=web"])
    res = sorted(f'{r["kind"]}/{r["name"]}' for r in json.loads(b).get("resources", [])) if st == 200 else st
    c.eq(res, ["Listener/web", "ServerGroup/web"], "/status?l=team=web lists only the selected resources")
    st, b = get("/status", ["!team"])
    res = sorted(f'{r["kind"]}/{r["name"]}' for r in json.loads(b).get("resources", [])) if st == 200 else st
    c.eq(res, ["Instance/test", "ServerGroup/legacy"], "/status?l=!team")

    for path, query, why in [("/config", "l=" + urllib.parse.quote("team in web"), "expected a value list"),
                             ("/status", "l=" + urllib.parse.quote("a,,b"), "column 3"),
                             ("/status", "l=team%zz", "malformed percent-escape"),
                             ("/config", "l=team%00", "NUL"),
                             ("/config", "l=" + urllib.parse.quote("team=web)"), "column 9")]:
        st, b = albd.admin_get(f"{path}?{query}")
        c.eq(st, 400, f"{path}?{query} answers 400")
        c.ok(why in b.decode(errors="replace"), f"{path}?{query}: the message says {why!r}", why, b)
    st, b = albd.admin_get("/healthz?l=team%zz")
    c.eq(st, 200, "endpoints without selectors ignore the query")

    # --- albd plan -l ---------------------------------------------------
    url = f"http://127.0.0.1:{albd.admin_port}"
    rc, out, err = plan("-m", env.manifest_dir, "--against", url, "-l", "team=web")
    c.eq(rc, 0, "plan -l team=web against the running albd: no changes (exit 0)")
    # The changed manifests go elsewhere: albd watches its own folder.
    new = os.path.join(env.dir, "changed")
    os.makedirs(new, exist_ok=True)
    with open(os.path.join(new, "albd.yaml"), "w") as f:
        f.write(yaml_docs(*docs(web_weight=60, api_weight=70, legacy_labels={"team": "web"})))
    rc, out, err = plan("-m", new, "--against", url, "-l", "team=web")
    c.eq(rc, 2, "plan -l team=web with changes: exit 2")
    c.eq(changed(out), ["~ ServerGroup/legacy", "~ ServerGroup/web"],
         "plan -l team=web shows web's weight and legacy, whose new label puts it in the selection")
    c.ok("labels.team" in out and "weight: 100 → 60" in out, "the plan shows the label and the weight change",
         "labels.team, weight: 100 → 60", out)
    rc, out, err = plan("-m", new, "--against", url, "-l", "team=api")
    c.eq((rc, changed(out)), (2, ["~ ServerGroup/api"]), "plan -l team=api shows only the api group")
    rc, out, err = plan("-m", new, "--against", url, "-l", "team=api", "-l", "!env")
    c.eq((rc, changed(out)), (0, []), "two -l are ANDed: team=api and !env selects nothing")
    rc, out, err = plan("-m", new, "-l", "env in (prod)")
    c.eq((rc, changed(out)), (2, ["+ Listener/api", "+ ServerGroup/web"]), "plan from nothing, -l 'env in (prod)'")
    rc, out, err = plan("-m", new, "--against", url)
    c.eq(len(changed(out)), 3, "without -l the plan shows every change")

    rc, out, err = plan("-m", env.manifest_dir, "-l", "team in web")
    c.eq(rc, 64, "plan with a bad selector exits 64")
    c.ok("bad label selector" in err and "column 9" in err and out == "",
         "the bad selector message is located and nothing is planned", "bad label selector ... column 9", err + out)
    rc, out, err = plan("-m", env.manifest_dir, "-l", "team=web,")
    c.eq(rc, 64, "plan -l 'team=web,' (trailing comma) exits 64")
    albd.check_clean_exit(c)


run("selects_resources_by_label", body)
