#!/usr/bin/env bash
# Side-by-side benchmark: albd vs nginx (and HAProxy if installed), each
# terminating TLS with the same certificate in front of the same backend
# (an nginx answering a fixed 200), same worker count, upstream keep-alive.
#
#   bench/run.sh <albd-binary>
#
# Environment knobs (defaults in brackets):
#   BENCH_DURATION [15]  seconds per wrk run     BENCH_CONNECTIONS [50]
#   BENCH_WORKERS  [1]   proxy workers/threads   BENCH_THREADS [1]   wrk threads
#   BENCH_HAPROXY  [1]   also run HAProxy        BENCH_NEWCONN [1]   new-connection runs too
#   BENCH_OUT            also write the report to this file
# Loopback only; every process started here is stopped by its PID on exit.
set -euo pipefail

BENCH_NAME=bench
source "$(dirname "$0")/lib.sh"
bench_usage "$@"
DURATION=${BENCH_DURATION:-15}
CONNS=${BENCH_CONNECTIONS:-50}
WORKERS=${BENCH_WORKERS:-1}
THREADS=${BENCH_THREADS:-1}
WITH_HAPROXY=${BENCH_HAPROXY:-1}
WITH_NEWCONN=${BENCH_NEWCONN:-1}

bench_require wrk nginx openssl curl python3
if [[ "$WITH_HAPROXY" == 1 ]] && ! command -v haproxy >/dev/null; then WITH_HAPROXY=0; fi

bench_tmp albd-bench

# Free loopback ports, distinct from one another.
read -r P_BACKEND P_NGINX P_ALBD P_ADMIN P_HAPROXY < <(free_ports 5)

# One certificate for every proxy.
bench_cert
cat "$TMP/cert.pem" "$TMP/cert.key" > "$TMP/haproxy.pem"
chmod 600 "$TMP/haproxy.pem"

# The backend: nginx with a fixed answer (fast; shared by every proxy).
backend_nginx_conf "$P_BACKEND"

# nginx as the proxy under test.
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
  upstream backend {
    server 127.0.0.1:$P_BACKEND;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$P_NGINX ssl;
    ssl_certificate $TMP/cert.pem;
    ssl_certificate_key $TMP/cert.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_timeout 300s;
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

# albd: the same, as manifests.
albd_manifest "$P_ALBD" "$P_BACKEND" false

# HAProxy: the same again.
cat > "$TMP/haproxy.cfg" <<CONF
global
  nbthread $WORKERS
  maxconn 4096
  tune.ssl.default-dh-param 2048
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option forwardfor
  http-reuse always
frontend fe
  bind 127.0.0.1:$P_HAPROXY ssl crt $TMP/haproxy.pem
  default_backend be
backend be
  server s1 127.0.0.1:$P_BACKEND
CONF

# wrk's latency to ms.
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n *= 1000
    printf "%.2f", n }'
}

RESULTS=()
# run_wrk name pid url extra-wrk-args...
run_wrk() {
  local name=$1 pid=$2 url=$3
  shift 3
  wrk -t"$THREADS" -c"$CONNS" -d2s "$@" "$url" >/dev/null 2>&1 || true # warm up
  local t0 t1 out reqs rps p99 ticks cpu_us rss
  t0=$(cpu_ticks "$pid")
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "$@" "$url")
  t1=$(cpu_ticks "$pid")
  reqs=$(awk '/requests in/ { print $1 }' <<<"$out")
  rps=$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")
  p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
  ticks=$((t1 - t0))
  cpu_us=$(cpu_us_per_req "$ticks" "$reqs")
  rss=$(peak_rss "$pid")
  local errs
  errs=$(awk '/Non-2xx|Socket errors/' <<<"$out" | tr -s ' ' | paste -sd';' -)
  RESULTS+=("$name|$rps|$p99|$cpu_us|$((rss / 1024))|${errs:-none}")
  echo "  $name: $rps req/s, p99 $p99 ms, $cpu_us us CPU/request, peak RSS $((rss / 1024)) MiB ${errs:+($errs)}" >&2
}

echo "bench: backend nginx on :$P_BACKEND; $WORKERS proxy worker(s); wrk -t$THREADS -c$CONNS -d${DURATION}s" >&2
start_backend "$P_BACKEND"

# albd
start_albd "$P_ALBD" "$P_ADMIN" "$WORKERS"
echo "albd:" >&2
run_wrk "albd keep-alive" "$ALBD_PID" "https://127.0.0.1:$P_ALBD/"
if [[ "$WITH_NEWCONN" == 1 ]]; then
  run_wrk "albd new-conn" "$ALBD_PID" "https://127.0.0.1:$P_ALBD/" -H "Connection: close"
fi
kill -TERM "$ALBD_PID"
wait "$ALBD_PID" || echo "bench: albd exited with $?" >&2

# nginx
nginx -c "$TMP/nginx/nginx.conf" -p "$TMP/nginx" 2>"$TMP/nginx.err" &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
wait_http "https://127.0.0.1:$P_NGINX/" 10
echo "nginx:" >&2
run_wrk "nginx keep-alive" "$NGINX_PID" "https://127.0.0.1:$P_NGINX/"
if [[ "$WITH_NEWCONN" == 1 ]]; then
  run_wrk "nginx new-conn" "$NGINX_PID" "https://127.0.0.1:$P_NGINX/" -H "Connection: close"
fi
kill -QUIT "$NGINX_PID"
wait "$NGINX_PID" || true

# HAProxy
if [[ "$WITH_HAPROXY" == 1 ]]; then
  haproxy -f "$TMP/haproxy.cfg" -db 2>"$TMP/haproxy.err" &
  HAPROXY_PID=$!
  PIDS+=("$HAPROXY_PID")
  wait_http "https://127.0.0.1:$P_HAPROXY/" 10
  echo "haproxy:" >&2
  run_wrk "haproxy keep-alive" "$HAPROXY_PID" "https://127.0.0.1:$P_HAPROXY/"
  if [[ "$WITH_NEWCONN" == 1 ]]; then
    run_wrk "haproxy new-conn" "$HAPROXY_PID" "https://127.0.0.1:$P_HAPROXY/" -H "Connection: close"
  fi
  kill -TERM "$HAPROXY_PID"
  wait "$HAPROXY_PID" || true
fi

# Report.
report() {
  echo "albd benchmark — $(date -u +%FT%TZ), $(nproc) CPUs, $WORKERS worker(s), wrk -t$THREADS -c$CONNS -d${DURATION}s, TLS, HTTP/1.1"
  print_results 20 errors "keep-alive" "new-conn"
}
if [[ -n "${BENCH_OUT:-}" ]]; then
  report | tee "$BENCH_OUT"
else
  report
fi
