# Shared setup of the bench scripts (sourced, not run): a temp dir removed
# on exit, processes stopped by PID on exit, free loopback ports, the
# benchmark certificate, the backend nginx, the albd manifest, and /proc
# sampling of CPU time and peak RSS. Each script sets BENCH_NAME (its name
# in messages) before sourcing.
#   source "$(dirname "$0")/lib.sh"

BENCH_NAME=${BENCH_NAME:-bench}

# bench_usage "$@": exits 64 without an albd binary; sets ALBD.
bench_usage() {
  if [[ $# -lt 1 ]]; then
    echo "usage: $0 <albd-binary>" >&2
    exit 64
  fi
  ALBD=$(realpath "$1")
}

# bench_require tool...: every tool on PATH, and ALBD executable.
bench_require() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "$BENCH_NAME: $tool is missing (contrib/deps.sh --bench)" >&2; exit 1; }
  done
  [[ -x "$ALBD" ]] || { echo "$BENCH_NAME: $ALBD is not executable" >&2; exit 1; }
}

# bench_tmp prefix: TMP, a fresh directory removed on exit with every PID
# in PIDS stopped (TERM, then KILL).
bench_tmp() {
  TMP=$(mktemp -d "/tmp/$1.XXXXXX")
  PIDS=()
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}
bench_cleanup() {
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

# free_ports n: n free loopback ports, distinct from one another, on one line.
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
s = [socket.socket() for _ in range(int(sys.argv[1]))]
for x in s:
    x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])
PY
}

# bench_cert: $TMP/cert.pem and $TMP/cert.key, a P-256 certificate for
# localhost and 127.0.0.1 shared by every proxy.
bench_cert() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -keyout "$TMP/cert.key" -out "$TMP/cert.pem" -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -addext "basicConstraints=critical,CA:FALSE" -addext "extendedKeyUsage=serverAuth" 2>/dev/null
  chmod 600 "$TMP/cert.key"
}

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

# backend_nginx_conf port [listen-options]: $TMP/backend/nginx.conf, an
# nginx with a fixed 200 answer (fast; shared by every proxy).
backend_nginx_conf() {
  mkdir -p "$TMP/backend"
  {
    nginx_common "$TMP/backend"
    cat <<CONF
worker_processes 1;
http {
  access_log off;
  $(temp_paths "$TMP/backend")
  keepalive_requests 100000000;
  server {
    listen 127.0.0.1:$1${2:+ $2};
    location / { return 200 "hello from the benchmark backend\n"; }
  }
}
CONF
  } > "$TMP/backend/nginx.conf"
}

# albd_manifest port backend-port http2: $TMP/albd/bench.yaml, one HTTPS
# listener with the benchmark certificate forwarding to the backend.
albd_manifest() {
  mkdir -p "$TMP/albd"
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
      port: $2
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
  port: $1
  http2: $3
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
}

wait_http() { # url seconds
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    if curl -sk -o /dev/null --max-time 1 "$1"; then return 0; fi
    sleep 0.1
  done
  echo "$BENCH_NAME: $1 did not answer within $2 s" >&2
  return 1
}

# start_backend: the backend nginx (backend_nginx_conf first), answering.
start_backend() {
  nginx -c "$TMP/backend/nginx.conf" -p "$TMP/backend" 2>"$TMP/backend.err" &
  PIDS+=($!)
  wait_http "http://127.0.0.1:$1/" 10
}

# start_albd port admin-port workers: albd on $TMP/albd, ready; ALBD_PID.
start_albd() {
  "$ALBD" run -m "$TMP/albd" --admin "127.0.0.1:$2" --workers "$3" 2>"$TMP/albd.err" &
  ALBD_PID=$!
  PIDS+=("$ALBD_PID")
  if ! wait_http "http://127.0.0.1:$2/readyz" 10 && ! wait_http "https://127.0.0.1:$1/" 5; then
    tail -20 "$TMP/albd.err" >&2
    exit 1
  fi
}

# All PIDs of a process and its descendants.
tree_pids() {
  local p=$1 c
  echo "$p"
  for c in $(pgrep -P "$p" 2>/dev/null || true); do tree_pids "$c"; done
}
# utime+stime ticks of a process tree.
cpu_ticks() {
  local sum=0 p t
  for p in $(tree_pids "$1"); do
    t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || echo 0)
    sum=$((sum + t))
  done
  echo "$sum"
}
# Sum of VmHWM (peak RSS) over a process tree, KiB.
peak_rss() {
  local sum=0 p v
  for p in $(tree_pids "$1"); do
    v=$(awk '/^VmHWM:/ { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0)
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}
# cpu_us_per_req ticks requests: CPU microseconds per request.
cpu_us_per_req() {
  awk -v t="$1" -v h="$(getconf CLK_TCK)" -v r="${2:-0}" 'BEGIN { printf "%.1f", (r > 0 ? t / h / r * 1e6 : 0) }'
}

# The results table, then albd/nginx ratios per run kind. RESULTS holds
# "name|req/s|p99 ms|CPU us/req|peak MiB|errors" rows whose names are
# "<proxy> <kind>". Usage: print_results WIDTH LAST_COLUMN KIND...
print_results() {
  local width=$1 last=$2 r kind a b
  shift 2
  printf "%-${width}s %12s %10s %14s %10s  %s\n" "run" "req/s" "p99 ms" "CPU us/req" "peak MiB" "$last"
  for r in "${RESULTS[@]}"; do
    IFS='|' read -r n rps p99 cpu rss errs <<<"$r"
    printf "%-${width}s %12s %10s %14s %10s  %s\n" "$n" "$rps" "$p99" "$cpu" "$rss" "$errs"
  done
  echo
  echo "ratios albd/nginx (req/s higher is better; p99, CPU and RSS lower is better):"
  for kind in "$@"; do
    a="" b=""
    for r in "${RESULTS[@]}"; do
      [[ "$r" == "albd $kind|"* ]] && a=$r
      [[ "$r" == "nginx $kind|"* ]] && b=$r
    done
    [[ -n "$a" && -n "$b" ]] || continue
    awk -v a="$a" -v b="$b" -v k="$kind" 'BEGIN {
      split(a, x, "|"); split(b, y, "|")
      d = "n/a"
      printf "  %-11s req/s %s  p99 %s  CPU/req %s  peak RSS %s\n", k,
        (y[2] > 0 ? sprintf("%.2f", x[2] / y[2]) : d), (y[3] > 0 ? sprintf("%.2f", x[3] / y[3]) : d),
        (y[4] > 0 ? sprintf("%.2f", x[4] / y[4]) : d), (y[5] > 0 ? sprintf("%.2f", x[5] / y[5]) : d) }'
  done
}
