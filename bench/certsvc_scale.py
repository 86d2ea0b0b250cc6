#!/usr/bin/env python3
"""What do 10,000 certificates from a certificate service cost, against the
same 10,000 as files?

One configuration: 10,000 certificates as extension certificates over 4
HTTPS listeners (as bench/reconcile_scale.py), from a CertificateService
served by contrib/certsvc/certsvc.py (one EC key for all, the cached
certificates of reconcile_scale.py), or from files outside the manifest
folder. Measured:

  - cold start with a warm certificate cache, the service down: start to
    /readyz 200 (the cache read like files), CPU, RSS;
  - cold start with a warm cache, the service up: to /readyz, then until
    every certificate's conditional refetch (10,000 x 304) is done, and the
    CPU those fetches took;
  - a one-certificate rotation at the service: publish to served (the
    refresh interval dominates) and albd's own fetch-to-applied time and
    apply duration (the reconcile after the cache write);
  - the same configuration with files: cold start, and one certificate file
    replaced: write to the new generation, apply duration.

Not a ctest: python3 bench/certsvc_scale.py --albd build/albd [--certs N]
"""
import argparse
import hashlib
import os
import re
import shutil
import signal
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration", "lib"))
sys.path.insert(0, HERE)
import albd_harness as h  # noqa: E402
from certsvc_support import CertService  # noqa: E402
from reconcile_scale import cpu_seconds, make_certs, rss_kib, wait_gen  # noqa: E402
from reconcile_support import generation, metrics, wait_for, yaml_docs  # noqa: E402

LISTENERS = 4


def version_of(cert_path, key_path):
    with open(cert_path, "rb") as f, open(key_path, "rb") as g:
        return hashlib.sha256(f.read() + b"\0" + g.read()).hexdigest()[:16]


def write_manifests(d, n, ports, backend, cert_doc, extra=()):
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.unlink(os.path.join(d, f))
    with open(os.path.join(d, "instance.yaml"), "w") as f:
        f.write(yaml_docs(h.instance(), *extra))
    for start in range(0, n, 100):
        with open(os.path.join(d, f"certificates-{start // 100:03d}.yaml"), "w") as f:
            f.write(yaml_docs(*[cert_doc(i) for i in range(start, min(n, start + 100))]))
    docs = [h.server_group("g0", [backend])]
    for k, port in enumerate(ports):
        ext = [f"c{i:05d}" for i in range(len(ports), n) if i % len(ports) == k]
        spec = {"tls": {"certificate": f"c{k:05d}", **({"extensionCertificates": ext} if ext else {})}}
        docs.append(h.https_listener(f"l{k}", port, f"c{k:05d}", "g0", **spec))
    with open(os.path.join(d, "listeners.yaml"), "w") as f:
        f.write(yaml_docs(*docs))


def start(env, d, args, timeout):
    a = h.Albd(env, d, workers=2, args=args)
    env.albds.append(a)
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if not a.alive():
            raise RuntimeError("albd exited:\n" + a.stderr()[-3000:])
        try:
            if a.admin_get("/readyz", timeout=2)[0] == 200:
                return a, time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.01)
    raise RuntimeError("albd not ready:\n" + a.stderr()[-3000:])


def applied_ms(stderr, after_marker):
    """The apply time albd logged for the first "applied generation" after
    the line holding after_marker."""
    pos = stderr.find(after_marker)
    m = re.search(r"applied generation \d+ .* in ([0-9.]+) ms", stderr[pos:]) if pos >= 0 else None
    return float(m.group(1)) if m else float("nan")


def log_time(stderr, needle):
    for line in stderr.splitlines():
        if needle in line:
            return line[:24]
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--albd", default=os.path.join(HERE, "..", "build", "albd"))
    ap.add_argument("--certs", type=int, default=10000)
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "albd-bench-certs"))
    ap.add_argument("--refresh", type=int, default=30)
    ap.add_argument("--load-timeout", type=float, default=600)
    args = ap.parse_args()
    os.environ["ALBD"] = os.path.abspath(args.albd)
    n = args.certs
    ca, leaf_key = make_certs(args.cache, n + 1)  # c<n> is the rotation's new version
    out = {}
    with h.Env("bench-certsvc-scale") as env:
        be = env.backend("a")
        ports = h.free_ports(LISTENERS)
        svc = CertService(env)
        for i in range(n):
            d = os.path.join(svc.dir, f"c{i:05d}")
            os.makedirs(d, exist_ok=True)
            shutil.copyfile(os.path.join(args.cache, "certs", f"c{i:05d}.pem"), os.path.join(d, "cert.pem"))
            shutil.copyfile(leaf_key, os.path.join(d, "key.pem"))
        # albd's cache, warm: what a previous run wrote.
        cache = os.path.join(env.dir, "albd-cache")
        for i in range(n):
            d = os.path.join(cache, "cas", f"c{i:05d}")
            os.makedirs(d, mode=0o700, exist_ok=True)
            for src, name in ((os.path.join(svc.dir, f"c{i:05d}", "cert.pem"), "cert.pem"),
                              (leaf_key, "key.pem")):
                shutil.copyfile(src, os.path.join(d, name))
                os.chmod(os.path.join(d, name), 0o600)
            with open(os.path.join(d, "version"), "w") as f:
                f.write(version_of(os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")))
        svc_doc = h.doc("CertificateService", "cas", {
            "endpoint": svc.endpoint, "caFile": svc.ca, "tokenFile": svc.token_file,
            "refreshIntervalSeconds": args.refresh, "timeoutSeconds": 5})
        md = env.manifest_dir
        write_manifests(md, n, ports, be.addr, lambda i: h.doc(
            "Certificate", f"c{i:05d}", {"source": {"service": {"name": "cas", "certificateId": f"c{i:05d}"}}}),
            extra=(svc_doc,))

        print("1. warm cache, service down", flush=True)
        svc.stop()
        a, t = start(env, md, ("--cert-cache", cache), args.load_timeout)
        out["service, warm cache, service down: cold start s (CPU s), RSS MiB"] = \
            f"{t:.2f} ({cpu_seconds(a.pid):.2f}), {rss_kib(a.pid) / 1024:.0f}"
        a.stop()

        print("2. warm cache, service up", flush=True)
        svc.start()
        a, t = start(env, md, ("--cert-cache", cache), args.load_timeout)
        c_ready = cpu_seconds(a.pid)
        t0 = time.monotonic()
        done = wait_for(lambda: metrics(a).get('albd_certsvc_fetch_total{result="unchanged"}', 0) >= n,
                        args.load_timeout, interval=0.2)
        t_fetch = time.monotonic() - t0
        if not done:
            print(a.stderr()[:1500], svc.log()[-1500:])
        n304 = metrics(a).get('albd_certsvc_fetch_total{result="unchanged"}', 0)
        out["service, warm cache, service up: cold start s"] = f"{t:.2f}"
        out["... then all conditional refetches (304) done s, albd CPU s"] = \
            f"{t_fetch:.2f} ({'all' if done else 'NOT all'}: {n304:.0f} x 304), {cpu_seconds(a.pid) - c_ready:.2f}"

        print("3. one rotation at the service", flush=True)
        g = generation(a)
        new = os.path.join(args.cache, "certs", f"c{n:05d}.pem")
        t0 = time.monotonic()
        svc.publish("c00000", h.CertPair(new, leaf_key))
        t1, _ = wait_gen(a, g, args.refresh * 1.2 + 10)
        err = a.stderr()
        marker = "certificate c00000 version"
        out["service, one rotation: publish -> served s (refresh interval)"] = \
            f"{(t1 - t0) if t1 else float('nan'):.2f} ({args.refresh})"
        out["... albd: cached -> applied (apply ms)"] = \
            f"{log_time(err, marker)} -> apply {applied_ms(err, marker):.1f} ms"
        c0 = cpu_seconds(a.pid)
        time.sleep(args.refresh)
        out[f"service, steady state: albd CPU s per refresh interval ({n} x 304)"] = f"{cpu_seconds(a.pid) - c0:.2f}"
        a.stop()
        svc.stop()

        print("4. files", flush=True)
        write_manifests(md, n, ports, be.addr, lambda i: h.certificate(f"c{i:05d}", h.CertPair(
            os.path.join(cache, "cas", f"c{i:05d}", "cert.pem"), os.path.join(cache, "cas", f"c{i:05d}", "key.pem"))))
        a, t = start(env, md, (), args.load_timeout)
        out["files: cold start s (CPU s), RSS MiB"] = f"{t:.2f} ({cpu_seconds(a.pid):.2f}), {rss_kib(a.pid) / 1024:.0f}"
        time.sleep(1)  # as tls_reloads_certificates: the watcher's extra folders are set after the load
        g = generation(a)
        target = os.path.join(cache, "cas", "c00000", "cert.pem")
        # (step 3 left c<n> in this file: another certificate is a change)
        shutil.copyfile(os.path.join(args.cache, "certs", "c00001.pem"), target + ".tmp")
        t0 = time.monotonic()
        os.replace(target + ".tmp", target)
        t1, _ = wait_gen(a, g, 30)
        out["files: one certificate file replaced -> served ms (apply ms)"] = \
            f"{((t1 - t0) * 1000) if t1 else float('nan'):.1f} ({metrics(a).get('albd_apply_duration_seconds', 0) * 1000:.1f})"
        a.stop()
    for k, v in out.items():
        print(f"| {k} | {v} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
