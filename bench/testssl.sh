#!/usr/bin/env bash
# TLS audit with testssl (Debian package testssl.sh): starts albd on
# loopback with two HTTPS listeners — one on tls_cipher_policy_1_2, one on
# tls_cipher_policy_1_2_strict_with_1_3 — each with an RSA and an ECDSA
# certificate for the same name (so every suite of a policy can be offered),
# and runs testssl against both: protocols (-p), ciphers per protocol (-E),
# server defaults incl. the session ticket lifetime hint (-S),
# renegotiation (-R) and compression / CRIME (-C).
#
#   bench/testssl.sh <albd-binary>
#
# TESTSSL_OUT=DIR keeps the full reports there (default: a temp dir that is
# removed). Prints a short summary per listener. Loopback only; every
# process started here is stopped by its PID on exit.
set -euo pipefail

BENCH_NAME=testssl.sh
source "$(dirname "$0")/lib.sh"
bench_usage "$@"
bench_require testssl openssl python3

bench_tmp albd-testssl
OUT=${TESTSSL_OUT:-$TMP/reports}
mkdir -p "$OUT"
read -r P_BACKEND P_12 P_13 P_ADMIN < <(free_ports 4)

HOST=albd.test
M="$TMP/manifests"
mkdir -p "$M"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$M/rsa.key" -out "$M/rsa.pem" -days 2 \
  -subj "/CN=$HOST" -addext "subjectAltName=DNS:$HOST" -addext "basicConstraints=critical,CA:FALSE" \
  2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$M/ec.key" \
  -out "$M/ec.pem" -days 2 -subj "/CN=$HOST" -addext "subjectAltName=DNS:$HOST" \
  -addext "basicConstraints=critical,CA:FALSE" 2>/dev/null
chmod 600 "$M"/*.key

listener() { # name port policy
  cat <<YAML
---
apiVersion: albd/v1
kind: Listener
metadata: {name: $1}
spec:
  instance: audit
  protocol: HTTPS
  port: $2
  http2: false
  tls: {certificate: rsa, extensionCertificates: [ec], policy: $3}
  defaultAction: {forward: {serverGroup: web}}
YAML
}
{
  cat <<YAML
apiVersion: albd/v1
kind: Instance
metadata: {name: audit}
spec: {addresses: ["127.0.0.1"]}
---
apiVersion: albd/v1
kind: Certificate
metadata: {name: rsa}
spec: {source: {files: {certificate: rsa.pem, privateKey: rsa.key}}}
---
apiVersion: albd/v1
kind: Certificate
metadata: {name: ec}
spec: {source: {files: {certificate: ec.pem, privateKey: ec.key}}}
---
apiVersion: albd/v1
kind: ServerGroup
metadata: {name: web}
spec:
  servers: [{address: 127.0.0.1, port: $P_BACKEND}]
  healthCheck: {enabled: false}
YAML
  listener policy-1-2 "$P_12" tls_cipher_policy_1_2
  listener policy-1-2-strict-1-3 "$P_13" tls_cipher_policy_1_2_strict_with_1_3
} >"$M/albd.yaml"

mkdir -p "$TMP/www"
echo ok >"$TMP/www/index.html"
python3 -m http.server "$P_BACKEND" --bind 127.0.0.1 --directory "$TMP/www" >/dev/null 2>&1 &
PIDS+=($!)
"$ALBD" run -m "$M" --admin "127.0.0.1:$P_ADMIN" --workers 1 2>"$TMP/albd.stderr" &
PIDS+=($!)
for _ in $(seq 100); do
  if curl -sf -o /dev/null "http://127.0.0.1:$P_ADMIN/readyz"; then break; fi
  sleep 0.1
done
curl -sf -o /dev/null "http://127.0.0.1:$P_ADMIN/readyz" || {
  echo "testssl.sh: albd did not become ready" >&2
  cat "$TMP/albd.stderr" >&2
  exit 1
}

summary() { # report-file
  local f=$1
  echo "  protocols:"
  grep -E '^ (SSLv2|SSLv3|TLS 1(\.[0-3])?|NPN/SPDY|ALPN/HTTP2) ' "$f" | sed 's/^ */    /'
  echo "  ciphers per protocol (testssl -E):"
  awk '/^(SSLv2|SSLv3|TLS 1(\.[0-3])?) *$/ {sub(/ +$/, ""); p = $0; order[++n] = p; next}
       p != "" && /^ x[0-9a-f]+ / {list[p] = list[p] " " $2; count[p]++}
       END {for (i = 1; i <= n; i++)
              printf "    %-8s %2d:%s\n", order[i], count[order[i]], (count[order[i]] ? list[order[i]] : " none")}' "$f"
  echo "  server defaults / vulnerabilities:"
  grep -E 'Session Ticket RFC 5077|Session Resumption|Secure Renegotiation|Secure Client-Initiated|CRIME' \
    "$f" | sed 's/^ */    /'
}

status=0
for pair in "tls_cipher_policy_1_2:$P_12" "tls_cipher_policy_1_2_strict_with_1_3:$P_13"; do
  pol=${pair%%:*}
  port=${pair##*:}
  report="$OUT/$pol.txt"
  echo "== $pol (127.0.0.1:$port, SNI $HOST)"
  testssl --quiet --color 0 --warnings off --sneaky -p -E -S -R -C \
    --ip 127.0.0.1 "$HOST:$port" >"$report" 2>&1 || true
  if ! grep -q 'Testing protocols' "$report"; then
    echo "testssl.sh: testssl failed for $pol (see $report)" >&2
    status=1
    tail -20 "$report" >&2
    continue
  fi
  summary "$report"
done
[[ -n "${TESTSSL_OUT:-}" ]] && echo "full reports in $OUT"
exit $status
