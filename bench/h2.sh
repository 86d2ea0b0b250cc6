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

BENCH_NAME=bench
source "$(dirname "$0")/lib.sh"
bench_usage "$@"
DURATION=${BENCH_DURATION:-10}
WORKERS=${BENCH_WORKERS:-1}
THREADS=${BENCH_THREADS:-1}

bench_require h2load nginx openssl curl python3

bench_tmp albd-bench-h2

read -r P_BACKEND P_NGINX P_ALBD P_ADMIN < <(free_ports 4)

bench_cert

backend_nginx_conf "$P_BACKEND" backlog=4096

# nginx: HTTP/2 with the same limits albd advertises (128 streams).
mkdir -p "$TMP/nginx"
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

albd_manifest "$P_ALBD" "$P_BACKEND" true

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
  cpu_us=$(cpu_us_per_req "$ticks" "$reqs")
  rss=$(peak_rss "$pid")
  RESULTS+=("$name|$rps|$p99|$cpu_us|$((rss / 1024))|$fails")
  echo "  $name: $rps req/s, p99 $p99 ms, $cpu_us us CPU/request, peak RSS $((rss / 1024)) MiB, failed+errored $fails" >&2
}

SHAPES=("64x10:64:10" "4x100:4:100")
echo "bench: backend nginx on :$P_BACKEND; $WORKERS proxy worker(s); h2load -t$THREADS -D ${DURATION}s" >&2
start_backend "$P_BACKEND"

start_albd "$P_ALBD" "$P_ADMIN" "$WORKERS"
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
  local s labels=()
  for s in "${SHAPES[@]}"; do labels+=("${s%%:*}"); done
  print_results 14 failed+errored "${labels[@]}"
}
if [[ -n "${BENCH_OUT:-}" ]]; then
  report | tee "$BENCH_OUT"
else
  report
fi
