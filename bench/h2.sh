#!/usr/bin/env bash
# HTTP/2 benchmark: albd vs nginx (`listen ... ssl http2`), each terminating
# TLS with the same certificate in front of the same backend (an nginx
# answering a fixed 200 over HTTP/1.1 keep-alive), same worker count, load
# from h2load in two shapes: 64 connections x 10 streams, and 4 connections
# x 100 streams.
#
#   bench/h2.sh <albd-binary>
#
# Reported per run: requests/s (h2load), p99 latency (computed from
# h2load's per-request --log-file), proxy CPU time per request
# (utime+stime of the proxy's process tree from /proc, before/after), peak
# RSS; then the albd/nginx ratios.
#
# Environment knobs (defaults in brackets):
#   BENCH_DURATION [10]  seconds per h2load run   BENCH_WORKERS [1] proxy workers
#   BENCH_THREADS  [1]   h2load threads           BENCH_OUT  also write the report here
# Loopback only; every process started here is stopped by its PID on exit.
set -euo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: $0 <albd-binary>" >&2
  exit 64
fi
ALBD=$(realpath "$1")
DURATION=${BENCH_DURATION:-10}
WORKERS=${BENCH_WORKERS:-1}
THREADS=${BENCH_THREADS:-1}
CLK_TCK=$(getconf CLK_TCK)

for tool in h2load nginx openssl curl python3; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (contrib/deps.sh --bench)" >&2; exit 1; }
done
[[ -x "$ALBD" ]] || { echo "bench: $ALBD is not executable" >&2; exit 1; }

TMP=$(mktemp -d /tmp/albd-bench-h2.XXXXXX)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do
    kill -TERM "$p" 2>/dev/null || true
  done
  sleep 0.5
  for p in "${PIDS[@]}"; do
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r P_BACKEND P_NGINX P_ALBD P_ADMIN < <(python3 - <<'PY'
import socket
s = [socket.socket() for _ in range(4)]
for x in s:
    x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])
PY
)

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -keyout "$TMP/cert.key" -out "$TMP/cert.pem" -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -addext "basicConstraints=critical,CA:FALSE" -addext "extendedKeyUsage=serverAuth" 2>/dev/null
chmod 600 "$TMP/cert.key"

nginx_common() {
  cat <<CONF
daemon off;
master_process on;
error_log stderr warn;
pid $1/nginx.pid;
events { worker_connections 4096; }
CONF
}
temp_paths() {
  echo "client_body_temp_path $1/cb; proxy_temp_path $1/px; fastcgi_temp_path $1/fc;"
  echo "uwsgi_temp_path $1/uw; scgi_temp_path $1/sc;"
}

mkdir -p "$TMP/backend" "$TMP/nginx" "$TMP/albd"
{
  nginx_common "$TMP/backend"
  cat <<CONF
worker_processes 1;
http {
  access_log off;
  $(temp_paths "$TMP/backend")
  keepalive_requests 100000000;
  server {
    listen 127.0.0.1:$P_BACKEND backlog=4096;
    location / { return 200 "hello from the benchmark backend\n"; }
  }
}
CONF
} > "$TMP/backend/nginx.conf"

# nginx: HTTP/2 with the same limits albd advertises (128 streams).
{
  nginx_common "$TMP/nginx"
  cat <<CONF
worker_processes $WORKERS;
http {
  access_log off;
  $(temp_paths "$TMP/nginx")
  keepalive_requests 100000000;
  keepalive_timeout 60s;
  http2_max_concurrent_streams 128;
  upstream backend {
    server 127.0.0.1:$P_BACKEND;
    keepalive 512; # the same idle cap as albd (PX_UPSTREAM_IDLE_MAX)
  }
  server {
    listen 127.0.0.1:$P_NGINX ssl http2;
    ssl_certificate $TMP/cert.pem;
    ssl_certificate_key $TMP/cert.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$http_host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
  }
}
CONF
} > "$TMP/nginx/nginx.conf"

cat > "$TMP/albd/bench.yaml" <<CONF
apiVersion: albd/v1
kind: Instance
metadata:
  name: bench
spec:
  addresses:
    - "127.0.0.1"
---
apiVersion: albd/v1
kind: Certificate
metadata:
  name: bench
spec:
  source:
    files:
      certificate: $TMP/cert.pem
      privateKey: $TMP/cert.key
---
apiVersion: albd/v1
kind: ServerGroup
metadata:
  name: backend
spec:
  servers:
    - address: "127.0.0.1"
      port: $P_BACKEND
  healthCheck:
    enabled: false
  upstreamKeepalive: true
---
apiVersion: albd/v1
kind: Listener
metadata:
  name: bench
spec:
  instance: bench
  protocol: HTTPS
  port: $P_ALBD
  http2: true
  idleTimeoutSeconds: 60
  compression:
    gzip: false
    brotli: false
  xForwardedFor:
    mode: Append
  tls:
    certificate: bench
    policy: tls_cipher_policy_1_2
  defaultAction:
    forward:
      serverGroup: backend
CONF

wait_http() { # url seconds
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    if curl -sk -o /dev/null --max-time 1 "$1"; then return 0; fi
    sleep 0.1
  done
  echo "bench: $1 did not answer within $2 s" >&2
  return 1
}
tree_pids() {
  local p=$1 c
  echo "$p"
  for c in $(pgrep -P "$p" 2>/dev/null || true); do tree_pids "$c"; done
}
cpu_ticks() {
  local sum=0 p t
  for p in $(tree_pids "$1"); do
    t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || echo 0)
    sum=$((sum + t))
  done
  echo "$sum"
}
peak_rss() {
  local sum=0 p v
  for p in $(tree_pids "$1"); do
    v=$(awk '/^VmHWM:/ { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0)
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}

RESULTS=()
# run_h2load name pid url connections streams
run_h2load() {
  local name=$1 pid=$2 url=$3 c=$4 m=$5
  h2load -t"$THREADS" -c"$c" -m"$m" -D 2 "$url" >/dev/null 2>&1 || true # warm up
  local t0 t1 out reqs rps p99 ticks cpu_us rss fails
  rm -f "$TMP/h2load.log"
  t0=$(cpu_ticks "$pid")
  out=$(h2load -t"$THREADS" -c"$c" -m"$m" -D "$DURATION" --log-file="$TMP/h2load.log" "$url")
  t1=$(cpu_ticks "$pid")
  reqs=$(awk '/^requests:/ { print $8 }' <<<"$out")   # succeeded
  fails=$(awk '/^requests:/ { print $10 "+" $12 }' <<<"$out")
  rps=$(awk '/^finished in/ { gsub(",", "", $4); print $4 }' <<<"$out")
  # --log-file: "<start us>\t<status>\t<duration us>" per request.
  p99=$(awk -F'\t' '{ print $3 }' "$TMP/h2load.log" | sort -n |
        awk '{ v[NR] = $1 } END { if (NR) { i = int(NR * 0.99); if (i < 1) i = 1; printf "%.2f", v[i] / 1000 } else print "n/a" }')
  ticks=$((t1 - t0))
  cpu_us=$(awk -v t="$ticks" -v h="$CLK_TCK" -v r="${reqs:-0}" 'BEGIN { printf "%.1f", (r > 0 ? t / h / r * 1e6 : 0) }')
  rss=$(peak_rss "$pid")
  RESULTS+=("$name|$rps|$p99|$cpu_us|$((rss / 1024))|$fails")
  echo "  $name: $rps req/s, p99 $p99 ms, $cpu_us us CPU/request, peak RSS $((rss / 1024)) MiB, failed+errored $fails" >&2
}

SHAPES=("64x10:64:10" "4x100:4:100")
echo "bench: backend nginx on :$P_BACKEND; $WORKERS proxy worker(s); h2load -t$THREADS -D ${DURATION}s" >&2
nginx -c "$TMP/backend/nginx.conf" -p "$TMP/backend" 2>"$TMP/backend.err" &
PIDS+=($!)
wait_http "http://127.0.0.1:$P_BACKEND/" 10

"$ALBD" run -m "$TMP/albd" --admin "127.0.0.1:$P_ADMIN" --workers "$WORKERS" 2>"$TMP/albd.err" &
ALBD_PID=$!
PIDS+=("$ALBD_PID")
if ! wait_http "http://127.0.0.1:$P_ADMIN/readyz" 10 && ! wait_http "https://127.0.0.1:$P_ALBD/" 5; then
  tail -20 "$TMP/albd.err" >&2
  exit 1
fi
echo "albd:" >&2
for s in "${SHAPES[@]}"; do
  IFS=: read -r label c m <<<"$s"
  run_h2load "albd $label" "$ALBD_PID" "https://127.0.0.1:$P_ALBD/" "$c" "$m"
done
kill -TERM "$ALBD_PID"
wait "$ALBD_PID" || echo "bench: albd exited with $?" >&2

nginx -c "$TMP/nginx/nginx.conf" -p "$TMP/nginx" 2>"$TMP/nginx.err" &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
wait_http "https://127.0.0.1:$P_NGINX/" 10
echo "nginx:" >&2
for s in "${SHAPES[@]}"; do
  IFS=: read -r label c m <<<"$s"
  run_h2load "nginx $label" "$NGINX_PID" "https://127.0.0.1:$P_NGINX/" "$c" "$m"
done
kill -QUIT "$NGINX_PID"
wait "$NGINX_PID" || true

report() {
  echo "albd HTTP/2 benchmark — $(date -u +%FT%TZ), $(nproc) CPUs, $WORKERS worker(s), h2load -t$THREADS -D ${DURATION}s, TLS, HTTP/2 in, HTTP/1.1 out"
  printf '%-14s %12s %10s %14s %10s  %s\n' "run" "req/s" "p99 ms" "CPU us/req" "peak MiB" "failed+errored"
  local r
  for r in "${RESULTS[@]}"; do
    IFS='|' read -r n rps p99 cpu rss errs <<<"$r"
    printf '%-14s %12s %10s %14s %10s  %s\n' "$n" "$rps" "$p99" "$cpu" "$rss" "$errs"
  done
  echo
  echo "ratios albd/nginx (req/s higher is better; p99, CPU and RSS lower is better):"
  local s label a b
  for s in "${SHAPES[@]}"; do
    label=${s%%:*}
    a="" b=""
    for r in "${RESULTS[@]}"; do
      [[ "$r" == "albd $label|"* ]] && a=$r
      [[ "$r" == "nginx $label|"* ]] && b=$r
    done
    [[ -n "$a" && -n "$b" ]] || continue
    awk -v a="$a" -v b="$b" -v k="$label" 'BEGIN {
      split(a, x, "|"); split(b, y, "|")
      d = "n/a"
      printf "  %-6s req/s %s  p99 %s  CPU/req %s  peak RSS %s\n", k,
        (y[2] > 0 ? sprintf("%.2f", x[2] / y[2]) : d), (y[3] > 0 ? sprintf("%.2f", x[3] / y[3]) : d),
        (y[4] > 0 ? sprintf("%.2f", x[4] / y[4]) : d), (y[5] > 0 ? sprintf("%.2f", x[5] / y[5]) : d) }'
  done
}
if [[ -n "${BENCH_OUT:-}" ]]; then
  report | tee "$BENCH_OUT"
else
  report
fi
