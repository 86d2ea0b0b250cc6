#!/usr/bin/env python3
"""`cmake --install` (what `make install` runs) into a DESTDIR: the binary
(which runs), the manifest schemas, albd(1) (which renders without
warnings), the systemd unit naming the installed binary, its sysusers.d and
tmpfiles.d files (applied with --root into the staging tree when the tools
exist: the user albd and /etc/albd/manifests root:albd 0750), the examples
without any key, and the CI script. Nothing is installed outside DESTDIR."""
import glob
import os
import re
import shutil
import stat
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import albd_binary, log, run, scaled, source_dir  # noqa: E402


def cache_value(build, key):
    with open(os.path.join(build, "CMakeCache.txt")) as f:
        for line in f:
            if line.startswith(key + ":"):
                return line.split("=", 1)[1].strip()
    return None


def body(env):
    c = env.check
    build = os.path.dirname(os.path.abspath(albd_binary()))
    prefix = cache_value(build, "CMAKE_INSTALL_PREFIX")
    c.require(prefix and prefix.startswith("/"), "the build has an install prefix", "/...", prefix)
    stage = os.path.join(env.dir, "stage")
    r = subprocess.run(["cmake", "--install", build], env=dict(os.environ, DESTDIR=stage),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=scaled(120))
    out = r.stdout.decode(errors="replace")
    c.require(r.returncode == 0, "cmake --install with DESTDIR succeeds", 0, out[-1500:])
    installed = re.findall(r"-- (?:Installing|Up-to-date): (\S+)", out)
    outside = [p for p in installed if not p.startswith(stage + "/")]
    c.ok(installed and not outside, "every installed file is under DESTDIR", [], outside)

    root = stage + prefix
    binary = os.path.join(root, "bin", "albd")
    c.ok(os.access(binary, os.X_OK), "bin/albd is installed, executable")
    v = subprocess.run([binary, "version"], stdout=subprocess.PIPE, timeout=scaled(10))
    c.ok(v.returncode == 0 and v.stdout.startswith(b"albd "), "the installed binary runs", "albd ...", v.stdout)

    src_schemas = sorted(os.path.basename(p) for p in glob.glob(os.path.join(source_dir(), "schemas", "*.json")))
    inst_schemas = sorted(os.path.basename(p) for p in glob.glob(os.path.join(root, "share/albd/schemas/*.json")))
    c.eq(inst_schemas, src_schemas, "every manifest schema is installed")
    c.ok(os.path.exists(os.path.join(root, "share/albd/schemas/api/plan.json")),
         "the plan JSON schema is installed (share/albd/schemas/api/plan.json)")

    man = os.path.join(root, "share/man/man1/albd.1")
    c.ok(os.path.exists(man), "albd(1) is installed in share/man/man1")
    if shutil.which("groff") and os.path.exists(man):
        g = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", man], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=scaled(30))
        c.eq((g.returncode, g.stderr.decode()), (0, ""), "albd(1) renders without a groff warning")
    else:
        log("skip - groff is not installed: albd(1) not rendered")

    unit = os.path.join(root, "lib/systemd/system/albd.service")
    c.require(os.path.exists(unit), "the systemd unit is installed in lib/systemd/system")
    with open(unit) as f:
        text = f.read()
    execs = re.findall(r"^Exec(?:Start|StartPre)=(\S+)", text, re.M)
    c.eq(sorted(set(execs)), [os.path.join(prefix, "bin", "albd")], "the unit runs the installed binary")

    sysusers = os.path.join(root, "lib/sysusers.d/albd.conf")
    tmpfiles = os.path.join(root, "lib/tmpfiles.d/albd.conf")
    c.ok(os.path.exists(sysusers) and os.path.exists(tmpfiles), "sysusers.d and tmpfiles.d files are installed")
    if shutil.which("systemd-sysusers") and shutil.which("systemd-tmpfiles"):
        os.makedirs(os.path.join(stage, "etc"), exist_ok=True)
        subprocess.run(["systemd-sysusers", f"--root={stage}", sysusers], check=False, timeout=scaled(30),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(os.path.join(stage, "etc/passwd")) as f:
            users = {ln.split(":")[0]: ln.split(":") for ln in f if ":" in ln}
        c.ok("albd" in users and users["albd"][6].strip().endswith("nologin"),
             "systemd-sysusers creates the system user albd (no login shell)", "albd", sorted(users))
        subprocess.run(["systemd-tmpfiles", f"--root={stage}", "--create", tmpfiles], check=False,
                       timeout=scaled(30), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        d = os.path.join(stage, "etc/albd/manifests")
        st = os.stat(d) if os.path.isdir(d) else None
        gid = int(users["albd"][3]) if "albd" in users else None
        c.ok(st is not None and stat.S_IMODE(st.st_mode) == 0o750 and st.st_uid == 0 and st.st_gid == gid,
             "systemd-tmpfiles creates /etc/albd/manifests root:albd 0750", "0750 0:albd",
             st and (oct(stat.S_IMODE(st.st_mode)), st.st_uid, st.st_gid))
    else:
        log("skip - systemd-sysusers/systemd-tmpfiles not installed: user and folders not checked")

    # The documented layout: /etc/albd/manifests root:albd 0750, files
    # root:albd 0640 — readable by the service's user through its group
    # only (run here as an unused uid/gid with setpriv, as root).
    if os.geteuid() == 0 and shutil.which("setpriv"):
        uid = gid = 64999
        etc = os.path.join(env.dir, "etc-albd", "manifests")
        os.makedirs(os.path.join(etc, "certs"))
        certs = env.certs()
        shutil.copy(certs.rsa.cert, os.path.join(etc, "certs", "site.pem"))
        shutil.copy(certs.rsa.key, os.path.join(etc, "certs", "site.key"))
        with open(os.path.join(etc, "albd.yaml"), "w") as f:
            f.write("apiVersion: albd/v1\nkind: Certificate\nmetadata: {name: site}\nspec:\n  type: Server\n"
                    "  source: {files: {certificate: certs/site.pem, privateKey: certs/site.key}}\n")
        for dp, dirs, fns in os.walk(os.path.dirname(etc)):
            os.chown(dp, 0, gid)
            os.chmod(dp, 0o750)
            for fn in fns:
                os.chown(os.path.join(dp, fn), 0, gid)
                os.chmod(os.path.join(dp, fn), 0o640)
        os.chmod(env.dir, 0o755)

        def validate_as_service():
            return subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", binary,
                                   "validate", "-m", etc], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  timeout=scaled(30))

        r = validate_as_service()
        c.ok(r.returncode == 0, "as the service's user and group, the installed albd validates the root:albd "
             "0750/0640 layout (the key readable through the group)", 0, r.stdout.decode(errors="replace")[-400:])
        os.chmod(os.path.join(etc, "certs", "site.key"), 0o600)
        r = validate_as_service()
        c.ok(r.returncode == 1 and b"site.key" in r.stdout, "a key 0600 root-owned is not readable by the service "
             "(the old unit's DynamicUser problem)", "1, site.key", r.stdout[-400:])
    else:
        log("skip - not root or no setpriv: the service user's view of /etc/albd not checked")

    ex = os.path.join(root, "share/doc/albd/examples")
    c.ok(os.path.exists(os.path.join(ex, "tls.yaml")), "the examples are installed in share/doc/albd/examples")
    keys = [p for p in glob.glob(os.path.join(stage, "**", "*"), recursive=True)
            if p.endswith(".key") or p.endswith(".pem")]
    c.eq(keys, [], "no key or certificate file is installed")
    ci = os.path.join(root, "share/albd/ci/albd-ci.sh")
    c.ok(os.access(ci, os.X_OK), "the CI script is installed, executable")


run("installs_with_make_install", body)
