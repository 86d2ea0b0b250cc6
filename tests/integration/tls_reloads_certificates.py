#!/usr/bin/env python3
"""A certificate rewritten on disk is served after the watcher reconciles:
new handshakes see the new certificate, while a keep-alive connection
opened before keeps working (nothing is dropped). Also rewritten in place
once albd trusts the file without a stat (the watcher names what changed),
rotated Kubernetes-Secret style (visible files are links through a "..data"
link that is swapped: no event ever names the visible file), and outside
the manifest folder: files replaced in a folder of their own, and a
certbot-style renewal (live/ links re-pointed to new archive/ files)."""
import hashlib
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (CertPair, certificate, echo_of, free_ports, https_listener, instance,  # noqa: E402
                          read_response, run, scaled, server_group)
from reconcile_support import ConfigMapDir, metrics  # noqa: E402


def der_sha256(pem_path):
    import ssl
    with open(pem_path) as f:
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()


def get(f, sock, path):
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: albd.test\r\n\r\n".encode())
    return read_response(f)


def body(env):
    c = env.check
    certs = env.certs()
    v2 = certs.issue("v2", ["albd.test", "localhost"])
    be = env.backend("a")
    (port,) = free_ports(1)
    # The served files live under the manifest folder, which the watcher watches.
    live = CertPair(os.path.join(env.manifest_dir, "server.pem"), os.path.join(env.manifest_dir, "server.key"))
    shutil.copy(certs.rsa.cert, live.cert)
    shutil.copy(certs.rsa.key, live.key)
    env.write_manifests(instance(), certificate("main", live), server_group("web", [be.addr]),
                        https_listener("web", port, "main", "web", idleTimeoutSeconds=60))
    albd = env.start_albd(ports=(port,))

    s = env.tls_socket(port)
    f = s.makefile("rb")
    old_fp = hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()
    c.eq(old_fp, der_sha256(certs.rsa.cert), "the first certificate is served")
    _, st, _, b, _ = get(f, s, "/before")
    c.eq(st, 200, "keep-alive connection: request before the change")

    # Rewrite both files (each replaced atomically), as a deploy would.
    gen = albd.generation()
    for src, dst in ((v2.key, live.key), (v2.cert, live.cert)):
        tmp = dst + ".tmp"
        shutil.copy(src, tmp)
        os.replace(tmp, dst)
    new_gen = albd.wait_generation(gen)
    c.ok(new_gen is not None, "the watcher reconciled the rewritten certificate", f"> {gen}", new_gen)

    fresh = env.tls_socket(port)
    try:
        c.eq(hashlib.sha256(fresh.getpeercert(binary_form=True)).hexdigest(), der_sha256(v2.cert),
             "a new handshake sees the new certificate")
    finally:
        fresh.close()
    _, st, _, b, _ = get(f, s, "/after")
    c.eq(st, 200, "the keep-alive connection opened before the change still works")
    c.eq(echo_of(b).get("path"), "/after", "... and reaches the backend")
    _, st, _, _, _ = get(f, s, "/again")
    c.eq(st, 200, "... for more than one request")
    f.close()
    s.close()
    code, _, _ = env.curl(env.url(port, "/curl"))
    c.eq(code, 200, "curl (verifying the new certificate) gets 200")

    def served_fp():
        s = env.tls_socket(port)
        try:
            return hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()
        finally:
            s.close()

    def reconciled(what, write, serves=None):
        """write(), then wait for a new generation; with serves (a
        certificate file), also until new handshakes get that certificate:
        files written one after the other can be read between two writes
        (key new, certificate old: contained, the old one keeps serving),
        so the first new generation need not be the last."""
        gen = albd.generation()
        write()
        new_gen = albd.wait_generation(gen)
        c.ok(new_gen is not None, f"the watcher reconciled {what}", f"> {gen}", new_gen)
        if serves:
            want, deadline = der_sha256(serves), time.monotonic() + scaled(5)
            while served_fp() != want and time.monotonic() < deadline:
                time.sleep(0.05)

    # Let the files settle, then make albd read them once more (any manifest
    # event does): from then on a reload trusts them without a stat unless
    # the watcher names them. An in-place rewrite (same inode) is named.
    v3 = certs.issue("v3", ["albd.test", "localhost"])
    for timeout in (61, 62):
        time.sleep(scaled(0.3))
        reconciled("a touched manifest", lambda: env.write_manifests(
            instance(), certificate("main", live), server_group("web", [be.addr]),
            https_listener("web", port, "main", "web", idleTimeoutSeconds=timeout)))
    c.ok(metrics(albd).get('albd_last_reconcile_files{how="unchanged_without_stat"}', 0) >= 2,
         "the certificate files were taken without a stat (the watcher named no change)")

    def in_place():
        for src, dst in ((v3.key, live.key), (v3.cert, live.cert)):
            with open(src, "rb") as fsrc, open(dst, "r+b") as fdst:
                data = fsrc.read()
                fdst.truncate(0)
                fdst.write(data)
    time.sleep(scaled(0.3))
    reconciled("certificate files rewritten in place", in_place, serves=v3.cert)
    c.eq(served_fp(), der_sha256(v3.cert), "a new handshake sees the certificate rewritten in place")

    # Secret layout: secret/tls.crt -> ..data/tls.crt, ..data -> ..<stamp>.
    v4, v5 = (certs.issue(n, ["albd.test", "localhost"]) for n in ("v4", "v5"))
    secret = ConfigMapDir(os.path.join(env.manifest_dir, "secret"))

    def files_of(pair):
        out = {}
        for name, src in (("tls.crt", pair.cert), ("tls.key", pair.key)):
            with open(src) as f:
                out[name] = f.read()
        return out
    secret.update(files_of(v4))
    linked = CertPair(os.path.join(secret.path, "tls.crt"), os.path.join(secret.path, "tls.key"))
    reconciled("a certificate moved into a Secret volume", lambda: env.write_manifests(
        instance(), certificate("main", linked), server_group("web", [be.addr]),
        https_listener("web", port, "main", "web", idleTimeoutSeconds=61)))
    c.eq(served_fp(), der_sha256(v4.cert), "the certificate from the Secret volume is served")
    time.sleep(scaled(0.3))
    reconciled("the Secret's ..data swap", lambda: secret.update(files_of(v5)), serves=v5.cert)
    c.eq(served_fp(), der_sha256(v5.cert), "a new handshake sees the rotated Secret's certificate")

    # Outside the manifest folder: albd watches the folders its certificate
    # files are in, so a replacement there reconciles without SIGHUP.
    v6, v7, v8, v9 = (certs.issue(n, ["albd.test", "localhost"]) for n in ("v6", "v7", "v8", "v9"))
    out_dir = os.path.join(env.dir, "outside-tls")
    os.makedirs(out_dir)
    outside = CertPair(os.path.join(out_dir, "server.pem"), os.path.join(out_dir, "server.key"))
    shutil.copy(v6.cert, outside.cert)
    shutil.copy(v6.key, outside.key)
    reconciled("certificate files moved outside the manifest folder", lambda: env.write_manifests(
        instance(), certificate("main", outside), server_group("web", [be.addr]),
        https_listener("web", port, "main", "web", idleTimeoutSeconds=61)))
    c.eq(served_fp(), der_sha256(v6.cert), "the certificate outside the folder is served")

    # Once its folder has been watched since before a load, a file out
    # there is taken without a stat unless the watcher names it (by its
    # absolute path): an in-place rewrite there must still be named.
    for timeout in (62, 61):
        time.sleep(scaled(0.3))
        reconciled("a touched manifest (certificate outside)", lambda: env.write_manifests(
            instance(), certificate("main", outside), server_group("web", [be.addr]),
            https_listener("web", port, "main", "web", idleTimeoutSeconds=timeout)))
    unstatted = metrics(albd).get('albd_last_reconcile_files{how="unchanged_without_stat"}', 0)
    c.ok(unstatted >= 2, "the certificate files outside were taken without a stat (their folder "
         "is watched)", ">= 2", unstatted)
    v6b = certs.issue("v6b", ["albd.test", "localhost"])

    def in_place_outside():
        for src, dst in ((v6b.key, outside.key), (v6b.cert, outside.cert)):
            with open(src, "rb") as fsrc, open(dst, "r+b") as fdst:
                data = fsrc.read()
                fdst.truncate(0)
                fdst.write(data)
    time.sleep(scaled(0.3))
    reconciled("certificate files rewritten in place outside the manifest folder", in_place_outside,
               serves=v6b.cert)
    c.eq(served_fp(), der_sha256(v6b.cert),
         "a new handshake sees the certificate rewritten in place outside the folder")

    def replace_outside():
        for src, dst in ((v7.key, outside.key), (v7.cert, outside.cert)):
            shutil.copy(src, dst + ".tmp")
            os.replace(dst + ".tmp", dst)
    time.sleep(scaled(0.3))
    reconciled("certificate files replaced outside the manifest folder (no SIGHUP)", replace_outside,
               serves=v7.cert)
    c.eq(served_fp(), der_sha256(v7.cert), "a new handshake sees the replaced certificate")

    # certbot: live/NAME/{fullchain,privkey}.pem -> ../../archive/NAME/{...}N.pem
    le = os.path.join(env.dir, "letsencrypt")
    live, archive = os.path.join(le, "live", "albd.test"), os.path.join(le, "archive", "albd.test")
    os.makedirs(live)
    os.makedirs(archive)

    def certbot_issue(pair, n):
        shutil.copy(pair.cert, os.path.join(archive, f"fullchain{n}.pem"))
        shutil.copy(pair.key, os.path.join(archive, f"privkey{n}.pem"))
        for name in ("fullchain", "privkey"):
            link = os.path.join(live, f"{name}.pem")
            os.symlink(os.path.join("..", "..", "archive", "albd.test", f"{name}{n}.pem"), link + ".new")
            os.replace(link + ".new", link)
    certbot_issue(v8, 1)
    le_pair = CertPair(os.path.join(live, "fullchain.pem"), os.path.join(live, "privkey.pem"))
    reconciled("a certbot live/ certificate", lambda: env.write_manifests(
        instance(), certificate("main", le_pair), server_group("web", [be.addr]),
        https_listener("web", port, "main", "web", idleTimeoutSeconds=62)))
    c.eq(served_fp(), der_sha256(v8.cert), "the certbot certificate is served")
    time.sleep(scaled(0.3))
    reconciled("a certbot renewal (new archive files, live/ links re-pointed; no SIGHUP)",
               lambda: certbot_issue(v9, 2), serves=v9.cert)
    c.eq(served_fp(), der_sha256(v9.cert), "a new handshake sees the renewed certificate")
    albd.check_clean_exit(c)


run("tls_reloads_certificates", body)
