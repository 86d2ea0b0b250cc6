#!/usr/bin/env python3
"""`albd plan` shows what applying the manifests would change, like
`terraform plan`: against nothing (every resource created, exit 2), against a
running albd's /config (no changes, exit 0; then a changed weight, an added
server group, a changed certificate and a deleted listener, exit 2, with
`~`/`+`/`-` lines, `old → new` field lines and the summary), as JSON for CI,
and against a saved /config state. Key material never appears."""
import json
import os
import re
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (certificate, free_ports, free_port, http_listener, https_listener,  # noqa: E402
                          instance, run, server_group)
from reconcile_support import config, fingerprint_sha256, plan, yaml_docs  # noqa: E402


def has_line(text, sign, kind, name):
    return re.search(rf"^\s*{re.escape(sign)} {kind}/{re.escape(name)}\b", text, re.M) is not None


def summary(text):
    m = re.search(r"^Plan: (\d+) to add, (\d+) to change, (\d+) to destroy\.$", text, re.M)
    return tuple(int(x) for x in m.groups()) if m else None


def no_key_material(c, what, text, key_paths):
    c.ok("PRIVATE KEY" not in text, f"{what}: no PRIVATE KEY", "absent", "PRIVATE KEY present")
    for kp in key_paths:
        with open(kp) as f:
            body = [ln for ln in f.read().splitlines() if ln and not ln.startswith("-----")]
        leaked = [ln for ln in body[1:4] if ln in text]
        c.ok(not leaked, f"{what}: no line of {os.path.basename(kp)}", [], leaked)


def body(env):
    c = env.check
    certs = env.certs()
    a = env.backend("a")
    b = env.backend("b")
    p_web, p_extra = free_ports(2)
    keys = [certs.rsa.key, certs.ecdsa.key]

    def docs(weight=100, cert=certs.rsa, new_group=False, extra=True):
        d = [instance(),
             certificate("site", cert),
             server_group("web", [a.addr + (weight,)]),
             server_group("api", [b.addr])]
        if new_group:
            d.append(server_group("new", [b.addr + (30,)]))
        d.append(https_listener("web", p_web, "site", "web"))
        if extra:
            d.append(http_listener("extra", p_extra, "api"))
        return d

    env.write_manifests(*docs())
    resources = [("Instance", "test"), ("Certificate", "site"), ("ServerGroup", "web"), ("ServerGroup", "api"),
                 ("Listener", "web"), ("Listener", "extra")]

    # 1. Against nothing: every resource is created.
    rc, out, err = plan("-m", env.manifest_dir)
    c.eq(rc, 2, "plan against nothing exits 2 (changes)")
    for kind, name in resources:
        c.ok(has_line(out, "+", kind, name), f"plan against nothing shows + {kind}/{name}", "a + line", out[-1500:])
    adds = len(re.findall(r"^\s*\+ [A-Za-z]+/", out, re.M))
    s = summary(out)
    c.ok(s is not None and s[0] == adds and s[0] >= len(resources) and s[1:] == (0, 0),
         "plan against nothing ends with 'Plan: N to add, 0 to change, 0 to destroy.'",
         f"N = {adds} (>= {len(resources)})", s)
    no_key_material(c, "plan against nothing", out + err, keys)
    rc2, out2, _ = plan("-m", env.manifest_dir)
    c.eq(out2, out, "plan output is deterministic (same text twice)")

    rc, out, err = plan("-m", env.manifest_dir, "-o", "json")
    c.eq(rc, 2, "plan -o json against nothing exits 2")
    try:
        j = json.loads(out)
    except ValueError:
        j = {}
    c.eq(j.get("format_version"), "1", "plan JSON has format_version 1")
    creates = {(ch.get("kind"), ch.get("name")) for ch in j.get("changes", []) if ch.get("action") == "create"}
    c.ok(set(resources) <= creates, "plan JSON against nothing creates every resource", sorted(resources),
         sorted(creates))
    c.eq(j.get("summary", {}).get("destroy"), 0, "plan JSON against nothing destroys nothing")

    # 2. Against the running albd: no changes.
    albd = env.start_albd(ports=(p_web, p_extra))
    admin = f"http://127.0.0.1:{albd.admin_port}"
    rc, out, err = plan("-m", env.manifest_dir, "--against", admin)
    c.eq(rc, 0, "plan against the running albd with the same manifests exits 0")
    c.ok(re.search(r"^No changes\.", out, re.M), "plan says 'No changes.'", "No changes.", out[-800:] + err[-800:])

    # 3. An edited copy: weight 100 → 50, a new group, the ECDSA certificate, no 'extra' listener.
    edited = os.path.join(env.dir, "edited")
    shutil.copytree(env.manifest_dir, edited)
    with open(os.path.join(edited, "albd.yaml"), "w") as f:
        f.write(yaml_docs(*docs(weight=50, cert=certs.ecdsa, new_group=True, extra=False)))
    rc, out, err = plan("-m", edited, "--against", admin)
    c.eq(rc, 2, "plan of the edited copy against the running albd exits 2")
    c.ok(has_line(out, "~", "ServerGroup", "web"), "plan shows ~ ServerGroup/web", "~ ServerGroup/web", out)
    c.ok(re.search(r"weight: 100 → 50\s*$", out, re.M), "plan shows 'weight: 100 → 50'", "a weight line", out)
    c.ok(has_line(out, "+", "ServerGroup", "new"), "plan shows + ServerGroup/new", "+ ServerGroup/new", out)
    c.ok(has_line(out, "-", "Listener", "extra"), "plan shows - Listener/extra", "- Listener/extra", out)
    c.ok(has_line(out, "~", "Certificate", "site"), "plan shows ~ Certificate/site", "~ Certificate/site", out)
    flat = out.lower().replace(":", "")
    fp_old, fp_new = fingerprint_sha256(certs.rsa.cert), fingerprint_sha256(certs.ecdsa.cert)
    c.ok(fp_old in flat and fp_new in flat, "the certificate change shows the old and new SHA-256 fingerprints",
         (fp_old, fp_new), out)
    for kind, name in [("Listener", "web"), ("ServerGroup", "api"), ("Instance", "test")]:
        c.ok(not re.search(rf"^\s*[-+~] {kind}/{name}\b", out, re.M), f"unchanged {kind}/{name} is not in the plan",
             "absent", out)
    c.eq(summary(out), (1, 2, 1), "plan ends with 'Plan: 1 to add, 2 to change, 1 to destroy.'")
    no_key_material(c, "plan of the edited copy", out + err, keys)

    rc, jout, err = plan("-m", edited, "--against", admin, "-o", "json")
    c.eq(rc, 2, "plan -o json of the edited copy exits 2")
    try:
        j = json.loads(jout)
    except ValueError:
        j = {}
        c.ok(False, "plan -o json prints JSON", "JSON", jout[:500])
    c.eq(j.get("format_version"), "1", "plan JSON has format_version 1")
    got = sorted((ch.get("action"), ch.get("kind"), ch.get("name")) for ch in j.get("changes", []))
    c.eq(got, sorted([("update", "ServerGroup", "web"), ("create", "ServerGroup", "new"),
                      ("delete", "Listener", "extra"), ("update", "Certificate", "site")]),
         "plan JSON lists exactly the four changes")
    web = next((ch for ch in j.get("changes", []) if ch.get("name") == "web" and ch.get("kind") == "ServerGroup"),
               {})
    wf = [f for f in web.get("fields", []) if str(f.get("path", "")).endswith("weight")]
    c.ok(len(wf) == 1 and str(wf[0].get("old")) == "100" and str(wf[0].get("new")) == "50",
         "plan JSON: ServerGroup/web field ...weight old 100 new 50", "one weight field 100 → 50", web.get("fields"))
    c.eq(j.get("summary"), {"add": 1, "change": 2, "destroy": 1}, "plan JSON summary")
    no_key_material(c, "plan -o json of the edited copy", jout, keys)

    # 4. Against a saved /config state: the same plan.
    text, cfg = config(albd)
    no_key_material(c, "/config", text, keys)
    c.ok(fp_old in text.lower().replace(":", ""), "/config shows the certificate's SHA-256 fingerprint", fp_old,
         text[:1000])
    state = os.path.join(env.dir, "state.json")
    with open(state, "w") as f:
        f.write(text)
    rc, sout, err = plan("-m", edited, "--state", state, "-o", "json")
    c.eq(rc, 2, "plan --state of the edited copy exits 2")
    try:
        sj = json.loads(sout)
    except ValueError:
        sj = None
    c.eq(sj, j, "plan --state (saved /config) gives the same JSON as plan --against")
    rc, out, err = plan("-m", env.manifest_dir, "--state", state)
    c.eq(rc, 0, "plan --state with the manifests that made the state exits 0")

    # 5. Errors exit 1.
    broken = os.path.join(env.dir, "broken")
    os.makedirs(broken)
    with open(os.path.join(broken, "bad.yaml"), "w") as f:
        f.write("apiVersion: albd/v1\nkind: Listener\nmetadata: {name: x\nspec: [\n")
    rc, out, err = plan("-m", broken)
    c.eq(rc, 1, "plan of unparsable manifests exits 1")
    rc, out, err = plan("-m", env.manifest_dir, "--against", f"http://127.0.0.1:{free_port()}")
    c.eq(rc, 1, "plan against an admin endpoint that does not answer exits 1")

    albd.check_clean_exit(c)


run("plan_shows_changes", body)
