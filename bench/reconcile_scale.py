#!/usr/bin/env python3
"""Does the cost of a change grow with the change, not the configuration?

Measures albd on a large configuration (default 10,000 certificates as
extension certificates spread over 4 HTTPS listeners, and 10,000 server
groups) and on a small one (1 certificate, 1 group, 1 listener). The
certificate files are copied under the manifest folder, where albd's
watcher tells each reload which files changed; a second large run names
them outside the folder, where every reload stats each of them:

  - cold load: time from start to /readyz 200, and RSS once ready;
  - 100 single-resource changes (one server's weight, toggled): time from
    the file write to the new generation serving (albd_config_generation in
    /metrics, polled every few ms), median and worst, and albd's own
    albd_apply_duration_seconds (load + validate + build + publish);
  - 1,000 reloads (SIGHUP with alternating content) on the small
    configuration, RSS before and after (old snapshots must be returned),
    and a few on the large one.

Not a ctest: run it by hand, e.g.
    python3 bench/reconcile_scale.py --albd build/albd
    python3 bench/reconcile_scale.py --albd build/albd --quick     # 500 certificates, a smoke run
Certificates are generated once (one EC key shared by every certificate,
each a template from openssl re-signed by a test CA in Python) and
cached under --cache, so reruns start at once. Loopback only; every albd is
stopped with SIGTERM and its exit status reported.
"""
import argparse
import base64
import hashlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration", "lib"))
import albd_harness as h  # noqa: E402
from reconcile_support import generation, metrics, wait_for, write_in_place, yaml_docs  # noqa: E402

LISTENERS = 4


# --------------------------------------------------------------------------
# Certificates, cached.

def openssl(*args):
    subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)


def cert_name(i):
    return f"h{i:05d}.bench.test"


def _der_header(buf, pos):
    """(tag, header length, content length) of the DER element at pos."""
    tag, first = buf[pos], buf[pos + 1]
    if first < 0x80:
        return tag, 2, first
    k = first & 0x7F
    return tag, 2 + k, int.from_bytes(buf[pos + 2:pos + 2 + k], "big")


def _rsa_key(path):
    """The CA's RSA private key numbers from `openssl rsa -text`."""
    text = subprocess.run(["openssl", "rsa", "-in", path, "-noout", "-text"], check=True, timeout=60,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout.decode()
    fields, cur = {}, None
    for line in text.splitlines():
        if not line.startswith(" ") and ":" in line:
            cur = line.split(":")[0].strip()
            fields[cur] = ""
        elif cur and line.startswith(" "):
            fields[cur] += line.strip().replace(":", "")
    return {k: int(fields[f], 16) for k, f in (("n", "modulus"), ("p", "prime1"), ("q", "prime2"),
                                               ("dp", "exponent1"), ("dq", "exponent2"), ("qinv", "coefficient"))}


_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def _rsa_sign(key, data):
    """RSASSA-PKCS1-v1_5 with SHA-256 (CRT)."""
    k = (key["n"].bit_length() + 7) // 8
    t = _SHA256_DIGEST_INFO + hashlib.sha256(data).digest()
    m = int.from_bytes(b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t, "big")
    m1, m2 = pow(m, key["dp"], key["p"]), pow(m, key["dq"], key["q"])
    s = m2 + key["q"] * ((key["qinv"] * (m1 - m2)) % key["p"])
    return s.to_bytes(k, "big")


def make_certs(cache, n):
    """cache/ca.pem, cache/leaf.key and cache/certs/cNNNNN.pem for i < n.

    One openssl call per certificate costs ~50 ms of process start here, so
    openssl makes one template certificate (name h00000.bench.test, SAN the
    same, a 4-byte serial) and each certificate is the template with the
    name and serial replaced (same lengths, so every DER length stays) and
    re-signed with the CA's RSA key in Python. One is checked with
    `openssl verify`."""
    os.makedirs(os.path.join(cache, "certs"), exist_ok=True)
    ca, ca_key, leaf_key, tpl = (os.path.join(cache, f) for f in ("ca.pem", "ca.key", "leaf.key", "template.der"))
    if not os.path.exists(ca):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-days", "3650",
                "-subj", "/CN=albd bench CA", "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign")
    if not os.path.exists(leaf_key):
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", leaf_key)
        os.chmod(leaf_key, 0o600)
    if not os.path.exists(tpl):
        openssl("req", "-new", "-x509", "-key", leaf_key, "-subj", f"/CN={cert_name(0)}",
                "-addext", f"subjectAltName=DNS:{cert_name(0)}", "-addext", "basicConstraints=critical,CA:FALSE",
                "-addext", "extendedKeyUsage=serverAuth", "-CA", ca, "-CAkey", ca_key,
                "-set_serial", "0x10000000", "-days", "3650", "-outform", "DER", "-out", tpl)
    missing = [i for i in range(n) if not os.path.exists(os.path.join(cache, "certs", f"c{i:05d}.pem"))]
    if not missing:
        return ca, leaf_key
    t = time.monotonic()
    print(f"generating {len(missing)} certificates into {cache}...", flush=True)
    with open(tpl, "rb") as f:
        der = f.read()
    key = _rsa_key(ca_key)
    _, oh, _ = _der_header(der, 0)
    _, th, tl = _der_header(der, oh)
    tbs = der[oh:oh + th + tl]
    rest = der[oh + th + tl:]              # signatureAlgorithm, then the BIT STRING
    _, ah, al = _der_header(rest, 0)
    sig_hdr_len = _der_header(rest, ah + al)[1]
    head, sig_prefix = der[:oh], rest[:ah + al + sig_hdr_len + 1]   # + the unused-bits byte
    # The serial: after the tbs header and the [0] version element.
    _, vh, vl = _der_header(tbs, th)
    spos = th + vh + vl
    _, sh, sl = _der_header(tbs, spos)
    name0 = cert_name(0).encode()
    for i in missing:
        body = bytearray(tbs.replace(name0, cert_name(i).encode()))
        body[spos + sh:spos + sh + sl] = (0x10000000 + i).to_bytes(sl, "big")
        body = bytes(body)
        cert = head + body + sig_prefix + _rsa_sign(key, body)
        b64 = base64.b64encode(cert).decode()
        pem = "-----BEGIN CERTIFICATE-----\n" + "\n".join(b64[k:k + 64] for k in range(0, len(b64), 64)) + \
            "\n-----END CERTIFICATE-----\n"
        out = os.path.join(cache, "certs", f"c{i:05d}.pem")
        with open(out + ".tmp", "w") as f:
            f.write(pem)
        os.rename(out + ".tmp", out)
    check = os.path.join(cache, "certs", f"c{missing[-1]:05d}.pem")
    r = subprocess.run(["openssl", "verify", "-CAfile", ca, check], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    if r.returncode != 0:
        sys.exit(f"generated certificate does not verify: {r.stdout.decode()}")
    print(f"  done in {time.monotonic() - t:.0f}s ({check} verifies)", flush=True)
    return ca, leaf_key


# --------------------------------------------------------------------------
# Manifests.

def group_doc(i, backend, weight=100):
    return h.server_group(f"g{i:05d}", [backend + (weight,)])


def copy_certs_in(d, n_certs, cache, leaf_key):
    """Copies the cached certificates and the key into d/certs (copies, not
    links: a linked file is one the watcher cannot vouch for, so albd
    checks it on every load). Returns the new cache folder and key path."""
    dst = os.path.join(d, "certs")
    os.makedirs(os.path.join(dst, "certs"), exist_ok=True)
    for i in range(n_certs):
        name = f"c{i:05d}.pem"
        shutil.copyfile(os.path.join(cache, "certs", name), os.path.join(dst, "certs", name))
    key = os.path.join(dst, "leaf.key")
    shutil.copyfile(leaf_key, key)
    os.chmod(key, 0o600)
    return dst, key


def write_config(d, n_certs, n_groups, ports, backend, cache, leaf_key, certs_inside):
    """The whole configuration in files of 100 documents each; returns the
    path of the file that holds group g00000 (the one changes touch).
    certs_inside: the certificate files are copied under d (where a GitOps
    repository keeps them, and where albd's watcher sees them change);
    otherwise they are named in the cache, outside the watched folder."""
    os.makedirs(d, exist_ok=True)
    if certs_inside:
        cache, leaf_key = copy_certs_in(d, n_certs, cache, leaf_key)
    with open(os.path.join(d, "instance.yaml"), "w") as f:
        f.write(yaml_docs(h.instance()))
    per = 100
    for start in range(0, n_certs, per):
        docs = [h.certificate(f"c{i:05d}", h.CertPair(os.path.join(cache, "certs", f"c{i:05d}.pem"), leaf_key))
                for i in range(start, min(n_certs, start + per))]
        with open(os.path.join(d, f"certificates-{start // per:03d}.yaml"), "w") as f:
            f.write(yaml_docs(*docs))
    for start in range(per, n_groups, per):  # groups-000 is written by write_groups0
        docs = [group_doc(i, backend) for i in range(start, min(n_groups, start + per))]
        with open(os.path.join(d, f"groups-{start // per:03d}.yaml"), "w") as f:
            f.write(yaml_docs(*docs))
    listeners = []
    for k, port in enumerate(ports):
        ext = [f"c{i:05d}" for i in range(len(ports), n_certs) if i % len(ports) == k]
        spec = {"tls": {"certificate": f"c{k:05d}"}}
        if ext:
            spec["tls"]["extensionCertificates"] = ext
        listeners.append(h.https_listener(f"l{k}", port, f"c{k:05d}", f"g{k % n_groups:05d}", **spec))
    with open(os.path.join(d, "listeners.yaml"), "w") as f:
        f.write(yaml_docs(*listeners))
    path = os.path.join(d, "groups-000.yaml")
    write_groups0(path, n_groups, backend, 100)
    return path


def write_groups0(path, n_groups, backend, weight):
    docs = [group_doc(i, backend, weight if i == 0 else 100) for i in range(min(100, n_groups))]
    write_in_place(path, yaml_docs(*docs))


_weights = {}


def toggle_groups0(path, n_groups, backend):
    """Rewrites the file with g00000's weight flipped between 100 and 50."""
    w = _weights[path] = 50 if _weights.get(path, 100) == 100 else 100
    write_groups0(path, n_groups, backend, w)


# --------------------------------------------------------------------------
# Measurements.

def rss_kib(pid):
    return h.proc_mem_kib(pid, "VmRSS")


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """utime + stime of the whole process (all threads). The machine may be
    shared: CPU time is the figure that other load does not inflate."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


class Run:
    def __init__(self, env, manifest_dir, workers):
        self.albd = h.Albd(env, manifest_dir, workers=workers)
        env.albds.append(self.albd)

    def wait_ready(self, timeout):
        t0 = time.monotonic()
        end = t0 + timeout
        while time.monotonic() < end:
            if not self.albd.alive():
                raise RuntimeError("albd exited:\n" + self.albd.stderr()[-3000:])
            try:
                if self.albd.admin_get("/readyz", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.01)
        raise RuntimeError(f"albd not ready after {timeout}s:\n" + self.albd.stderr()[-3000:])


def wait_gen(albd, above, timeout, poll=0.002):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            g = generation(albd)
            if g > above:
                return time.monotonic(), g
        except OSError:
            pass
        time.sleep(poll)
    return None, None


def changes(albd, path, n_groups, backend, count, timeout, budget):
    """count weight toggles of g00000 (fewer if budget seconds run out);
    (write → serving seconds, albd apply seconds)."""
    lat, apply, cpu = [], [], []
    end = time.monotonic() + budget
    for k in range(count):
        if time.monotonic() > end:
            print(f"  time budget ({budget:.0f}s) spent after {k} changes", flush=True)
            break
        g = generation(albd)
        c0 = cpu_seconds(albd.pid)
        t0 = time.monotonic()
        toggle_groups0(path, n_groups, backend)
        t1, _ = wait_gen(albd, g, timeout)
        if t1 is None:
            raise RuntimeError(f"change {k} did not apply within {timeout}s")
        lat.append(t1 - t0)
        cpu.append(cpu_seconds(albd.pid) - c0)
        apply.append(metrics(albd).get("albd_apply_duration_seconds", float("nan")))
        time.sleep(0.05)  # let the watcher's debounce settle before the next write
    return lat, apply, cpu


def reloads(albd, path, n_groups, backend, count, timeout, budget):
    """count SIGHUP reloads with alternating content (fewer if budget
    seconds run out). Returns RSS samples (KiB) as (reloads done, RSS) and
    the latencies from the write (SIGHUP right after it) to serving: the
    watcher's debounce is not in these."""
    samples = [(0, rss_kib(albd.pid))]
    lat = []
    end = time.monotonic() + budget
    for k in range(count):
        if time.monotonic() > end:
            print(f"  time budget ({budget:.0f}s) spent after {k} reloads", flush=True)
            samples.append((k, rss_kib(albd.pid)))
            break
        g = generation(albd)
        t0 = time.monotonic()
        toggle_groups0(path, n_groups, backend)
        albd.signal(signal.SIGHUP)
        t, _ = wait_gen(albd, g, timeout, poll=0.001)
        if t is None:
            raise RuntimeError(f"reload {k} did not apply within {timeout}s")
        lat.append(t - t0)
        if (k + 1) in (10, 100, count // 2, count):
            samples.append((k + 1, rss_kib(albd.pid)))
    return samples, lat


def ms(v):
    return f"{v * 1000:8.1f}"


def measure(env, name, n_certs, n_groups, cache, leaf_key, backend, args, n_reloads, certs_inside=True):
    d = os.path.join(env.dir, name.replace(", ", "-").replace(" ", "-"))
    ports = h.free_ports(min(LISTENERS, max(1, n_certs)))
    t = time.monotonic()
    path = write_config(d, n_certs, n_groups, ports, backend, cache, leaf_key, certs_inside)
    size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d) if f.endswith(".yaml"))
    print(f"[{name}] manifests written in {time.monotonic() - t:.1f}s ({size // 1024} KiB; certificates "
          f"{'under the folder' if certs_inside else 'outside it'})", flush=True)
    r = Run(env, d, args.workers)
    t0 = time.monotonic()
    r.wait_ready(args.load_timeout)
    cold = time.monotonic() - t0
    cold_cpu = cpu_seconds(r.albd.pid)
    wait_for(lambda: generation(r.albd) >= 1, 10)
    rss_ready = rss_kib(r.albd.pid)
    print(f"[{name}] ready in {cold:.2f}s ({cold_cpu:.2f}s CPU), RSS {rss_ready / 1024:.0f} MiB", flush=True)
    timeout = max(30.0, cold * 5)
    lat, apply, cpu = changes(r.albd, path, n_groups, backend, args.changes, timeout, args.budget)
    print(f"[{name}] {len(lat)} changes: median {statistics.median(lat) * 1000:.1f} ms, "
          f"worst {max(lat) * 1000:.1f} ms", flush=True)
    samples, rlat = reloads(r.albd, path, n_groups, backend, n_reloads, timeout, args.budget) \
        if n_reloads else ([], [])
    if samples:
        print(f"[{name}] {len(rlat)} reloads: write+SIGHUP to serving median "
              f"{statistics.median(rlat) * 1000:.1f} ms, worst {max(rlat) * 1000:.1f} ms; RSS "
              + ", ".join(f"{k}: {v / 1024:.1f} MiB" for k, v in samples), flush=True)
    snaps = metrics(r.albd).get("albd_snapshots_active")
    rc = r.albd.stop(timeout=60)
    if "cannot listen" in r.albd.stderr():
        # A port picked as free was taken by then (another process, or an
        # ephemeral client port): albd contained that listener, and every
        # reconcile also tried it again. The figures are not comparable.
        print(f"[{name}] WARNING: a listener port could not be bound during this run; "
              "its figures include containment", flush=True)
    return {"name": name, "certs": n_certs, "groups": n_groups, "cold": cold, "cold_cpu": cold_cpu, "cpu": cpu, "rss_ready": rss_ready,
            "lat": lat, "apply": apply, "reloads": samples, "rlat": rlat, "snapshots": snaps, "exit": rc}


def report(results):
    print()
    print("| configuration | certs | groups | cold load s (CPU s) | RSS ready MiB | changes | change median ms "
          "| change worst ms | apply median ms | apply worst ms | CPU per change median ms | reloads "
          "| SIGHUP median ms | SIGHUP worst ms | RSS before → after MiB | snapshots | exit |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for r in results:
        ap = [a for a in r["apply"] if a == a]
        rl = r["reloads"]
        rss = f"{rl[0][1] / 1024:.1f} → {rl[-1][1] / 1024:.1f}" if rl else "-"
        sig_med = ms(statistics.median(r["rlat"])).strip() if r["rlat"] else "-"
        sig_max = ms(max(r["rlat"])).strip() if r["rlat"] else "-"
        print(f"| {r['name']} | {r['certs']} | {r['groups']} | {r['cold']:.2f} ({r['cold_cpu']:.2f}) | {r['rss_ready'] / 1024:.0f} "
              f"| {len(r['lat'])} | {ms(statistics.median(r['lat'])).strip()} | {ms(max(r['lat'])).strip()} "
              f"| {ms(statistics.median(ap)).strip() if ap else '-'} | {ms(max(ap)).strip() if ap else '-'} "
              f"| {ms(statistics.median(r['cpu'])).strip()} "
              f"| {rl[-1][0] if rl else 0} | {sig_med} | {sig_max} | {rss} | {r['snapshots']} | {r['exit']} |")
    print("\nchange = file write until albd_config_generation moves (includes the watcher's debounce);"
          "\nSIGHUP = file write then SIGHUP until the generation moves (no debounce);"
          "\napply = albd_apply_duration_seconds (load + validate + build + publish, measured by albd);"
          "\nCPU = albd's utime+stime during one change (not inflated by other load on the machine).")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--albd", default=os.path.join(HERE, "..", "build", "albd"))
    ap.add_argument("--certs", type=int, default=10000)
    ap.add_argument("--groups", type=int, default=10000)
    ap.add_argument("--changes", type=int, default=100)
    ap.add_argument("--reloads", type=int, default=1000, help="SIGHUP reloads on the small configuration")
    ap.add_argument("--large-reloads", type=int, default=20, help="SIGHUP reloads on the large configuration")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "albd-bench-certs"))
    ap.add_argument("--load-timeout", type=float, default=600)
    ap.add_argument("--budget", type=float, default=600, help="seconds at most for each series of changes or reloads")
    ap.add_argument("--quick", action="store_true", help="500 certificates and groups, 20 changes, 100 reloads")
    ap.add_argument("--no-outside", action="store_true",
                    help="skip the large run whose certificate files live outside the manifest folder")
    args = ap.parse_args()
    if args.quick:
        args.certs, args.groups, args.changes, args.reloads, args.large_reloads = 500, 500, 20, 100, 5
    os.environ["ALBD"] = os.path.abspath(args.albd)
    if not os.access(os.environ["ALBD"], os.X_OK):
        sys.exit(f"no albd binary at {args.albd}")
    ca, leaf_key = make_certs(args.cache, max(args.certs, 1))
    results = []
    with h.Env("bench-reconcile-scale") as env:
        be = env.backend("a")
        results.append(measure(env, "small", 1, 1, args.cache, leaf_key, be.addr, args, args.reloads))
        results.append(measure(env, "large", args.certs, args.groups, args.cache, leaf_key, be.addr, args,
                               args.large_reloads))
        if not args.no_outside:
            results.append(measure(env, "large, certs outside", args.certs, args.groups, args.cache, leaf_key,
                                   be.addr, args, args.large_reloads, certs_inside=False))
        report(results)
    bad = [r["name"] for r in results if r["exit"] != 0]
    if bad:
        print(f"albd did not exit 0 on: {bad}")
    shutil.rmtree(env.dir, ignore_errors=True)
    return 1 if bad or env.check.failed else 0


if __name__ == "__main__":
    sys.exit(main())
