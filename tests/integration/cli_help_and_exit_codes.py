#!/usr/bin/env python3
"""Every command has help (`albd COMMAND --help`, `albd help COMMAND`,
`albd --help`) on stdout with exit 0; exit codes are the same for every
command (0 ok, 1 error or invalid, 2 plan has changes, 64 usage); every
option a command's help lists is in albd(1) and in the README, and so are
the exit codes and --strict; `albd version` names a commit."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (albd_binary, free_ports, http_listener, instance, run, scaled,  # noqa: E402
                          server_group, source_dir, to_yaml)

COMMANDS = ("run", "plan", "validate", "version", "help")


def albd(*args):
    r = subprocess.run([albd_binary(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       stdin=subprocess.DEVNULL, timeout=scaled(20))
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def body(env):
    c = env.check
    helps = {}
    for cmd in COMMANDS:
        rc, out, err = albd(cmd, "--help")
        c.eq((rc, out.startswith(f"usage: albd {cmd}"), err), (0, True, ""),
             f"albd {cmd} --help: usage on stdout, exit 0")
        rc2, out2, _ = albd("help", cmd)
        c.eq((rc2, out2), (0, out), f"albd help {cmd} prints the same")
        helps[cmd] = out
    for top in (("--help",), ("help",), ("-h",)):
        rc, out, err = albd(*top)
        c.ok(rc == 0 and all(f"  {cmd} " in out for cmd in COMMANDS) and "64" in out and err == "",
             f"albd {' '.join(top)}: every command listed, exit codes, stdout, exit 0", "all", out[:300])

    good = os.path.join(env.dir, "good")
    bad = os.path.join(env.dir, "bad")
    os.makedirs(good)
    os.makedirs(bad)
    be = env.backend("a")
    (port,) = free_ports(1)
    with open(os.path.join(good, "a.yaml"), "w") as f:
        f.write("\n".join("---\n" + to_yaml(d) for d in (instance(), server_group("web", [be.addr]),
                                                         http_listener("web", port, "web"))) + "\n")
    with open(os.path.join(bad, "a.yaml"), "w") as f:
        f.write("---\n" + to_yaml(http_listener("web", port, "missing")) + "\n")
    state = os.path.join(env.dir, "state.json")

    usage_errors = [
        (), ("bogus",), ("help", "bogus"), ("version", "extra"),
        ("plan",), ("plan", "-m", good, "--bogus"), ("plan", "-m", good, "-o", "yaml"),
        ("plan", "-m", good, "--against", "http://127.0.0.1:1", "--state", state), ("plan", "-m", good, "x"),
        ("validate",), ("validate", "-m", good, "extra"), ("validate", "--bogus"),
        ("run",), ("run", "-m", good, "--workers", "x"), ("run", "-m", good, "--shutdown-grace", "-1"),
        ("run", "-m", good, "--drain-timeout", "soon"), ("run", "-m", good, "--log-level", "loud"),
        ("run", "-m", good, "--admin-host", "a:1"), ("run", "-m", good, "extra"),
    ]
    for args in usage_errors:
        rc, out, err = albd(*args)
        c.eq((rc, out), (64, ""), f"usage error exits 64, nothing on stdout: albd {' '.join(args)}")
        c.ok(err.strip() != "", f"usage error explains itself on stderr: albd {' '.join(args)}")

    c.eq(albd("validate", "-m", good)[0], 0, "validate: valid manifests exit 0")
    c.eq(albd("validate", "-m", bad)[0], 1, "validate: invalid manifests exit 1")
    c.eq(albd("plan", "-m", bad)[0], 1, "plan: invalid manifests exit 1")
    c.eq(albd("plan", "-m", good, "--state", state)[0], 1, "plan: a missing --state file exits 1")
    c.eq(albd("plan", "-m", good, "--against", f"http://127.0.0.1:{free_ports(1)[0]}")[0], 1,
         "plan: an unreachable --against URL exits 1")
    c.eq(albd("plan", "-m", good)[0], 2, "plan: changes exit 2")
    # Its folder is empty: applied, but not ready (nothing to serve).
    a = env.start_albd(ports=(port,), ready=False)
    c.ok(a.wait_generation(0) is not None, "an empty folder applies (generation 1)")
    c.eq(albd("plan", "-m", good, "--against",
              f"http://127.0.0.1:{a.admin_port}")[0], 2, "plan against a different running albd: exit 2")
    with open(os.path.join(env.manifest_dir, "a.yaml"), "w") as f:
        with open(os.path.join(good, "a.yaml")) as g:
            f.write(g.read())
    a.wait_generation(a.generation())
    c.eq(albd("plan", "-m", good, "--against", f"http://127.0.0.1:{a.admin_port}")[0], 0,
         "plan: no changes exit 0")
    a.check_clean_exit(c)

    rc, out, _ = albd("version")
    c.ok(rc == 0 and re.match(r"^albd \d+\.\d+\.\d+ \(commit [0-9A-Za-z._+-]+\)$", out.strip()),
         "albd version: version and commit", "albd X.Y.Z (commit ...)", out)

    with open(os.path.join(source_dir(), "docs", "man", "albd.1")) as f:
        man = f.read().replace("\\-", "-")
    with open(os.path.join(source_dir(), "README.md")) as f:
        readme = f.read()
    for cmd, text in helps.items():
        for opt in sorted(set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", text)) - {"--help"}):
            c.ok(opt in man, f"albd(1) documents {cmd} {opt}")
            c.ok(opt in readme, f"README documents {cmd} {opt}")
    for code in ("64", "--strict", "--shutdown-grace", "--share-ports"):
        c.ok(code in readme and code in man, f"README and albd(1) mention {code}")
    c.ok(re.search(r"^\.SH \"EXIT STATUS\"", man, re.M) is not None, "albd(1) has an EXIT STATUS section")
    c.ok("Exit status" in readme, "README has an exit status paragraph")


run("cli_help_and_exit_codes", body)
