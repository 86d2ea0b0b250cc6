#!/usr/bin/env python3
"""contrib/Dockerfile without a container engine: both stages are Debian 12,
the runtime stage installs the Debian package of every shared library the
albd binary links directly (readelf NEEDED -> ldd path -> dpkg -S), runs as a
numeric non-root user, and needs no shell at run time (exec-form ENTRYPOINT
and CMD, no HEALTHCHECK or SHELL in the runtime stage). What cannot be
checked here: that the image builds and starts (no docker daemon)."""
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import SANITIZE, albd_binary, log, run, scaled, source_dir  # noqa: E402

# In every debian:12-slim image already (Priority: required).
BASE = {"libc6", "libgcc-s1", "zlib1g"}


def package_of(path):
    real = os.path.realpath(path)
    for p in (real, re.sub(r"^/usr/lib/", "/lib/", real), re.sub(r"^/lib/", "/usr/lib/", real)):
        r = subprocess.run(["dpkg", "-S", p], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=scaled(30))
        if r.returncode == 0:
            return r.stdout.decode().split(":")[0]
    return None


def body(env):
    c = env.check
    with open(os.path.join(source_dir(), "contrib", "Dockerfile")) as f:
        text = f.read()
    lines = re.sub(r"\\\n", " ", text).splitlines()
    stages, cur = [], None
    for ln in lines:
        s = ln.strip()
        if not s or s.startswith("#"):
            continue
        if s.upper().startswith("FROM "):
            cur = {"from": s.split()[1], "lines": []}
            stages.append(cur)
        elif cur is not None:
            cur["lines"].append(s)
    c.eq(len(stages), 2, "two stages (build, runtime)")
    c.ok(all(st["from"].startswith("debian:12") for st in stages), "both stages are Debian 12",
         "debian:12*", [st["from"] for st in stages])
    rt = stages[-1]["lines"]
    installs = " ".join(ln for ln in rt if "apt-get install" in ln)
    listed = set(re.findall(r"\b(lib[a-z0-9.+-]+)", installs))
    c.ok(not any(p.endswith("-dev") for p in listed), "the runtime stage installs no -dev package", "none", listed)
    users = [ln.split()[1] for ln in rt if ln.upper().startswith("USER ")]
    c.ok(users and re.fullmatch(r"[1-9][0-9]*(:[1-9][0-9]*)?", users[-1]) is not None,
         "runs as a numeric non-root user (so runAsNonRoot can verify it)", "10001:10001", users)
    for instr in ("ENTRYPOINT", "CMD"):
        v = [ln for ln in rt if ln.upper().startswith(instr + " ")]
        c.ok(v and v[-1][len(instr):].strip().startswith("["), f"{instr} in exec form (no shell at run time)",
             "[...]", v)
    c.ok(not any(ln.upper().startswith(("HEALTHCHECK", "SHELL")) for ln in rt),
         "no HEALTHCHECK or SHELL in the runtime stage")

    if SANITIZE:
        log("skip - linked libraries: the image holds the plain build, this is the sanitizer build")
        return
    if not (shutil.which("readelf") and shutil.which("ldd") and shutil.which("dpkg")):
        log("skip - readelf/ldd/dpkg missing: linked libraries not compared")
        return
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]",
                        subprocess.run(["readelf", "-d", albd_binary()], stdout=subprocess.PIPE,
                                       timeout=scaled(30)).stdout.decode())
    paths = dict(re.findall(r"^\s*(\S+) => (/\S+)", subprocess.run(["ldd", albd_binary()], stdout=subprocess.PIPE,
                                                                   timeout=scaled(30)).stdout.decode(), re.M))
    missing = []
    for lib in needed:
        pkg = package_of(paths.get(lib, lib))
        if pkg is None:
            missing.append(f"{lib}: no package")
        elif pkg not in listed and pkg not in BASE:
            missing.append(f"{lib}: {pkg}")
    c.ok(needed, "readelf lists the linked libraries")
    c.eq(missing, [], "the runtime stage installs the package of every linked library")
    unused = sorted(listed - {package_of(paths.get(lib, lib)) for lib in needed} - BASE)
    c.eq(unused, [], "the runtime stage installs no library the binary does not link")


run("dockerfile_lists_runtime_libraries", body)
