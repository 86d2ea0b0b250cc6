#!/usr/bin/env python3
"""Agent log lines: with stderr not a terminal, `--log-format auto` (the
default) writes one JSON object per line ({ts, level, msg}); `text`
writes "<ts> <level> <msg>"; under systemd with stderr on journald
(JOURNAL_STREAM naming stderr's device:inode) every line starts with its
syslog priority (<6> info, <4> warning) and leaves the timestamp to
journald. Events: an applied reconcile says what changed; backend connect
failures are warnings, rate-limited (not one per request); a certificate
close to expiry is warned about once, not again at the next reconcile,
and /status lists its expiry warning once after a change that copies it
(written by the agent after the load) and after a reconcile with nothing
new; an unknown --log-format is a usage error."""
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (CertPair, albd_binary, certificate, free_ports, http_listener,  # noqa: E402
                          https_listener, instance, openssl, run, scaled, server_group)


def wait_for(albd, needle, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if needle in albd.stderr():
            return True
        time.sleep(0.05)
    return False


def expiry_problems(albd):
    """/status problems that say certificate "soon" expires."""
    st, b = albd.admin_get("/status")
    probs = json.loads(b).get("problems", []) if st == 200 else []
    return [p for p in probs if p.get("kind") == "Certificate" and p.get("name") == "soon"
            and "expires on" in p.get("message", "")]


def body(env):
    c = env.check
    be = env.backend("be")
    p_web, p_dead, p_tls, dead1 = free_ports(4)
    # A certificate that expires in 10 days.
    pair = CertPair(os.path.join(env.dir, "soon.pem"), os.path.join(env.dir, "soon.key"))
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", pair.key, "-out", pair.cert, "-days", "10", "-subj", "/CN=soon.test",
            "-addext", "subjectAltName=DNS:soon.test")
    os.chmod(pair.key, 0o600)
    # Settled files (reconciler/filecache.h), so that a reload copies the
    # certificate instead of reading it again.
    time.sleep(scaled(0.3))
    docs = [instance(), certificate("soon", pair), server_group("web", [be.addr]),
            server_group("dead", [("127.0.0.1", dead1)]), http_listener("web", p_web, "web"),
            http_listener("deadl", p_dead, "dead"), https_listener("tls", p_tls, "soon", "web")]
    env.write_manifests(*docs)

    # 1. auto, stderr a file: JSON.
    albd = env.start_albd(ports=(p_web, p_dead, p_tls), extra_env={"ALBD_LOG_FORMAT": "auto"})
    for i in range(40):
        env.http("GET", p_dead, f"/d{i}")
    # A change: the listener's port moves.
    docs[4] = http_listener("web", p_web, "web", idleTimeoutSeconds=20)
    env.write_manifests(*docs)
    c.ok(albd.wait_generation(1) is not None, "the change applies")
    wait_for(albd, "reconcile changed", scaled(5))
    # The certificate was copied, not read again: its warning is written
    # after the load (agent/run.c), and /status has it once.
    exp = expiry_problems(albd)
    c.ok(len(exp) == 1 and exp[0].get("severity") == "warning" and
         exp[0].get("path") == "spec.source.files.certificate",
         "after a change, /status has the expiry warning once, at its field", None, exp)
    albd.signal(signal.SIGHUP)  # one more reconcile, with nothing new
    wait_for(albd, "SIGHUP", scaled(5))
    time.sleep(0.5)
    exp = expiry_problems(albd)
    c.ok(len(exp) == 1 and exp[0].get("severity") == "warning",
         "after a reconcile with nothing new, still once", None, exp)
    err = albd.stderr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    parsed, bad = [], []
    for ln in lines:
        try:
            o = json.loads(ln)
            parsed.append(o)
            if set(o) != {"ts", "level", "msg"}:
                bad.append(ln)
        except ValueError:
            bad.append(ln)
    c.ok(len(parsed) >= 3 and not bad, "auto on a file: every line is a JSON object with ts, level, msg",
         None, bad[:3])
    c.ok(all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", o["ts"]) for o in parsed),
         "ts is RFC 3339 UTC with milliseconds")
    c.ok({o["level"] for o in parsed} <= {"error", "warn", "info", "debug"}, "levels are named")
    msgs = [o["msg"] for o in parsed]
    changed = [m for m in msgs if m.startswith("reconcile changed")]
    c.ok(any("update Listener/web (spec.idleTimeoutSeconds)" in m for m in changed),
         "the reconcile line names what changed", None, changed)
    connect = [o for o in parsed if "cannot connect to" in o["msg"]]
    c.ok(1 <= len(connect) <= 2 * 5 and all(o["level"] == "warn" for o in connect),
         "40 connect failures: warned, at most 5 lines per worker per 10 s", "1..10 warn lines", len(connect))
    c.ok(all(f"127.0.0.1:{dead1}" in o["msg"] and "server group dead" in o["msg"] for o in connect),
         "the warning names the server and its group", None, connect[:1])
    expiry = [o for o in parsed if "certificate" in o["msg"] and "expire" in o["msg"]]
    c.eq(len(expiry), 1, "a certificate close to expiry is warned about once over three reconciles")
    c.ok(expiry and expiry[0]["level"] == "warn" and "soon" in expiry[0]["msg"], "... at warn, naming it", None,
         expiry)
    albd.check_clean_exit(c)

    # 2. text.
    albd = env.start_albd(ports=(p_web, p_dead, p_tls), extra_env={"ALBD_LOG_FORMAT": "text"})
    albd.check_clean_exit(c)
    tl = [ln for ln in albd.stderr().splitlines() if ln.strip()]
    c.ok(tl and all(re.match(r"\d{4}-\d\d-\d\dT\S+Z (info|warn|error|debug) ", ln) for ln in tl),
         "text: <ts> <level> <message>", None, tl[:2])

    # 3. journald: JOURNAL_STREAM names stderr (the harness' stderr file).
    path = os.path.join(env.dir, f"albd-{len(env.albds)}.stderr")
    open(path, "wb").close()
    st = os.stat(path)
    albd = env.start_albd(ports=(p_web, p_dead, p_tls),
                          extra_env={"ALBD_LOG_FORMAT": "auto", "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    albd.check_clean_exit(c)
    jl = [ln for ln in albd.stderr().splitlines() if ln.strip()]
    c.ok(jl and all(re.match(r"<[3467]>(info|warn|error|debug) ", ln) for ln in jl),
         "journald: <priority>level message, no timestamp", None, jl[:2])
    c.ok(any(ln.startswith("<6>info applied generation") for ln in jl), "info is <6>")
    c.ok(any(ln.startswith("<4>warn certificate soon expires") for ln in jl), "warn is <4>", None,
         [ln for ln in jl if "soon" in ln])

    # 4. A bad --log-format.
    r = subprocess.run([albd_binary(), "run", "-m", env.manifest_dir, "--log-format", "xml"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=scaled(10))
    c.eq(r.returncode, 64, "--log-format xml is a usage error (64)")
    c.ok(b"--log-format" in r.stderr, "... naming the option", None, r.stderr[:200])


run("log_format_json_and_journald", body)
