#!/usr/bin/env python3
"""The systemd notify protocol (Type=notify), against a unix datagram socket
this test listens on as $NOTIFY_SOCKET: READY=1 arrives only once /readyz
answers 200 (not while the manifests are invalid), SIGHUP sends RELOADING=1
then READY=1, SIGTERM sends STOPPING=1 while /readyz answers 503; an abstract
socket ("@name") works too. Every system call albd makes (under strace)
passes the unit's SystemCallFilter. Then contrib/albd.service is checked with
`systemd-analyze verify` (with this build's binary in its command lines)
when systemd-analyze exists here; skipped with a reason otherwise."""
import os
import re
import shutil
import signal
import socket as pysocket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (albd_binary, free_ports, http_listener, instance, log, run, scaled,  # noqa: E402
                          server_group, source_dir)


def recv_all(sock, timeout):
    """Datagrams received within timeout (each a dict of its KEY=value lines)."""
    out = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        sock.settimeout(max(0.01, end - time.monotonic()))
        try:
            d = sock.recv(4096)
        except pysocket.timeout:
            break
        out.append(dict(line.split("=", 1) for line in d.decode().splitlines() if "=" in line))
    return out


def wait_for(sock, key, timeout):
    """(the datagram with key, datagrams before it) or (None, all)."""
    seen = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        sock.settimeout(max(0.01, end - time.monotonic()))
        try:
            d = sock.recv(4096)
        except pysocket.timeout:
            break
        m = dict(line.split("=", 1) for line in d.decode().splitlines() if "=" in line)
        if key in m:
            return m, seen
        seen.append(m)
    return None, seen


def readyz(albd):
    try:
        return albd.admin_get("/readyz")[0]
    except OSError:
        return None


def body(env):
    c = env.check
    be = env.backend("a")
    (port,) = free_ports(1)
    path = os.path.join(env.dir, "notify.sock")
    sock = pysocket.socket(pysocket.AF_UNIX, pysocket.SOCK_DGRAM)
    sock.bind(path)
    # Invalid first (and --strict, so nothing applies): albd runs, not ready,
    # and must not say READY=1.
    env.write_manifests(instance(), http_listener("web", port, "missing-group"))
    albd = env.start_albd(ports=(port,), ready=False, extra_env={"NOTIFY_SOCKET": path}, args=("--strict",))
    early = recv_all(sock, scaled(1.5))
    c.ok(albd.alive(), "albd runs with invalid manifests")
    c.eq(readyz(albd), 503, "/readyz is 503 while nothing serves")
    c.ok(not any("READY" in m for m in early), "no READY=1 while not ready", "none", early)

    env.write_manifests(instance(), server_group("missing-group", [be.addr]),
                        http_listener("web", port, "missing-group"))
    m, before = wait_for(sock, "READY", scaled(10))
    c.eq(m and m.get("READY"), "1", "READY=1 arrives once the manifests are fixed")
    c.eq(readyz(albd), 200, "when READY=1 arrives, /readyz already answers 200")
    c.ok(m is not None and m.get("STATUS", "").startswith("serving generation"),
         "READY=1 carries a STATUS line", "serving generation N", m)

    albd.signal(signal.SIGHUP)
    m1, _ = wait_for(sock, "RELOADING", scaled(5))
    c.eq(m1 and m1.get("RELOADING"), "1", "SIGHUP sends RELOADING=1")
    c.ok(m1 is not None and m1.get("MONOTONIC_USEC", "").isdigit(), "RELOADING=1 carries MONOTONIC_USEC",
         "digits", m1)
    m2, _ = wait_for(sock, "READY", scaled(5))
    c.eq(m2 and m2.get("READY"), "1", "after the reload, READY=1 again")

    albd.signal(signal.SIGTERM)
    m3, _ = wait_for(sock, "STOPPING", scaled(5))
    c.eq(m3 and m3.get("STOPPING"), "1", "SIGTERM sends STOPPING=1")
    albd.check_clean_exit(c)
    sock.close()

    # An abstract socket name ("@..."), as systemd may pass.
    name = f"albd-test-{os.getpid()}-{time.monotonic_ns()}"
    asock = pysocket.socket(pysocket.AF_UNIX, pysocket.SOCK_DGRAM)
    asock.bind("\0" + name)
    albd2 = env.start_albd(ports=(port,), ready=False, extra_env={"NOTIFY_SOCKET": "@" + name})
    m4, _ = wait_for(asock, "READY", scaled(10))
    c.eq(m4 and m4.get("READY"), "1", "READY=1 through an abstract NOTIFY_SOCKET")
    albd2.check_clean_exit(c)
    asock.close()

    syscalls_allowed_by_the_unit(env, port)

    # The unit file, with this build's binary in place of /usr/local/bin/albd.
    sa = shutil.which("systemd-analyze")
    if not sa:
        log("skip - systemd-analyze verify: systemd-analyze is not installed here")
        return
    unit_dir = os.path.join(env.dir, "unit")
    os.makedirs(unit_dir)
    with open(os.path.join(source_dir(), "contrib", "albd.service")) as f:
        unit = f.read()
    c.ok("Type=notify" in unit and "User=albd" in unit and "ExecStartPre=" in unit,
         "the unit is Type=notify, runs as albd, validates before starting")
    man_dir = os.path.join(env.dir, "man", "man1")
    os.makedirs(man_dir)
    shutil.copy(os.path.join(source_dir(), "docs", "man", "albd.1"), man_dir)
    e = dict(os.environ, MANPATH=os.path.join(env.dir, "man"), SYSTEMD_LOG_LEVEL="notice")

    def verify(text):
        """What systemd-analyze verify says about albd.service itself (it
        also reports on this machine's units it loads as dependencies)."""
        with open(os.path.join(unit_dir, "albd.service"), "w") as f:
            f.write(text)
        r = subprocess.run([sa, "verify", os.path.join(unit_dir, "albd.service")], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, env=e, timeout=scaled(60))
        return [line for line in r.stdout.decode(errors="replace").splitlines() if "albd.service" in line]

    broken = verify(unit.replace("/usr/local/bin/albd", os.path.abspath(albd_binary()))
                    .replace("Type=notify", "Type=notifyy"))
    c.ok(broken, "systemd-analyze verify does report a broken copy (the check can fail)", "a report", broken)
    ours = verify(unit.replace("/usr/local/bin/albd", os.path.abspath(albd_binary())))
    c.ok(not ours, "systemd-analyze verify reports nothing about albd.service", "nothing", ours)


def syscall_sets():
    """{"@group": set of system calls}, from systemd-analyze syscall-filter."""
    out = subprocess.run(["systemd-analyze", "syscall-filter"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         timeout=scaled(30)).stdout.decode()
    groups, cur = {}, None
    for ln in out.splitlines():
        if ln.startswith("@"):
            cur = groups.setdefault(ln.strip(), [])
        elif cur is not None and ln.strip() and not ln.strip().startswith("#"):
            cur.append(ln.strip())

    def expand(name):
        return set().union(*[expand(x) if x.startswith("@") else {x} for x in groups.get(name, [])])
    return expand


def syscalls_allowed_by_the_unit(env, port):
    """albd under strace -f (start, serve, SIGHUP, SIGTERM, with a
    NOTIFY_SOCKET): every system call it makes passes the unit's
    SystemCallFilter= lines, so the sandbox does not kill it."""
    c = env.check
    if not (shutil.which("strace") and shutil.which("systemd-analyze")) or os.environ.get(
            "ALBD_SANITIZE", "").upper() in ("ON", "1", "TRUE", "YES"):
        log("skip - system calls vs SystemCallFilter: needs strace and systemd-analyze, and the plain build "
            "(the sanitizers make calls of their own)")
        return
    with open(os.path.join(source_dir(), "contrib", "albd.service")) as f:
        filters = re.findall(r"^SystemCallFilter=(.+)$", f.read(), re.M)
    expand = syscall_sets()
    # As systemd applies them (systemd.exec(5)): the first line is an allow
    # list here; each later line adds its calls (allow) or removes them
    # (deny, "~"), in order, so an allow after a deny takes a call back.
    allowed, denied = set(), set()
    for line in filters:
        deny = line.startswith("~")
        names = set()
        for n in line.lstrip("~").split():
            names |= expand(n) if n.startswith("@") else {n}
        if deny:
            allowed -= names
            denied |= names
        else:
            allowed |= names
            denied -= names
    c.ok(len(allowed) > 100, "the unit's SystemCallFilter expands to an allow list", "> 100 calls", len(allowed))
    log_path = os.path.join(env.dir, "strace.log")
    sock_path = os.path.join(env.dir, "notify2.sock")
    sock = pysocket.socket(pysocket.AF_UNIX, pysocket.SOCK_DGRAM)
    sock.bind(sock_path)
    (admin,) = free_ports(1)
    tracer = subprocess.Popen(["strace", "-f", "-qq", "-o", log_path, albd_binary(), "run", "-m", env.manifest_dir,
                               "--admin", f"127.0.0.1:{admin}", "--probe", f"127.0.0.1:{free_ports(1)[0]}",
                               "--workers", "2"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                              env=dict(os.environ, NOTIFY_SOCKET=sock_path))
    try:
        m, _ = wait_for(sock, "READY", scaled(15))
        c.ok(m is not None, "albd under strace becomes ready")
        with open(f"/proc/{tracer.pid}/task/{tracer.pid}/children") as f:
            pid = int(f.read().split()[0])
        env.http("GET", port, "/")
        os.kill(pid, signal.SIGHUP)
        wait_for(sock, "READY", scaled(5))
        os.kill(pid, signal.SIGTERM)
        tracer.wait(timeout=scaled(20))
    finally:
        if tracer.poll() is None:
            os.killpg(tracer.pid, signal.SIGKILL)
            tracer.wait()
        sock.close()
    used = set()
    with open(log_path) as f:
        for ln in f:
            m = re.match(r"^\d+\s+([a-z_0-9]+)\(", ln)
            if m:
                used.add(m.group(1))
    c.ok(len(used) > 20 and "inotify_add_watch" in used and "sendto" in used,
         "strace saw albd's system calls (the watcher's, the notification's)", "> 20", sorted(used))
    bad = sorted((used - allowed) | (used & denied))
    c.eq(bad, [], "every system call albd made passes the unit's SystemCallFilter")


run("notifies_systemd", body)
