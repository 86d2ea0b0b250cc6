#!/usr/bin/env python3
"""`albd plan --against` from another checkout of the same repository: a
CI job checks the manifests out in its own folder, not where the running
albd reads them. Certificate files inside the manifest folder are compared
by their path relative to it, so the other checkout plans "No changes"
(exit 0); a real change there is still one (exit 2) and shows no path
change. A certificate outside the folder keeps its absolute path."""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (CertPair, albd_binary, certificate, free_ports, https_listener,  # noqa: E402
                          instance, run, scaled, server_group, to_yaml)
from reconcile_support import config, plan  # noqa: E402


def plan_in(cwd, *args):
    """`albd plan ARGS` run from cwd: (exit status, stdout, stderr)."""
    r = subprocess.run([os.path.abspath(albd_binary()), "plan", *args], cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=scaled(60))
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def body(env):
    c = env.check
    certs = env.certs()
    a = env.backend("a")
    (port,) = free_ports(1)
    inside = os.path.join(env.manifest_dir, "certs")
    os.makedirs(inside)
    shutil.copy(certs.rsa.cert, os.path.join(inside, "site.pem"))
    shutil.copy(certs.rsa.key, os.path.join(inside, "site.key"))

    def docs(weight=100):
        return (instance(), certificate("site", CertPair("certs/site.pem", "certs/site.key")),
                certificate("outside", certs.ecdsa), server_group("web", [a.addr + (weight,)]),
                https_listener("web", port, "site", "web"))

    env.write_manifests(*docs())
    albd = env.start_albd(ports=(port,))
    url = f"http://127.0.0.1:{albd.admin_port}"
    _, cfg = config(albd)
    files = cfg["resources"]["Certificate"]["site"]["spec"]["source"]["files"]
    c.eq((files["certificate"], files["privateKey"]), ("certs/site.pem", "certs/site.key"),
         "/config shows a certificate inside the folder by its path relative to it")
    out_files = cfg["resources"]["Certificate"]["outside"]["spec"]["source"]["files"]
    c.eq(out_files["certificate"], certs.ecdsa.cert, "a certificate outside the folder keeps its absolute path")

    rc, out, err = plan("-m", env.manifest_dir, "--against", url)
    c.eq((rc, out.strip()), (0, "No changes. The running configuration matches the manifests."),
         f"plan from the folder albd reads: no changes {err[-300:]}")

    # The folder named relative to the working directory (as `make run` and
    # a CI script do) exports the same.
    rc, out, err = plan_in(os.path.dirname(env.manifest_dir), "-m", os.path.basename(env.manifest_dir),
                           "--against", url)
    c.eq((rc, out.strip()), (0, "No changes. The running configuration matches the manifests."),
         f"plan with -m relative to the working directory: no changes {err[-300:]}")

    other = os.path.join(env.dir, "ci-checkout", "manifests")
    shutil.copytree(env.manifest_dir, other)
    rc, out, err = plan("-m", other, "--against", url)
    c.eq((rc, out.strip()), (0, "No changes. The running configuration matches the manifests."),
         f"plan from a checkout elsewhere: no changes (paths compare relative to the folder) {err[-300:]}")

    with open(os.path.join(other, "albd.yaml"), "w") as f:
        f.write("\n".join("---\n" + to_yaml(d) for d in docs(weight=40)) + "\n")
    rc, out, err = plan("-m", other, "--against", url)
    c.eq(rc, 2, "a real change in the other checkout is a change (exit 2)")
    c.ok("weight" in out and "certs/site.pem" not in out and "ci-checkout" not in out,
         "it shows the weight, and no certificate path change", "weight only", out)
    albd.check_clean_exit(c)


run("plans_a_checkout_elsewhere_as_unchanged", body)
