#!/usr/bin/env python3
"""/metrics read by a parser of the Prometheus text exposition format
(0.0.4): every sample belongs to a family declared once with # HELP and
# TYPE before it; metric and label names are legal; no series twice;
counters end in _total; histograms have cumulative buckets ending in
le="+Inf" equal to _count, and _sum. Then the values after known traffic:
per-listener requests, responses by class and albd's reasons, body bytes,
the request-duration histogram, active connections; TLS handshakes by
version and failures by reason and version; upstream responses, connect
failures and response duration per server, retries and duration per
group; albd_build_info, process_*,
config generation, last successful reconcile time, the access-log
counters. Label values stay within the configured names."""
import calendar
import os
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from albd_harness import (certificate, free_ports, http_listener, https_listener, instance, run,  # noqa: E402
                          scaled, server_group)

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def parse_labels(s, i):
    """Parse {a="b",...} starting at s[i] == '{'; returns (dict, index after '}')."""
    labels = {}
    i += 1
    while True:
        if s[i] == "}":
            return labels, i + 1
        m = LABEL.match(s, i)
        if not m:
            raise ValueError(f"bad label name at {s[i:i + 20]!r}")
        name = m.group(0)
        i = m.end()
        if s[i:i + 2] != '="':
            raise ValueError(f"expected =\" after {name}")
        i += 2
        val = []
        while s[i] != '"':
            if s[i] == "\\":
                nxt = s[i + 1]
                if nxt not in '\\"n':
                    raise ValueError(f"bad escape \\{nxt}")
                val.append("\n" if nxt == "n" else nxt)
                i += 2
            else:
                val.append(s[i])
                i += 1
        i += 1
        if name in labels:
            raise ValueError(f"label {name} twice")
        labels[name] = "".join(val)
        if s[i] == ",":
            i += 1


def parse(text):
    """Families {name: {type, help, samples: [(sample_name, labels, value)]}}; raises on a violation."""
    fams = {}
    seen = set()
    if not text.endswith("\n"):
        raise ValueError("the exposition does not end with a newline")
    for ln in text.split("\n")[:-1]:
        if ln.startswith("# HELP ") or ln.startswith("# TYPE "):
            kind, rest = ln[2:6], ln[7:]
            name, _, arg = rest.partition(" ")
            if not NAME.fullmatch(name):
                raise ValueError(f"bad metric name {name!r}")
            f = fams.setdefault(name, {"type": None, "help": None, "samples": []})
            key = "help" if kind == "HELP" else "type"
            if f[key] is not None:
                raise ValueError(f"# {kind} {name} twice")
            if f["samples"]:
                raise ValueError(f"# {kind} {name} after its samples")
            if key == "type" and arg not in TYPES:
                raise ValueError(f"bad type {arg!r} for {name}")
            f[key] = arg
            continue
        if ln.startswith("#") or not ln:
            continue
        m = NAME.match(ln)
        if not m:
            raise ValueError(f"bad sample line {ln!r}")
        sname = m.group(0)
        i = m.end()
        labels = {}
        if i < len(ln) and ln[i] == "{":
            labels, i = parse_labels(ln, i)
        if ln[i] != " ":
            raise ValueError(f"no value in {ln!r}")
        value = float(ln[i + 1:].split(" ")[0])
        fam = sname
        for suf in ("_bucket", "_sum", "_count"):
            if sname.endswith(suf) and sname[:-len(suf)] in fams and fams[sname[:-len(suf)]]["type"] == "histogram":
                fam = sname[:-len(suf)]
        if fam not in fams or fams[fam]["type"] is None:
            raise ValueError(f"sample {sname} without a # TYPE before it")
        key = (sname, tuple(sorted(labels.items())))
        if key in seen:
            raise ValueError(f"series twice: {key}")
        seen.add(key)
        fams[fam]["samples"].append((sname, labels, value))
    return fams


def check_histograms(fams):
    bad = []
    for name, f in fams.items():
        if f["type"] != "histogram":
            continue
        groups = {}
        for sname, labels, v in f["samples"]:
            base = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
            g = groups.setdefault(base, {"buckets": [], "sum": None, "count": None})
            if sname == name + "_bucket":
                g["buckets"].append((float(labels["le"]), v))
            elif sname == name + "_sum":
                g["sum"] = v
            elif sname == name + "_count":
                g["count"] = v
        for base, g in groups.items():
            b = g["buckets"]
            ok = (b and b[-1][0] == float("inf") and [x for x, _ in b] == sorted(x for x, _ in b)
                  and all(b[i][1] <= b[i + 1][1] for i in range(len(b) - 1))
                  and g["count"] == b[-1][1] and g["sum"] is not None)
            if not ok:
                bad.append((name, base))
    return bad


def value(fams, name, **labels):
    fam = name
    for suf in ("_bucket", "_sum", "_count"):
        if name.endswith(suf) and name[:-len(suf)] in fams:
            fam = name[:-len(suf)]
    for sname, lb, v in fams.get(fam, {"samples": []})["samples"]:
        if sname == name and lb == labels:
            return v
    return None


def body(env):
    c = env.check
    certs = env.certs()
    be = env.backend("be")
    p_web, p_tls, p_dead, dead1 = free_ports(4)
    env.write_manifests(
        instance(), certificate("rsa", certs.rsa),
        server_group("web", [be.addr]),
        server_group("dead", [("127.0.0.1", dead1)]),
        http_listener("web", p_web, "web", requestTimeoutSeconds=1),
        https_listener("tls", p_tls, "rsa", "web"),
        http_listener("deadl", p_dead, "dead"))
    albd = env.start_albd(ports=(p_web, p_tls, p_dead))

    sent_out = 0
    for i in range(3):
        st, _, b = env.http("POST", p_web, f"/ok{i}", body=b"y" * 100)
        sent_out += len(b)
        c.eq(st, 200, f"request {i} answers 200")
    st, _, b = env.http("GET", p_web, "/nf?status=404")
    sent_out += len(b)
    st405, _, b = env.http("TRACE", p_web, "/t")
    sent_out += len(b)
    st504, _, b = env.http("GET", p_web, "/slow?delay=2.5")
    sent_out += len(b)
    c.eq((st, st405, st504), (404, 405, 504), "404 from the backend, 405 and 504 from albd")
    st502, _, _ = env.http("GET", p_dead, "/d")
    c.eq(st502, 502, "the dead group answers 502")
    st, _, _ = env.https("GET", p_tls, "/tls")
    c.eq(st, 200, "an HTTPS request answers 200")
    # Plain HTTP to the HTTPS port: a handshake failure by reason.
    s = socket.create_connection(("127.0.0.1", p_tls), timeout=scaled(5))
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        s.recv(4096)
    except OSError:
        pass
    s.close()
    # TLS 1.0, which the default policy refuses.
    subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{p_tls}", "-tls1", "-cipher", "DEFAULT@SECLEVEL=0"],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=scaled(10))
    # TLS 1.2 with only a NULL cipher: the version is negotiated, then no
    # cipher is shared.
    subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{p_tls}", "-tls1_2", "-cipher",
                    "NULL-SHA256:@SECLEVEL=0"],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=scaled(10))
    # One keep-alive connection stays open while we scrape.
    held = env.connection(p_web, tls=False)
    held.request("GET", "/held")
    held.getresponse().read()
    time.sleep(0.3)

    st, raw = albd.admin_get("/metrics")
    c.eq(st, 200, "/metrics answers 200")
    text = raw.decode()
    try:
        fams = parse(text)
        c.ok(True, "the exposition parses (HELP/TYPE once, before samples; legal names; no series twice)")
    except ValueError as ex:
        c.ok(False, "the exposition parses (HELP/TYPE once, before samples; legal names; no series twice)", None,
             str(ex))
        fams = {}
    held.close()
    bad_counters = [n for n, f in fams.items() if f["type"] == "counter" and not n.endswith("_total")]
    c.eq(bad_counters, [], "every counter's name ends in _total")
    c.eq(check_histograms(fams), [], "histograms: sorted cumulative buckets, +Inf equals _count, _sum present")
    c.eq([n for n, f in fams.items() if not f["help"]], [], "every family has # HELP")

    c.eq(value(fams, "albd_http_requests_total", listener="web"), 7.0, "requests per listener (web: 7)")
    c.eq(value(fams, "albd_http_requests_total", listener="deadl"), 1.0, "requests per listener (deadl: 1)")
    c.eq([value(fams, "albd_http_responses_total", listener="web", code=k) for k in ("2xx", "4xx", "5xx")],
         [4.0, 2.0, 1.0], "responses by class on web")
    c.eq(value(fams, "albd_http_albd_answered_total", listener="web", reason="timeout"), 1.0, "504 counted as timeout")
    c.eq(value(fams, "albd_http_albd_answered_total", listener="web", reason="refused_request"), 1.0,
         "405 counted as refused_request")
    c.eq(value(fams, "albd_http_albd_answered_total", listener="deadl", reason="upstream_error"), 1.0,
         "502 counted as upstream_error")
    c.eq(value(fams, "albd_http_request_body_bytes_total", listener="web"), 300.0, "request body bytes")
    c.ok((value(fams, "albd_http_response_body_bytes_total", listener="web") or 0) >= sent_out,
         "response body bytes cover what the clients read", f">= {sent_out}",
         value(fams, "albd_http_response_body_bytes_total", listener="web"))
    c.eq(value(fams, "albd_http_request_duration_seconds_count", listener="web"), 7.0, "duration histogram count")
    c.ok((value(fams, "albd_http_request_duration_seconds_bucket", listener="web", le="0.5") or 0) <= 6.0,
         "the slow request is above 0.5 s in the histogram")
    c.eq(value(fams, "albd_listener_connections_active", listener="web"), 1.0, "one connection open on web")
    hs = {v: value(fams, "albd_tls_handshakes_total", listener="tls", version=v)
          for v in ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")}
    c.eq(sorted(hs.values()), [0.0, 0.0, 0.0, 1.0], "one TLS handshake, under its version", )
    c.eq(value(fams, "albd_tls_handshake_failures_total", listener="tls", reason="http_request", version="unknown"),
         1.0, "plain HTTP on the HTTPS port counted as http_request, version unknown (no ClientHello)")
    c.eq(value(fams, "albd_tls_handshake_failures_total", listener="tls", reason="protocol_version", version="TLSv1"),
         1.0, "a TLS 1.0 client counted as protocol_version under version TLSv1")
    c.eq(value(fams, "albd_tls_handshake_failures_total", listener="tls", reason="no_shared_cipher",
               version="TLSv1.2"), 1.0, "a TLS 1.2 client without a shared cipher counted under version TLSv1.2")
    fails = {(lb.get("reason"), lb.get("version")): v
             for _, lb, v in fams.get("albd_tls_handshake_failures_total", {"samples": []})["samples"]
             if lb.get("listener") == "tls"}
    c.eq(sorted(k for k, v in fails.items() if v), [("http_request", "unknown"), ("no_shared_cipher", "TLSv1.2"),
                                                   ("protocol_version", "TLSv1")],
         "TLS failures are counted once each, by reason and version")
    c.eq({v for _, v in fails}, {"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3", "unknown"},
         "the version label of TLS failures is bounded: the four versions and unknown")
    c.eq(value(fams, "albd_upstream_responses_total", server_group="web", server=f"127.0.0.1:{be.port}"), 6.0,
         "backend responses per server (504 had none)")
    c.eq(value(fams, "albd_upstream_connect_failures_total", server_group="dead", server=f"127.0.0.1:{dead1}",
               reason="refused"), 1.0, "connect failure by reason per server")
    c.eq(value(fams, "albd_upstream_response_duration_seconds_count", server_group="web"), 6.0,
         "upstream duration histogram per group")
    c.eq(value(fams, "albd_upstream_server_response_duration_seconds_count", server_group="web",
               server=f"127.0.0.1:{be.port}"), 6.0, "upstream duration histogram per server")
    c.ok((value(fams, "albd_upstream_server_response_duration_seconds_bucket", server_group="web",
                server=f"127.0.0.1:{be.port}", le="0.5") or 0) >= 5.0,
         "the per-server histogram has the fast responses under 0.5 s", ">= 5",
         value(fams, "albd_upstream_server_response_duration_seconds_bucket", server_group="web",
               server=f"127.0.0.1:{be.port}", le="0.5"))
    c.eq(value(fams, "albd_upstream_server_response_duration_seconds_count", server_group="dead",
               server=f"127.0.0.1:{dead1}"), 0.0, "a server that never answered has an empty histogram")
    info = [lb for n, lb, v in fams.get("albd_build_info", {"samples": []})["samples"] if v == 1.0]
    c.ok(len(info) == 1 and set(info[0]) == {"version", "commit"} and info[0]["version"], "albd_build_info",
         None, info)
    for n in ("process_start_time_seconds", "process_cpu_seconds_total", "process_resident_memory_bytes",
              "process_open_fds"):
        c.ok((value(fams, n) or 0) > 0, f"{n} is reported", None, value(fams, n))
    c.ok(abs((value(fams, "process_start_time_seconds") or 0) - time.time()) < 600, "start time is recent")
    c.ok(abs((value(fams, "albd_last_successful_reconcile_timestamp_seconds") or 0) - time.time()) < 600,
         "last successful reconcile is recent")
    c.eq(value(fams, "albd_config_generation"), 1.0, "config generation")
    c.eq(albd.admin_head_generation("/healthz"), 1, "HEAD /healthz carries Albd-Generation, the same generation")
    mb = value(fams, "albd_config_model_bytes")
    c.ok(mb is not None and 16384 < mb < 16 << 20, "the running model's memory is reported (a few small "
         "resources: between 16 KiB and 16 MiB)", "16 KiB < x < 16 MiB", mb)
    out = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-dateopt", "iso_8601", "-in", certs.rsa.cert],
                         stdout=subprocess.PIPE, text=True).stdout.strip().split("=", 1)[-1]
    na = calendar.timegm(time.strptime(out, "%Y-%m-%d %H:%M:%SZ")) if out else None
    c.eq(value(fams, "albd_certificate_not_after_seconds", certificate="rsa"), float(na or -1),
         "certificate not-after gauge per certificate")
    c.eq(value(fams, "albd_access_log_dropped_total"), 0.0, "access log drops (none)")
    listeners = {lb.get("listener") for f in fams.values() for _, lb, _ in f["samples"] if "listener" in lb}
    c.eq(listeners, {"web", "tls", "deadl"}, "listener label values are the configured listeners only")
    groups = {lb.get("server_group") for f in fams.values() for _, lb, _ in f["samples"] if "server_group" in lb}
    c.eq(groups, {"web", "dead"}, "server_group label values are the configured groups only")

    c.ok(albd.alive(), "albd is still running")
    albd.check_clean_exit(c)


run("metrics_follow_prometheus_conventions", body)
