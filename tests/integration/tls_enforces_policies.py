#!/usr/bin/env python3
"""Each system TLS policy (and a custom one) accepts exactly its TLS
versions, refuses ciphers it does not list, and renegotiation is refused.
TLS 1.0/1.1 really work where a policy names them (OpenSSL 3 hides them
behind security level 0, so the client asks with @SECLEVEL=0 too). Where
s_client would refuse by itself (a TLS 1.0 hello with only a TLS 1.2 suite,
compression) the ClientHello is built by hand, so only albd can refuse."""
import os
import re
import socket
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (certificate, doc, free_ports, https_listener, instance, run, s_client,  # noqa: E402
                          s_client_ok, server_group)

VERSIONS = {  # s_client flag -> name in its transcript
    "-tls1": "TLSv1",  # s_client's name for TLS 1.0
    "-tls1_1": "TLSv1.1",
    "-tls1_2": "TLSv1.2",
    "-tls1_3": "TLSv1.3",
}
POLICIES = {  # policy -> the versions it accepts (reference alb-api.md 5.1)
    "tls_cipher_policy_1_0": {"-tls1", "-tls1_1", "-tls1_2"},
    "tls_cipher_policy_1_1": {"-tls1_1", "-tls1_2"},
    "tls_cipher_policy_1_2": {"-tls1_2"},
    "tls_cipher_policy_1_2_strict": {"-tls1_2"},
    "tls_cipher_policy_1_2_strict_with_1_3": {"-tls1_2", "-tls1_3"},
    "modern": {"-tls1_2", "-tls1_3"},
}
LOW = "DEFAULT:@SECLEVEL=0"


def handshake(port, *args):
    """(completed, protocol, cipher) of one s_client handshake."""
    rc, out = s_client(port, "-servername", "albd.test", *args)
    # "Protocol :" is the negotiated version (absent in TLS 1.3 when no
    # ticket arrived before EOF); "New, X, Cipher is" names the cipher's
    # version, which is TLSv1.3 only for TLS 1.3 suites.
    proto = re.search(r"^\s*Protocol\s*:\s*(\S+)", out, re.M) or re.search(r"New, (TLSv1\.3), Cipher is", out)
    cipher = re.search(r"Cipher is (\S+)", out)
    return s_client_ok(out), proto and proto.group(1), cipher and cipher.group(1)


def client_hello(version, ciphers, compression=(0,), host="albd.test"):
    """A ClientHello record built by hand, so the client offers exactly what
    the test says (OpenSSL's s_client leaves out of a TLS 1.0 hello every
    suite TLS 1.0 cannot use, and never offers compression): version
    0x0301/0x0303, cipher suite numbers, compression method numbers."""
    def ext(kind, data):
        return struct.pack(">HH", kind, len(data)) + data
    name = host.encode()
    exts = ext(0, struct.pack(">HBH", len(name) + 3, 0, len(name)) + name)  # server_name
    exts += ext(10, struct.pack(">HHH", 4, 0x001d, 0x0017))  # supported_groups: x25519, P-256
    exts += ext(11, bytes([1, 0]))  # ec_point_formats: uncompressed
    exts += ext(13, struct.pack(">HHHH", 6, 0x0804, 0x0401, 0x0403))  # signature_algorithms
    exts += ext(0xff01, b"\x00")  # renegotiation_info (empty)
    suites = b"".join(struct.pack(">H", c) for c in ciphers)
    hello = (struct.pack(">H", version) + os.urandom(32) + b"\x00" + struct.pack(">H", len(suites)) + suites
             + bytes([len(compression), *compression]) + struct.pack(">H", len(exts)) + exts)
    hs = b"\x01" + len(hello).to_bytes(3, "big") + hello
    return b"\x16\x03\x01" + struct.pack(">H", len(hs)) + hs


def raw_hello(port, record, timeout=10.0):
    """Sends a hand-built ClientHello; what albd answered: ("hello",
    version, cipher, compression) for a ServerHello, ("alert", description)
    for an alert, ("closed",) for a close without either."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(record)
        buf = b""
        while True:
            while len(buf) < 5 or len(buf) < 5 + int.from_bytes(buf[3:5], "big"):
                try:
                    b = s.recv(65536)
                except (ConnectionResetError, socket.timeout, TimeoutError):
                    b = b""
                if not b:
                    return ("closed",)
                buf += b
            kind, body_ = buf[0], buf[5:5 + int.from_bytes(buf[3:5], "big")]
            if kind == 21:
                return ("alert", body_[1])
            if kind == 22 and body_[0] == 2:  # ServerHello
                h = body_[4:]
                sid = h[34]
                cipher = int.from_bytes(h[35 + sid:37 + sid], "big")
                return ("hello", int.from_bytes(h[:2], "big"), cipher, h[37 + sid])
            buf = buf[5 + len(body_):]


TLS10, TLS12 = 0x0301, 0x0303
AES128_GCM_SHA256, ECDHE_RSA_AES128_SHA, ECDHE_RSA_AES128_GCM_SHA256 = 0x009C, 0xC013, 0xC02F
HANDSHAKE_FAILURE, DECODE_ERROR = 40, 50


def body(env):
    c = env.check
    certs = env.certs()
    be = env.backend("a")
    ports = dict(zip(POLICIES, free_ports(len(POLICIES))))
    listeners = [https_listener(f"l{i}", ports[p], "main", "web",
                                tls={"certificate": "main", "policy": p}) for i, p in enumerate(POLICIES)]
    env.write_manifests(
        instance(),
        certificate("main", certs.rsa),
        doc("TLSPolicy", "modern", {"tlsVersions": ["TLSv1.2", "TLSv1.3"],
                                    "ciphers": ["ECDHE-RSA-AES128-GCM-SHA256", "TLS_AES_128_GCM_SHA256"]}),
        server_group("web", [be.addr]),
        *listeners)
    albd = env.start_albd(ports=tuple(ports.values()))

    # Versions: accepted exactly as the policy says, and really negotiated.
    for pol, accepted in POLICIES.items():
        for flag, name in VERSIONS.items():
            extra = ["-cipher", LOW] if flag in ("-tls1", "-tls1_1") else []
            ok, proto, _ = handshake(ports[pol], flag, *extra)
            if flag in accepted:
                c.eq((ok, proto), (True, name), f"{pol}: {name} accepted")
            else:
                c.eq(ok, False, f"{pol}: {name} refused")

    # Ciphers outside the policy are refused, those inside accepted.
    p12, strict, strict13, p10 = (ports["tls_cipher_policy_1_2"], ports["tls_cipher_policy_1_2_strict"],
                                  ports["tls_cipher_policy_1_2_strict_with_1_3"], ports["tls_cipher_policy_1_0"])
    c.eq(handshake(p12, "-tls1_2", "-cipher", "AES128-GCM-SHA256")[:1], (True,),
         "tls_cipher_policy_1_2: AES128-GCM-SHA256 (no forward secrecy) accepted")
    c.eq(handshake(strict, "-tls1_2", "-cipher", "AES128-GCM-SHA256")[:1], (False,),
         "tls_cipher_policy_1_2_strict: AES128-GCM-SHA256 refused")
    c.eq(handshake(strict, "-tls1_2", "-cipher", "ECDHE-RSA-AES256-SHA")[2], "ECDHE-RSA-AES256-SHA",
         "tls_cipher_policy_1_2_strict: ECDHE-RSA-AES256-SHA accepted")
    for port, pol in ((p12, "tls_cipher_policy_1_2"), (p10, "tls_cipher_policy_1_0"), (strict13, "strict_with_1_3")):
        c.eq(handshake(port, "-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305")[0],
             False, f"{pol}: DHE and CHACHA20 suites (in no policy) refused")
    c.eq(handshake(p10, "-tls1", "-cipher", "ECDHE-RSA-AES128-SHA:@SECLEVEL=0")[1:], ("TLSv1", "ECDHE-RSA-AES128-SHA"),
         "tls_cipher_policy_1_0: TLS 1.0 with ECDHE-RSA-AES128-SHA")
    # A TLS 1.0 hello offering only a TLS 1.2 suite: s_client would not
    # even send it, so the hello is built by hand and only albd can refuse.
    # The same hello with a TLS 1.0 suite is accepted (the control).
    c.eq(raw_hello(p10, client_hello(TLS10, [ECDHE_RSA_AES128_SHA])), ("hello", TLS10, ECDHE_RSA_AES128_SHA, 0),
         "tls_cipher_policy_1_0: a hand-built TLS 1.0 hello with ECDHE-RSA-AES128-SHA gets a ServerHello")
    c.eq(raw_hello(p10, client_hello(TLS12, [AES128_GCM_SHA256])), ("hello", TLS12, AES128_GCM_SHA256, 0),
         "tls_cipher_policy_1_0: the same suite in a TLS 1.2 hello gets a ServerHello")
    c.eq(raw_hello(p10, client_hello(TLS10, [AES128_GCM_SHA256])), ("alert", HANDSHAKE_FAILURE),
         "tls_cipher_policy_1_0: a TLS 1.0 hello offering only a TLS 1.2 suite (AES128-GCM-SHA256) "
         "is refused by albd (handshake_failure alert)")
    c.eq(handshake(strict13, "-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256")[1:],
         ("TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256"), "strict_with_1_3: TLS_CHACHA20_POLY1305_SHA256 accepted")
    modern = ports["modern"]
    c.eq(handshake(modern, "-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256")[2], "TLS_AES_128_GCM_SHA256",
         "custom policy: its TLS 1.3 suite accepted")
    c.eq(handshake(modern, "-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256")[0],
         False, "custom policy: TLS 1.3 suites it does not list refused")
    c.eq(handshake(modern, "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256")[2], "ECDHE-RSA-AES128-GCM-SHA256",
         "custom policy: its TLS 1.2 cipher accepted")
    c.eq(handshake(modern, "-tls1_2", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384:AES128-GCM-SHA256")[0], False,
         "custom policy: TLS 1.2 ciphers it does not list refused")

    # Renegotiation: the client asks ("R"), albd refuses.
    rc, out = s_client(p10, "-servername", "albd.test", "-tls1_2", data=b"R\n")
    c.ok("RENEGOTIATING" in out and "no renegotiation" in out, "a client-initiated renegotiation is refused",
         "RENEGOTIATING ... no renegotiation", out[-400:])
    # Compression: a hand-built hello offers DEFLATE (1) before null (0);
    # albd must pick null. Offering DEFLATE alone is refused.
    c.eq(raw_hello(p10, client_hello(TLS12, [ECDHE_RSA_AES128_GCM_SHA256], compression=(1, 0))),
         ("hello", TLS12, ECDHE_RSA_AES128_GCM_SHA256, 0), "TLS compression is off: offered DEFLATE, albd picks null")
    got = raw_hello(p10, client_hello(TLS12, [ECDHE_RSA_AES128_GCM_SHA256], compression=(1,)))
    c.eq(got, ("alert", DECODE_ERROR), "a hello offering only DEFLATE compression is refused (decode_error alert)")

    # The listeners still serve HTTP after all that.
    code, _, _ = env.curl(env.url(strict13, "/after"))
    c.eq(code, 200, "a normal client still gets 200")
    albd.check_clean_exit(c)


run("tls_enforces_policies", body)
