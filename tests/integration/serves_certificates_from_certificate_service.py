#!/usr/bin/env python3
"""A Certificate with source.service is fetched from the certificate service
(contrib/certsvc/certsvc.py, HTTPS, bearer token) and served; a new version
at the service is served within one refresh interval with zero failed
requests under HTTPS load (the time is printed); the cache holds it with
folders 0700 and files 0600; albd restarted while the service is down
serves from the cache; a cold start with neither leaves only that listener
down (Pending in /status, /readyz 503 unless --ready-when-any) while a
listener with a file certificate serves, and the listener comes up once
the service answers (also with --strict, whose first load fails on it)."""
import json
import os
import stat
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (certificate, free_ports, https_listener, instance, log, run, scaled,  # noqa: E402
                          server_group)
from certsvc_support import (CertService, cert_service, cert_status, der_sha256, served_fp,  # noqa: E402
                             service_certificate)
from reconcile_support import Poller, metrics, refuses, status, wait_for  # noqa: E402

REFRESH = 10  # the schema's minimum refreshIntervalSeconds


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def body(env):
    c = env.check
    certs = env.certs()
    svc = CertService(env)
    v1 = certs.issue("v1", ["albd.test", "localhost"])
    svc.publish("www", v1)
    be = env.backend("a")
    p_svc, p_file = free_ports(2)
    cache = os.path.join(env.dir, "state", "certs")
    docs = (instance(), cert_service("cas", svc, refresh=REFRESH), service_certificate("www", "cas", "www"),
            certificate("file", certs.rsa), server_group("web", [be.addr]),
            https_listener("svc", p_svc, "www", "web"), https_listener("plain", p_file, "file", "web"))
    env.write_manifests(*docs)
    albd = env.start_albd(ports=(p_svc, p_file), args=("--cert-cache", cache))

    c.eq(served_fp(env, p_svc), der_sha256(v1.cert), "the certificate fetched from the service is served")
    e = cert_status(albd, "www")
    c.eq((e or {}).get("state"), "Fetched", "/status certificateService: www Fetched")
    c.ok("Bearer" not in albd.stderr() and "s3cret" not in json.dumps(status(albd)),
         "the token appears in neither the log nor /status")

    # The cache: folders 0700, files 0600, nothing left behind.
    d = os.path.join(cache, "cas", "www")
    for p in (cache, os.path.join(cache, "cas"), d):
        c.eq(oct(mode_of(p)), oct(0o700), f"cache folder {os.path.relpath(p, env.dir)} is 0700")
    c.eq(sorted(os.listdir(d)), ["cert.pem", "key.pem", "version"], "the cache holds cert, key and version only")
    for n in ("cert.pem", "key.pem", "version"):
        c.eq(oct(mode_of(os.path.join(d, n))), oct(0o600), f"cache file {n} is 0600")
    with open(os.path.join(d, "cert.pem")) as f, open(v1.cert) as g:
        c.eq(f.read(), g.read(), "the cached certificate is the service's")

    # Rotation under HTTPS load (a new connection, hence a handshake, per request).
    pollers = [Poller(env, p_svc, name=f"load{i}") for i in range(2)]
    for p in pollers:
        p.start()
    time.sleep(scaled(0.5))
    v2 = certs.issue("v2", ["albd.test", "localhost"])
    t0 = time.monotonic()
    svc.publish("www", v2)
    want = der_sha256(v2.cert)
    seen = wait_for(lambda: served_fp(env, p_svc) == want, REFRESH * 1.1 + scaled(3), interval=0.05)
    took = time.monotonic() - t0
    time.sleep(scaled(0.5))
    for p in pollers:
        p.stop()
    c.ok(seen, "the new version is served within one refresh interval (+10% jitter)",
         f"<= {REFRESH * 1.1:.0f} s", f"{took:.1f} s")
    log(f"MEASURE: new version at the service -> served: {took:.2f} s (refresh interval {REFRESH} s)")
    oks = sum(p.snapshot()[0] for p in pollers)
    fails = [f for p in pollers for f in p.snapshot()[1]]
    c.ok(oks > 20, "requests kept flowing during the rotation", "> 20", oks)
    c.eq(fails[:3], [], "no request failed during the rotation")
    m = metrics(albd)
    c.ok(m.get('albd_certsvc_fetch_total{result="updated"}', 0) >= 2,
         "/metrics counts both fetched versions", ">= 2", m.get('albd_certsvc_fetch_total{result="updated"}'))

    # An unchanged certificate costs a 304.
    gen = albd.generation()
    albd.signal(1)  # SIGHUP: fetch every certificate now
    c.ok(wait_for(lambda: metrics(albd).get('albd_certsvc_fetch_total{result="unchanged"}', 0) >= 1, scaled(5)),
         "a refetch of an unchanged certificate is a 304 (result unchanged)")
    c.ok('" 304 ' in svc.log(), "the service answered 304 Not Modified")
    c.eq(albd.generation(), gen, "an unchanged certificate applies nothing")
    albd.check_clean_exit(c)

    # Restart while the service is down: served from the cache.
    svc.stop()
    albd2 = env.start_albd(ports=(p_svc, p_file), args=("--cert-cache", cache))
    c.eq(served_fp(env, p_svc), want, "restarted with the service down: the cached certificate is served")
    e = wait_for(lambda: (lambda x: x if x and x.get("lastResult") else None)(cert_status(albd2, "www")),
                 scaled(5))
    c.eq((e or {}).get("lastResult"), "connect", "/status says why the fetch failed (connect)")
    c.ok((e or {}).get("lastError"), "... with a message", "a message", e)
    albd2.check_clean_exit(c)

    # Cold start with neither service nor cache: only that listener is down.
    cold = os.path.join(env.dir, "cold-cache")
    albd3 = env.start_albd(ports=(p_svc, p_file), ready=False, args=("--cert-cache", cold))
    c.ok(wait_for(lambda: served_fp(env, p_file) == der_sha256(certs.rsa.cert), scaled(10)),
         "cold start without service or cache: the file-certificate listener serves")
    c.ok(refuses(p_svc), "... the service-certificate listener is not listening")
    st, b = albd3.admin_get("/readyz")
    c.eq(st, 503, "/readyz is 503 while a listener waits for its certificate")
    res = {(r["kind"], r["name"]): {k["type"]: k for k in r["conditions"]}
           for r in status(albd3)["resources"]}
    svc_c, plain_c = res.get(("Listener", "svc"), {}), res.get(("Listener", "plain"), {})
    c.eq((svc_c.get("Ready", {}).get("status"), svc_c.get("Ready", {}).get("reason"),
          svc_c.get("Accepted", {}).get("status")), ("False", "Pending", "True"),
         "/status: Listener svc is Pending (Accepted, not Ready)")
    c.eq(plain_c.get("Ready", {}).get("status"), "True", "/status: Listener plain is Ready")
    c.eq((cert_status(albd3, "www") or {}).get("state"), "Pending", "/status certificateService: www Pending")
    albd3.check_clean_exit(c)

    # --ready-when-any: ready while some listener serves; then the service
    # comes back and the waiting listener starts.
    cold2 = os.path.join(env.dir, "cold-cache-2")
    albd4 = env.start_albd(ports=(p_svc, p_file), ready=False, args=("--cert-cache", cold2, "--ready-when-any"))
    c.ok(wait_for(lambda: albd4.admin_get("/readyz")[0] == 200, scaled(10)),
         "--ready-when-any: /readyz 200 while a listener waits")
    c.ok(refuses(p_svc), "... and that listener is still not listening")
    svc.start()
    t0 = time.monotonic()
    albd4.signal(1)  # fetch now rather than after the backoff
    c.ok(wait_for(lambda: served_fp(env, p_svc) == want, scaled(10)),
         "once the service answers, the waiting listener serves its certificate")
    log(f"MEASURE: service back -> pending listener serving: {time.monotonic() - t0:.2f} s")
    albd4.check_clean_exit(c)

    # --strict, nothing cached: the first load fails on the waiting listener,
    # yet the certificate is fetched and the configuration then applies.
    cold3 = os.path.join(env.dir, "cold-cache-3")
    albd5 = env.start_albd(ports=(p_svc, p_file), args=("--cert-cache", cold3, "--strict"))
    c.eq(served_fp(env, p_svc), want, "--strict cold start: the certificate is fetched and served")
    albd5.check_clean_exit(c)
    svc.stop()


run("serves_certificates_from_certificate_service", body)
