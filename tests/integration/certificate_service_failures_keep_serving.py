#!/usr/bin/env python3
"""Every way the certificate service can fail — timeout, refused
connection, closed connection, TLS failure, 401, 403, 404, 500, malformed
JSON, a key that does not match, an expired or not-yet-valid certificate, a
wrong ID, a slow (drip-fed) and an endless reply — keeps the certificate
being served (same fingerprint, zero failed HTTPS requests under load),
shows the reason in /status and counts it in /metrics; once the service
behaves again the newest version is served."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import free_ports, https_listener, instance, log, run, scaled, server_group  # noqa: E402
from certsvc_support import (CertService, cert_service, cert_status, der_sha256, served_fp,  # noqa: E402
                             service_certificate)
from reconcile_support import Poller, metrics, wait_for  # noqa: E402

# (--fail mode, the result albd must report)
MODES = [
    ("401", "unauthorized"), ("403", "forbidden"), ("404", "not_found"), ("500", "server_error"),
    ("badjson", "malformed"), ("mismatch", "key_mismatch"), ("expired", "expired"),
    ("notyet", "not_yet_valid"), ("wrongid", "wrong_id"), ("refuse", "connection"),
    ("timeout", "timeout"), ("slow", "timeout"), ("endless", "too_large"),
]


def body(env):
    c = env.check
    certs = env.certs()
    svc = CertService(env)
    v1 = certs.issue("v1", ["albd.test", "localhost"])
    svc.publish("www", v1)
    be = env.backend("a")
    (port,) = free_ports(1)
    cache = os.path.join(env.dir, "cache")

    def manifests(**svc_spec):
        env.write_manifests(instance(), cert_service("cas", svc, refresh=60, timeout=2, **svc_spec),
                            service_certificate("www", "cas", "www"), server_group("web", [be.addr]),
                            https_listener("svc", port, "www", "web"))
    manifests()
    albd = env.start_albd(ports=(port,), args=("--cert-cache", cache))
    want = der_sha256(v1.cert)
    c.eq(served_fp(env, port), want, "the fetched certificate is served")

    # A newer version waits at the service: a failure must not let anything
    # but it (or the old one) through; each mode fails before it is read.
    v2 = certs.issue("v2", ["albd.test", "localhost"])
    svc.publish("www", v2)
    poller = Poller(env, port, name="load")
    poller.start()

    def expect_failure(what, result):
        before = metrics(albd).get(f'albd_certsvc_fetch_total{{result="{result}"}}', 0)
        albd.signal(1)  # SIGHUP: fetch now
        ok = wait_for(lambda: metrics(albd).get(f'albd_certsvc_fetch_total{{result="{result}"}}', 0) > before,
                      scaled(10), interval=0.05)
        e = cert_status(albd, "www") or {}
        c.ok(ok and e.get("lastResult") == result and e.get("state") == "Failing" and e.get("lastError"),
             f"{what}: /status shows the failure with a reason", f"lastResult {result}, Failing",
             {k: e.get(k) for k in ("state", "lastResult", "lastError")})
        c.eq(served_fp(env, port), want, f"{what}: the certificate served is unchanged")

    for mode, result in MODES:
        svc.mode(mode)
        expect_failure(f"--fail {mode}", result)

    # TLS: the service's certificate does not chain to caFile.
    svc.mode("ok")
    other = certs.issue("other-ca", ["localhost"], self_signed=True)
    gen = albd.generation()
    manifests(caFile=other.cert)
    wait_for(lambda: albd.generation() > gen, scaled(5))
    expect_failure("a service certificate not signed by caFile", "tls")
    manifests()
    wait_for(lambda: albd.generation() > gen + 1, scaled(5))

    # Refused connection: the service is down.
    svc.stop()
    expect_failure("the service down", "connect")

    ok, fails, _ = poller.snapshot()
    c.ok(ok > 20, "HTTPS requests kept flowing through every failure", "> 20", ok)
    c.eq(fails[:3], [], "no HTTPS request failed while the service failed")
    logs = albd.stderr()
    c.ok("BEGIN" not in logs and "s3cret" not in logs, "no PEM and no token in the log")

    # The service behaves again: the newest version is served.
    svc.start()
    t0 = time.monotonic()
    albd.signal(1)
    want2 = der_sha256(v2.cert)
    c.ok(wait_for(lambda: served_fp(env, port) == want2, scaled(10), interval=0.05),
         "once the service behaves, its newest version is served")
    log(f"MEASURE: fetch requested -> new version served: {time.monotonic() - t0:.3f} s")
    e = cert_status(albd, "www") or {}
    c.eq((e.get("state"), e.get("failures"), e.get("lastError")), ("Fetched", 0, None),
         "/status: Fetched, failures reset, no error")
    poller.stop()
    ok, fails, _ = poller.snapshot()
    c.eq(fails[:3], [], "no HTTPS request failed at all")
    albd.check_clean_exit(c)
    svc.stop()


run("certificate_service_failures_keep_serving", body)
