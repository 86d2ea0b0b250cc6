#!/usr/bin/env python3
"""`albd validate` exits 1 and names each problem as file:line:col: error:
(unknown field, unresolved reference, duplicate port, YAML syntax), and
exits 0 on a valid set and on manifests/examples."""
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import albd_binary, run, scaled, self_signed, source_dir  # noqa: E402

LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): error: (?P<msg>.*)$")

INSTANCE = """apiVersion: albd/v1
kind: Instance
metadata:
  name: test
spec:
  addresses: ["127.0.0.1"]
"""

GROUP = """apiVersion: albd/v1
kind: ServerGroup
metadata:
  name: web
spec:
  servers:
    - address: 127.0.0.1
      port: 9001
      {weight}: 10
"""

LISTENERS = """apiVersion: albd/v1
kind: Listener
metadata:
  name: first
spec:
  instance: test
  protocol: HTTP
  port: 18080
  defaultAction:
    forward:
      serverGroup: {ref}
---
apiVersion: albd/v1
kind: Listener
metadata:
  name: second
spec:
  instance: test
  protocol: HTTP
  port: {port2}
  defaultAction:
    forward:
      serverGroup: web
"""

TLS = """apiVersion: albd/v1
kind: Certificate
metadata:
  name: site
spec:
  source:
    files:
      certificate: certs/site.pem
      privateKey: certs/site.key
---
apiVersion: albd/v1
kind: Listener
metadata:
  name: secure
spec:
  instance: test
  protocol: HTTPS
  port: 18443
  tls:
    certificate: site
  defaultAction:
    forward:
      serverGroup: web
"""


def body(env):
    c = env.check

    def make(name, weight="weight", ref="web", port2=18081, extra=None):
        d = os.path.join(env.dir, name)
        os.makedirs(os.path.join(d, "certs"))
        self_signed(os.path.join(d, "certs", "site.pem"), os.path.join(d, "certs", "site.key"))
        files = {"instance.yaml": INSTANCE, "group.yaml": GROUP.format(weight=weight),
                 "listeners.yml": LISTENERS.format(ref=ref, port2=port2), "tls.yaml": TLS}
        files.update(extra or {})
        for fn, text in files.items():
            with open(os.path.join(d, fn), "w") as f:
                f.write(text)
        return d

    def validate(d):
        r = subprocess.run([albd_binary(), "validate", "-m", d], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=scaled(30))
        err = r.stderr.decode(errors="replace")
        located = [m.groupdict() for m in map(LINE.match, err.splitlines()) if m]
        return r.returncode, err, located

    def names(located, fn, lines, words, what):
        hit = [e for e in located if os.path.basename(e["file"]) == fn and int(e["line"]) in lines
               and int(e["col"]) >= 1 and any(w in e["msg"].lower() for w in words)]
        c.ok(hit, what, f"{fn}:{sorted(lines)}:col: error: ...{words}...", located)

    rc, err, located = validate(make("valid"))
    c.eq(rc, 0, "a valid manifest set validates (exit 0)")
    c.eq(located, [], "a valid set prints no error line")
    if rc != 0:
        print(err)

    rc, err, located = validate(make("unknown-field", weight="wieght"))
    c.eq(rc, 1, "an unknown field: exit 1")
    names(located, "group.yaml", {9}, ["wieght", "unknown", "additional"], "the unknown field is located at group.yaml:9")
    c.ok(all(LINE.match(x) for x in err.splitlines() if "error:" in x),
         "every error line is file:line:col: error: ...", "only located error lines", err)

    rc, err, located = validate(make("bad-ref", ref="nosuch"))
    c.eq(rc, 1, "an unresolved reference: exit 1")
    names(located, "listeners.yml", {11}, ["nosuch"], "the bad reference is located at listeners.yml:11")

    rc, err, located = validate(make("dup-port", port2=18080))
    c.eq(rc, 1, "a duplicate port: exit 1")
    names(located, "listeners.yml", {8, 20} | set(range(13, 17)), ["18080", "port"],
          "the duplicate port is located in listeners.yml")

    rc, err, located = validate(make("all-three", weight="wieght", ref="nosuch", port2=18080))
    c.eq(rc, 1, "three problems: exit 1")
    c.ok(any(os.path.basename(e["file"]) == "group.yaml" for e in located), "with three problems, group.yaml is named",
         "group.yaml:...", located)

    rc, err, located = validate(make("syntax", extra={"broken.yaml": "apiVersion: albd/v1\nkind: Instance\n"
                                                                     "metadata: {name: [unclosed\n"}))
    c.eq(rc, 1, "a YAML syntax error: exit 1")
    c.ok(any(os.path.basename(e["file"]) == "broken.yaml" and int(e["line"]) >= 3 for e in located),
         "the syntax error is located in broken.yaml", "broken.yaml:3+:col", located)
    c.ok("PRIVATE KEY" not in err, "no key material in error output")

    # The examples the README's demo runs.
    src = os.path.join(source_dir(), "manifests", "examples")
    dst = os.path.join(env.dir, "examples")
    yamls = [f for f in os.listdir(src) if f.endswith((".yaml", ".yml"))] if os.path.isdir(src) else []
    c.require(yamls, "manifests/examples holds manifests", "*.yaml", src)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.pem", "*.key"))
    os.makedirs(os.path.join(dst, "certs"), exist_ok=True)
    self_signed(os.path.join(dst, "certs", "demo.pem"), os.path.join(dst, "certs", "demo.key"))
    rc, err, located = validate(dst)
    c.eq(rc, 0, "manifests/examples validates (exit 0)")
    if rc != 0:
        print(err)


run("validate_reports_located_errors", body)
