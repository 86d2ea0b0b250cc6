#!/usr/bin/env python3
"""An OpenSSL configuration whose providers cannot hash (here: only the base
provider activated, through $OPENSSL_CONF) makes `albd validate`, `plan`
and `run` exit 1 at once with a message that says so and names the
configuration file — not "out of memory while loading manifests", as each
load reported before. --help still works; the same manifests validate with
the host's configuration."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import albd_binary, certificate, https_listener, instance, run, scaled, server_group  # noqa: E402

BASE_ONLY = """openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
[provider_sect]
base = base_sect
[base_sect]
activate = 1
"""


def albd(env, extra_env, *args):
    e = dict(os.environ)
    e.update(extra_env)
    r = subprocess.run([albd_binary(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e,
                       timeout=scaled(20))
    return r.returncode, r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


def body(env):
    c = env.check
    certs = env.certs()
    env.write_manifests(instance(), certificate("rsa", certs.rsa), server_group("web", [("127.0.0.1", 9)]),
                        https_listener("web", 18443, "rsa", "web"))
    conf = os.path.join(env.dir, "base-only.cnf")
    with open(conf, "w") as f:
        f.write(BASE_ONLY)
    bad = {"OPENSSL_CONF": conf}

    for cmd in (["validate", "-m", env.manifest_dir],
                ["plan", "-m", env.manifest_dir],
                ["run", "-m", env.manifest_dir, "--admin", "off"]):
        rc, out = albd(env, bad, *cmd)
        c.eq(rc, 1, f"albd {cmd[0]} exits 1 when OpenSSL cannot hash")
        c.ok("OpenSSL offers no SHA-256" in out and conf in out,
             f"albd {cmd[0]} says OpenSSL cannot hash and names the configuration file",
             "OpenSSL offers no SHA-256 … " + conf, out[-400:])
        c.ok("out of memory" not in out, f"albd {cmd[0]} does not blame memory", "no 'out of memory'",
             out[-400:])

    rc, out = albd(env, bad, "run", "--help")
    c.eq(rc, 0, "albd run --help works whatever OpenSSL's configuration")

    rc, out = albd(env, {}, "validate", "-m", env.manifest_dir)
    c.eq(rc, 0, "the same manifests validate with the host's OpenSSL configuration")
    c.ok("valid" in out, "validate says valid", "valid", out[-300:])


if __name__ == "__main__":
    run("openssl_without_hashing_is_a_clear_error", body)
