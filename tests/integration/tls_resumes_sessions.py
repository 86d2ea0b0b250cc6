#!/usr/bin/env python3
"""Session resumption by ticket, TLS 1.2 and 1.3: the lifetime hint is 300
s; a full TLS 1.3 handshake ends with one ticket (--session-tickets N: N),
a resumption with one; a ticket still resumes after a reconcile that
rebuilds the listener's TLS context (keys outlive configurations); two albd
processes that load the same --session-ticket-key file resume each other's
sessions, and one with another key does not."""
import os
import re
import socket
import ssl
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (Albd, certificate, free_ports, https_listener, instance, run,  # noqa: E402
                          s_client, s_client_ok, server_group)

REQUEST = b"GET /t HTTP/1.1\r\nHost: albd.test\r\nConnection: close\r\n\r\n"


def session(port, ver, path, resume=False):
    """One s_client connection that sends a request and reads to the end
    (so TLS 1.3 tickets arrive), saving (or resuming) its session at path.
    Returns (handshake completed, resumed, lifetime hint or None, text)."""
    args = ["-servername", "albd.test", ver, "-ign_eof", "-sess_in" if resume else "-sess_out", path]
    rc, out = s_client(port, *args, data=REQUEST)
    hint = re.findall(r"TLS session ticket lifetime hint: (\d+)", out)
    return s_client_ok(out), "Reused, " in out, (int(hint[-1]) if hint else None), out


def tls13_tickets(port, path=None):
    """One TLS 1.3 s_client connection (resuming the session at path, if
    given) that reads its response to the end. Returns (handshake
    completed, resumed, how many NewSessionTicket messages came)."""
    args = ["-servername", "albd.test", "-tls1_3", "-ign_eof", "-msg"]
    if path:
        args += ["-sess_in", path]
    rc, out = s_client(port, *args, data=REQUEST)
    return s_client_ok(out), "Reused, " in out, out.count(", NewSessionTicket")


def tls13_chain(port, n):
    """n TLS 1.3 connections, each resuming with the session the one before
    it ended with (as wrk, curl and browsers do: a TLS 1.3 ticket is used
    once). Returns [(resumed, session id)]: the client's session id is the
    SHA-256 of its ticket, so a new ticket means a new id."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    sess, out = None, []
    for _ in range(n):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            with ctx.wrap_socket(s, server_hostname="albd.test", session=sess) as t:
                t.sendall(REQUEST)
                try:
                    while t.recv(65536):  # to the end: the tickets come first
                        pass
                except (ssl.SSLError, OSError):
                    pass
                out.append((t.session_reused, t.session.id if t.session else b""))
                sess = t.session
    return out


def body(env):
    c = env.check
    certs = env.certs()
    be = env.backend("a")
    p1, p2, p3 = free_ports(3)
    keyfile = os.path.join(env.dir, "ticket.key")
    other_key = os.path.join(env.dir, "other.key")
    for path in (keyfile, other_key):
        with open(path, "wb") as f:
            f.write(os.urandom(80))
        os.chmod(path, 0o600)
    pol = "tls_cipher_policy_1_2_strict_with_1_3"

    def manifests(port, ext=()):
        return [instance(), certificate("main", certs.rsa), certificate("main-ec", certs.ecdsa),
                server_group("web", [be.addr]),
                https_listener("web", port, "main", "web",
                               tls={"certificate": "main", "policy": pol, "extensionCertificates": list(ext)})]

    env.write_manifests(*manifests(p1))
    a = env.start_albd(ports=(p1,), args=("--session-ticket-key", keyfile))
    sess = {}
    for ver in ("-tls1_2", "-tls1_3"):
        sess[ver] = os.path.join(env.dir, f"sess{ver}.pem")
        ok, reused, hint, out = session(p1, ver, sess[ver])
        c.eq((ok, reused), (True, False), f"{ver}: a full handshake")
        c.eq(hint, 300, f"{ver}: TLS session ticket lifetime hint: 300")
        ok, reused, _, out = session(p1, ver, sess[ver], resume=True)
        c.eq((ok, reused), (True, True), f"{ver}: the ticket resumes the session")
        if not reused:
            print(out[-1500:])

    # One ticket after a full TLS 1.3 handshake (OpenSSL's default is two),
    # one after a resumption.
    c.eq(tls13_tickets(p1), (True, False, 1), "TLSv1.3: a full handshake ends with one ticket")
    c.eq(tls13_tickets(p1, sess["-tls1_3"]), (True, True, 1),
         "TLSv1.3: a resumption ends with one new ticket")

    # Every TLS 1.3 resumption brings a new ticket: a client that uses each
    # ticket once then resumes every connection, not every other one.
    chain = tls13_chain(p1, 5)
    c.eq([r for r, _ in chain], [False, True, True, True, True],
         "TLSv1.3: five connections in a row, each with the last one's session: all but the "
         "first resumed")
    c.ok(all(chain[i][1] != chain[i - 1][1] for i in range(1, len(chain))),
         "TLSv1.3: each resumption brought a new ticket")

    # A reconcile that rebuilds the TLS context (one more certificate).
    gen = a.generation()
    env.write_manifests(*manifests(p1, ext=["main-ec"]))
    c.ok(a.wait_generation(gen) is not None, "the watcher applied the changed manifests")
    for ver in ("-tls1_2", "-tls1_3"):
        ok, reused, _, _ = session(p1, ver, sess[ver], resume=True)
        c.eq((ok, reused), (True, True), f"{ver}: a ticket from before the reconcile still resumes")

    # A fleet: a second albd with the same key file, a third with another.
    d2 = os.path.join(env.dir, "m2")
    d3 = os.path.join(env.dir, "m3")
    for d, port in ((d2, p2), (d3, p3)):
        os.makedirs(d)
        env.manifest_dir, saved = d, env.manifest_dir
        env.write_manifests(*manifests(port))
        env.manifest_dir = saved
    b = Albd(env, d2, ports=(p2,), args=("--session-ticket-key", keyfile, "--session-tickets", "3"))
    env.albds.append(b)
    b.wait_ready()
    x = Albd(env, d3, ports=(p3,), args=("--session-ticket-key", other_key))
    env.albds.append(x)
    x.wait_ready()
    c.eq(tls13_tickets(p2), (True, False, 3),
         "TLSv1.3: with --session-tickets 3 (and key files) a full handshake ends with three tickets")
    c.eq(tls13_tickets(p2, sess["-tls1_3"]), (True, True, 1),
         "TLSv1.3: ... and a resumption with one")
    for ver in ("-tls1_2", "-tls1_3"):
        ok, reused, _, _ = session(p2, ver, sess[ver], resume=True)
        c.eq((ok, reused), (True, True), f"{ver}: another albd with the same ticket key file resumes it")
        ok, reused, _, _ = session(p3, ver, sess[ver], resume=True)
        c.eq((ok, reused), (True, False), f"{ver}: an albd with another key makes a full handshake")
    for p in (a, b, x):
        p.check_clean_exit(c)


run("tls_resumes_sessions", body)
