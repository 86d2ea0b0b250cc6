#!/usr/bin/env python3
"""`albd plan -o json` validates against schemas/api/plan.json (create,
update, delete and no-change plans), checked by a small validator of the
JSON Schema keywords that schema uses (no jsonschema package), which is
itself shown to reject broken documents; contrib/ci/albd-ci.sh turns
validate + plan into Markdown (stdout and $GITHUB_STEP_SUMMARY), exits 0 on
a valid plan, 2 with --detailed-exitcode and changes, 1 with the located
error on invalid manifests, 64 on a usage error."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (albd_binary, free_ports, http_listener, instance, run, scaled,  # noqa: E402
                          server_group, source_dir, to_yaml)

TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def validate(doc, schema, root=None, path="$"):
    """Errors of doc against schema: the keywords plan.json uses."""
    root = root or schema
    if "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith("#/"), ref
        target = root
        for part in ref[2:].split("/"):
            target = target[part]
        return validate(doc, target, root, path)
    errs = []
    t = schema.get("type")
    if t == "integer":
        if not isinstance(doc, int) or isinstance(doc, bool):
            return [f"{path}: not an integer"]
    elif t and not isinstance(doc, TYPES[t]):
        return [f"{path}: not {t}"]
    if "const" in schema and doc != schema["const"]:
        errs.append(f"{path}: not {schema['const']!r}")
    if "enum" in schema and doc not in schema["enum"]:
        errs.append(f"{path}: {doc!r} not one of {schema['enum']}")
    if "minimum" in schema and doc < schema["minimum"]:
        errs.append(f"{path}: below {schema['minimum']}")
    if "minLength" in schema and len(doc) < schema["minLength"]:
        errs.append(f"{path}: shorter than {schema['minLength']}")
    if isinstance(doc, dict):
        for k in schema.get("required", []):
            if k not in doc:
                errs.append(f"{path}: missing {k}")
        props = schema.get("properties", {})
        for k, v in doc.items():
            if k in props:
                errs += validate(v, props[k], root, f"{path}.{k}")
            elif schema.get("additionalProperties") is False:
                errs.append(f"{path}: unexpected {k}")
    if isinstance(doc, list) and "items" in schema:
        for i, v in enumerate(doc):
            errs += validate(v, schema["items"], root, f"{path}[{i}]")
    return errs


def albd(*args):
    r = subprocess.run([albd_binary(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=scaled(30))
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def write(d, docs):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "a.yaml"), "w") as f:
        f.write("\n".join("---\n" + to_yaml(x) for x in docs) + "\n")


def body(env):
    c = env.check
    with open(os.path.join(source_dir(), "schemas", "api", "plan.json")) as f:
        schema = json.load(f)
    a, b = env.backend("a"), env.backend("b")
    p1, p2 = free_ports(2)
    v1 = [instance(), server_group("web", [a.addr]), server_group("old", [b.addr]),
          http_listener("web", p1, "web"), http_listener("gone", p2, "old")]
    env.write_manifests(*v1)
    albd_proc = env.start_albd(ports=(p1, p2))
    _, cfg = albd_proc.admin_get("/config")
    state = os.path.join(env.dir, "state.json")
    with open(state, "wb") as f:
        f.write(cfg)
    albd_proc.check_clean_exit(c)

    same = os.path.join(env.dir, "same")
    write(same, v1)
    changed = os.path.join(env.dir, "changed")
    write(changed, [instance(), server_group("web", [a.addr, b.addr]), server_group("new", [b.addr]),
                    http_listener("web", p1, "web")])
    bad = os.path.join(env.dir, "bad")
    write(bad, [http_listener("web", p1, "missing")])

    plans = {}
    for name, args, want in (("from nothing", ("-m", same), 2), ("no changes", ("-m", same, "--state", state), 0),
                             ("changes", ("-m", changed, "--state", state), 2)):
        rc, out, err = albd("plan", *args, "-o", "json")
        c.eq(rc, want, f"plan -o json ({name}) exits {want}")
        try:
            doc = json.loads(out)
        except ValueError:
            doc = None
        c.ok(doc is not None, f"plan -o json ({name}) prints JSON", "JSON", out[:300])
        errs = validate(doc, schema) if doc is not None else ["not JSON"]
        c.eq(errs, [], f"plan -o json ({name}) validates against schemas/api/plan.json")
        plans[name] = doc or {}
    actions = sorted({ch["action"] for ch in plans["changes"].get("changes", [])})
    c.eq(actions, ["create", "delete", "update"], "the changed plan exercises create, update and delete")
    c.eq(plans["no changes"].get("changes"), [], "no changes: an empty list")

    # The validator rejects what the schema forbids (so the checks above can fail).
    broken = json.loads(json.dumps(plans["changes"]))
    del broken["summary"]
    broken["changes"][0]["action"] = "replace"
    broken["changes"][0]["fields"][0]["extra"] = 1
    broken["format_version"] = 1
    errs = validate(broken, schema)
    c.ok(len(errs) == 4, "the validator finds 4 errors in a broken plan", 4, errs)

    # The CI script.
    ci = os.path.join(source_dir(), "contrib", "ci", "albd-ci.sh")
    summary = os.path.join(env.dir, "step-summary.md")

    def ci_run(*args, summary_env=True):
        e = dict(os.environ)
        e.pop("GITHUB_STEP_SUMMARY", None)
        if summary_env:
            e["GITHUB_STEP_SUMMARY"] = summary
        r = subprocess.run([ci, "--albd", albd_binary(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=e, timeout=scaled(60))
        return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")

    rc, md, err = ci_run("-m", changed, "--state", state)
    c.ok(rc == 0, "albd-ci.sh: valid manifests with changes exit 0", 0, (rc, err))
    c.ok(md.startswith("### albd plan: 1 to add, 1 to change, 2 to destroy"), "albd-ci.sh: Markdown title "
         "with the summary", "### albd plan: 1 to add, 1 to change, 2 to destroy", md[:200])
    for row in ("| + create | `ServerGroup/new` |", "| ~ update | `ServerGroup/web` |",
                "| - delete | `Listener/gone` |"):
        c.ok(row in md, f"albd-ci.sh: a table row {row}", row, md[:800])
    c.ok("<details><summary>~ ServerGroup/web</summary>" in md and "`spec.servers" in md,
         "albd-ci.sh: the update's fields in a details block", "details", md[-800:])
    with open(summary) as f:
        c.eq(f.read(), md, "albd-ci.sh: the same Markdown appended to $GITHUB_STEP_SUMMARY")
    rc, md, _ = ci_run("-m", changed, "--state", state, "--detailed-exitcode", summary_env=False)
    c.eq(rc, 2, "albd-ci.sh --detailed-exitcode: changes exit 2")
    rc, md, _ = ci_run("-m", same, "--state", state, "--detailed-exitcode", summary_env=False)
    c.ok(rc == 0 and "No changes" in md, "albd-ci.sh: no changes exit 0 and say so", "0, No changes", (rc, md))
    rc, md, _ = ci_run("-m", bad, summary_env=False)
    c.ok(rc == 1 and "are invalid" in md and "a.yaml:" in md and "error:" in md,
         "albd-ci.sh: invalid manifests exit 1 with the located errors in the Markdown", "1, file:line", (rc, md))
    rc, _, _ = ci_run("-m", same, "--state", state, "--against", "http://127.0.0.1:1", summary_env=False)
    c.eq(rc, 64, "albd-ci.sh: a usage error exits 64")
    rc, md, _ = ci_run("-m", same, "--state", os.path.join(env.dir, "missing.json"), summary_env=False)
    c.ok(rc == 1 and "albd plan failed" in md, "albd-ci.sh: a failing plan exits 1 and says so", 1, (rc, md))


run("plan_json_matches_schema_and_ci_summary", body)
