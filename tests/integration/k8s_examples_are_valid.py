#!/usr/bin/env python3
"""contrib/k8s/*.yaml work as written, as far as a machine without a cluster
can tell: every object is checked against the Kubernetes API's OpenAPI
schema as Debian packages it (python3-kubernetes: each model's field names
and types, and required fields; unknown fields are errors), and the fields
that matter are checked: albd can read the Secret (fsGroup and a
group-readable mode), probes go to the probe-only address, the admin
endpoint stays on loopback, the pod's termination grace covers
--shutdown-grace + --drain-timeout, selectors of Services and
PodDisruptionBudgets match the pods, mounts name volumes that exist. The
albd manifests inside (ConfigMaps) pass `albd validate` with test
certificates in place of the Secret's files. Each check is shown to fail on
a broken copy."""
import copy
import glob
import inspect
import os
import re
import subprocess
import sys

try:
    import yaml
    import kubernetes.client as k8s
except ImportError:
    k8s = None
    # CMake may have found a python3 (pyenv, venv) without Debian's packages.
    if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != os.path.realpath(
            "/usr/bin/python3") and not os.environ.get("ALBD_K8S_REEXEC"):
        os.environ["ALBD_K8S_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3", os.path.abspath(__file__)])
    try:
        import yaml
    except ImportError:
        yaml = None

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import albd_binary, log, run, scaled, source_dir  # noqa: E402

# --------------------------------------------------------------------------
# The OpenAPI schema, through the generated models of python3-kubernetes.


def model_for(api_version, kind):
    version = api_version.split("/")[-1]
    return getattr(k8s, version[0].upper() + version[1:] + kind, None)


def required_fields(cls):
    """Attributes whose setter refuses None (required in the OpenAPI schema)."""
    out = []
    for attr in cls.openapi_types:
        prop = getattr(cls, attr, None)
        if isinstance(prop, property) and prop.fset is not None:
            try:
                src = inspect.getsource(prop.fset)
            except (OSError, TypeError):
                continue
            if "must not be `None`" in src:
                out.append(attr)
    return out


def check_type(v, typ, path):
    if typ in ("str", "datetime", "date"):
        return [] if isinstance(v, str) else [f"{path}: not a string"]
    if typ == "int":
        return [] if isinstance(v, int) and not isinstance(v, bool) else [f"{path}: not an integer"]
    if typ == "float":
        return [] if isinstance(v, (int, float)) and not isinstance(v, bool) else [f"{path}: not a number"]
    if typ == "bool":
        return [] if isinstance(v, bool) else [f"{path}: not a boolean"]
    if typ == "object":  # IntOrString, Quantity, free-form
        return []
    m = re.fullmatch(r"list\[(.+)\]", typ)
    if m:
        if not isinstance(v, list):
            return [f"{path}: not a list"]
        return [e for i, x in enumerate(v) for e in check_type(x, m.group(1), f"{path}[{i}]")]
    m = re.fullmatch(r"dict\(str, (.+)\)", typ)
    if m:
        if not isinstance(v, dict):
            return [f"{path}: not a map"]
        return [e for kk, x in v.items() for e in check_type(x, m.group(1), f"{path}.{kk}")]
    cls = getattr(k8s, typ, None)
    if cls is None:
        return [f"{path}: unknown type {typ}"]
    return check_model(v, cls, path)


def check_model(v, cls, path):
    if not isinstance(v, dict):
        return [f"{path}: not an object ({cls.__name__})"]
    by_json = {j: a for a, j in cls.attribute_map.items()}
    errs = []
    for key, val in v.items():
        if key not in by_json:
            errs.append(f"{path}.{key}: unknown field of {cls.__name__}")
            continue
        if val is None:
            continue
        errs += check_type(val, cls.openapi_types[by_json[key]], f"{path}.{key}")
    for attr in required_fields(cls):
        if cls.attribute_map[attr] not in v:
            errs.append(f"{path}: missing required {cls.attribute_map[attr]} ({cls.__name__})")
    return errs


def openapi_errors(doc):
    cls = model_for(doc.get("apiVersion", ""), doc.get("kind", ""))
    if cls is None:
        return [f"{doc.get('apiVersion')}/{doc.get('kind')}: no such kind in the Kubernetes API"]
    return check_model(doc, cls, f"{doc['kind']}/{doc.get('metadata', {}).get('name')}")


# --------------------------------------------------------------------------
# The fields that matter.


def opt(args, name):
    return args[args.index(name) + 1] if name in args and args.index(name) + 1 < len(args) else None


def matters_errors(docs):
    errs = []
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d.get("kind"), []).append(d)
    configmaps = {d["metadata"]["name"] for d in by_kind.get("ConfigMap", [])}
    deployments = by_kind.get("Deployment", [])
    for dep in deployments:
        name = dep["metadata"]["name"]
        spec = dep["spec"]
        pod = spec["template"]["spec"]
        labels = spec["template"]["metadata"].get("labels", {})
        if not set(spec["selector"]["matchLabels"].items()) <= set(labels.items()):
            errs.append(f"Deployment/{name}: selector does not match the pod labels")
        psc = pod.get("securityContext", {})
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for c in pod.get("initContainers", []) + pod["containers"]:
            for m in c.get("volumeMounts", []):
                if m["name"] not in volumes:
                    errs.append(f"Deployment/{name}: {c['name']} mounts unknown volume {m['name']}")
        for v in volumes.values():
            cm = v.get("configMap", {}).get("name")
            if cm and cm not in configmaps:
                errs.append(f"Deployment/{name}: volume {v['name']} names ConfigMap {cm}, not in the file")
        albds = [c for c in pod["containers"] if (c.get("args") or [None])[0] == "run" and "albd" in c["image"]]
        if not albds:
            errs.append(f"Deployment/{name}: no albd container")
        for c in albds:
            args = c["args"]
            where = f"Deployment/{name} container {c['name']}"
            ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
            probe = opt(args, "--probe")
            if not probe or ports.get("probe") != int(probe.rsplit(":", 1)[1]):
                errs.append(f"{where}: --probe ADDR:PORT with a container port named probe on that port")
            admin = opt(args, "--admin")
            if admin and admin != "off" and not admin.startswith(("127.", "[::1]", "localhost")):
                errs.append(f"{where}: the admin endpoint must stay on loopback, not {admin}")
            for pname, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
                hg = c.get(pname, {}).get("httpGet", {})
                if hg.get("path") != path or hg.get("port") not in ("probe", ports.get("probe")):
                    errs.append(f"{where}: {pname} must GET {path} on the probe port")
            grace = float(opt(args, "--shutdown-grace") or 0)
            drain = float(opt(args, "--drain-timeout") or 30)
            if grace <= 0:
                errs.append(f"{where}: --shutdown-grace must be set (readiness fails before the listeners close)")
            if pod.get("terminationGracePeriodSeconds", 30) <= grace + drain:
                errs.append(f"Deployment/{name}: terminationGracePeriodSeconds must exceed grace + drain "
                            f"({grace} + {drain})")
            if not c.get("securityContext", {}).get("readOnlyRootFilesystem"):
                errs.append(f"{where}: readOnlyRootFilesystem")
            uid = c.get("securityContext", {}).get("runAsUser", psc.get("runAsUser"))
            if not uid:
                errs.append(f"{where}: runs as root (set runAsUser)")
            for m in c.get("volumeMounts", []):
                sec = volumes.get(m["name"], {}).get("secret")
                if sec is None:
                    continue
                mode = sec.get("defaultMode", 0o644)
                readable = bool(mode & 0o004) or ("fsGroup" in psc and bool(mode & 0o040))
                if not readable:
                    errs.append(f"{where}: cannot read Secret {sec['secretName']} (mode {mode:o}, "
                                f"fsGroup {psc.get('fsGroup')}): mount it group-readable with fsGroup")
                elif mode & 0o004:
                    errs.append(f"{where}: Secret {sec['secretName']} is world-readable (mode {mode:o})")
            mdir = opt(args, "-m")
            if not any(mdir == m["mountPath"] or mdir.startswith(m["mountPath"].rstrip("/") + "/")
                       for m in c.get("volumeMounts", [])):
                errs.append(f"{where}: -m {mdir} is not under a mounted volume")
    pods = [(d["spec"]["template"]["metadata"].get("labels", {}), d) for d in deployments]
    for kind in ("Service", "PodDisruptionBudget"):
        for s in by_kind.get(kind, []):
            sel = s["spec"]["selector"]
            sel = sel.get("matchLabels", sel) if kind == "PodDisruptionBudget" else sel
            hit = [d for lab, d in pods if set(sel.items()) <= set(lab.items())]
            if not hit:
                errs.append(f"{kind}/{s['metadata']['name']}: selects no pod of this file")
            if kind == "PodDisruptionBudget":
                for d in hit:
                    if d["spec"].get("replicas", 1) < 2 or s["spec"].get("maxUnavailable", 1) >= d["spec"]["replicas"]:
                        errs.append(f"{kind}/{s['metadata']['name']}: leaves Deployment/{d['metadata']['name']} "
                                    "no replica during a disruption")
            if kind == "Service":
                for d in hit:
                    names = {p.get("name") for c in d["spec"]["template"]["spec"]["containers"]
                             for p in c.get("ports", [])}
                    for p in s["spec"]["ports"]:
                        if isinstance(p.get("targetPort"), str) and p["targetPort"] not in names:
                            errs.append(f"Service/{s['metadata']['name']}: targetPort {p['targetPort']} "
                                        "is no container port")
    return errs


def albd_manifests(docs):
    """The albd manifests inside ConfigMaps: {configmap/key: text}."""
    out = {}
    for d in docs:
        if d.get("kind") == "ConfigMap":
            for key, text in (d.get("data") or {}).items():
                if key.endswith((".yaml", ".yml")) and "apiVersion: albd/" in text:
                    out[f"{d['metadata']['name']}/{key}"] = text
    return out


def body(env):
    c = env.check
    if yaml is None:
        c.ok(False, "PyYAML (python3-yaml) is installed: contrib/deps.sh installs it")
        return
    if k8s is None:
        log("skip - OpenAPI check: python3-kubernetes is not installed (contrib/deps.sh installs it); "
            "checking well-formedness and the fields that matter only")
    files = sorted(glob.glob(os.path.join(source_dir(), "contrib", "k8s", "*.yaml")))
    c.eq([os.path.basename(f) for f in files], ["git-sync.yaml", "replicas-pdb.yaml", "sidecar.yaml"],
         "contrib/k8s has the sidecar, git-sync and replicas+PDB examples")
    certs = env.certs()
    for f in files:
        name = os.path.basename(f)
        with open(f) as fh:
            docs = [d for d in yaml.safe_load_all(fh) if d]
        c.ok(docs and all(isinstance(d, dict) and d.get("apiVersion") and d.get("kind") and
                          d.get("metadata", {}).get("name") for d in docs),
             f"{name}: well-formed objects (apiVersion, kind, metadata.name)")
        if k8s is not None:
            errs = [e for d in docs for e in openapi_errors(d)]
            c.eq(errs, [], f"{name}: every object matches the Kubernetes OpenAPI schema")
        c.eq(matters_errors(docs), [], f"{name}: the fields that matter")
        kinds = {d["kind"] for d in docs}
        if name == "replicas-pdb.yaml":
            c.ok("PodDisruptionBudget" in kinds, f"{name}: has a PodDisruptionBudget")
        for where, text in albd_manifests(docs).items():
            mdir = os.path.join(env.dir, "m-" + where.replace("/", "-"))
            os.makedirs(mdir)
            text = text.replace("/etc/albd/tls/tls.crt", certs.rsa.cert).replace("/etc/albd/tls/tls.key",
                                                                                  certs.rsa.key)
            with open(os.path.join(mdir, "albd.yaml"), "w") as fh:
                fh.write(text)
            r = subprocess.run([albd_binary(), "validate", "-m", mdir], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=scaled(30))
            c.ok(r.returncode == 0, f"{name}: the albd manifests of {where} validate", 0,
                 r.stdout.decode(errors="replace")[-800:])
        for d in docs:
            for key, text in ((d.get("data") or {}).items() if d.get("kind") == "ConfigMap" else []):
                if text.startswith("#!/bin/sh"):
                    r = subprocess.run(["sh", "-n"], input=text.encode(), timeout=scaled(10))
                    c.eq(r.returncode, 0, f"{name}: the script {d['metadata']['name']}/{key} parses (sh -n)")

    # Each check can fail: broken copies of the sidecar.
    with open(os.path.join(source_dir(), "contrib", "k8s", "sidecar.yaml")) as fh:
        good = [d for d in yaml.safe_load_all(fh) if d]
    dep = next(i for i, d in enumerate(good) if d["kind"] == "Deployment")

    def broken(change):
        docs = copy.deepcopy(good)
        pod = docs[dep]["spec"]["template"]["spec"]
        change(pod, next(x for x in pod["containers"] if x["name"] == "albd"))
        return docs

    cases = {
        "a Secret mounted 0400": lambda pod, a: next(v for v in pod["volumes"] if "secret" in v)["secret"]
        .update(defaultMode=0o400),
        "no fsGroup": lambda pod, a: pod["securityContext"].pop("fsGroup"),
        "the admin endpoint on 0.0.0.0": lambda pod, a: a["args"].extend(["--admin", "0.0.0.0:9901"]),
        "probes on the admin port": lambda pod, a: a["readinessProbe"]["httpGet"].update(port=9901),
        "no --shutdown-grace": lambda pod, a: a.update(args=[x for i, x in enumerate(a["args"]) if
                                                           "--shutdown-grace" not in a["args"][max(0, i - 1):i + 1]]),
        "a short termination grace": lambda pod, a: pod.update(terminationGracePeriodSeconds=30),
    }
    for what, change in cases.items():
        c.ok(matters_errors(broken(change)), f"the check finds {what}")
    if k8s is not None:
        bad = broken(lambda pod, a: a.update(readinessProbe={"httpGet": {"path": "/readyz"}, "periodSecond": 2}))
        errs = [e for d in bad for e in openapi_errors(d)]
        c.ok(any("periodSecond" in e for e in errs) and any("port" in e for e in errs),
             "the OpenAPI check finds an unknown field and a missing required one", "both", errs)
        bad = broken(lambda pod, a: a.update(ports=[{"name": "https", "containerPort": "8443"}]))
        c.ok(any("containerPort" in e for e in [e for d in bad for e in openapi_errors(d)]),
             "the OpenAPI check finds a wrong type")


run("k8s_examples_are_valid", body)
