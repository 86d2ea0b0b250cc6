#!/usr/bin/env bash
# Compression benchmark (issue 12's bar): albd in front of an nginx origin
# that serves a 64 KiB JSON document and a 10 MiB JSON body uncompressed.
#
#   bench/compression.sh <albd-binary>
#
# 1. h2load (HTTP/1.1 keep-alive, 8 connections) fetches the 64 KiB JSON
#    with Accept-Encoding identity, gzip and br, in turn, twice, against one
#    albd: requests/s, albd CPU time per request (utime+stime from /proc)
#    and the bytes per response (the compression ratio).
# 2. 1,000 clients download the 10 MiB body slowly (bench/slow_clients.py)
#    with br, then gzip, then identity, each against a fresh albd: albd's
#    peak RSS and how many responses were compressed.
# The machine is shared: compare figures of one run only.
#
# Environment knobs: BENCH_REQUESTS [4000] per h2load run, BENCH_WORKERS [1]
# albd workers for part 1 (part 2 uses 2), BENCH_SLOW_SECONDS [40],
# BENCH_CLIENTS [1000]. Loopback only; every process started here is stopped
# by its PID on exit.
set -euo pipefail

BENCH_NAME=compression
source "$(dirname "$0")/lib.sh"
bench_usage "$@"
N=${BENCH_REQUESTS:-4000}
WORKERS=${BENCH_WORKERS:-1}
SLOW=${BENCH_SLOW_SECONDS:-40}
CLIENTS=${BENCH_CLIENTS:-1000}

bench_require h2load nginx curl python3
bench_tmp albd-bench-compression
read -r P_ORIGIN P_ALBD P_ADMIN < <(free_ports 3)

# The documents: varied JSON rows (not one block repeated, which any window
# would find).
chmod 755 "$TMP" # nginx's workers (not root) read the documents
mkdir -p "$TMP/www"
python3 - "$TMP/www" <<'PY'
import json, random, sys
random.seed(7)
def rows(limit):
    out, n, i = [], 0, 0
    while True:
        s = json.dumps({"id": i, "name": f"user{i}", "email": f"u{random.randrange(10**6)}@example.com",
                        "active": i % 3 == 0, "score": round(random.random() * 1000, 3),
                        "tags": ["alpha", "beta", "gamma", "delta"][:i % 5]}) + ",\n"
        if n + len(s) > limit:
            return "".join(out)
        out.append(s); n += len(s); i += 1
open(sys.argv[1] + "/j.json", "w").write(rows(65536))
open(sys.argv[1] + "/big.json", "w").write(rows(10 << 20))
PY

mkdir -p "$TMP/origin"
{
  nginx_common "$TMP/origin"
  cat <<CONF
worker_processes 1;
http {
  access_log off;
  $(temp_paths "$TMP/origin")
  keepalive_requests 100000000;
  types { application/json json; }
  server { listen 127.0.0.1:$P_ORIGIN backlog=4096; root $TMP/www; }
}
CONF
} > "$TMP/origin/nginx.conf"
nginx -c "$TMP/origin/nginx.conf" -p "$TMP/origin" 2>"$TMP/origin.err" &
PIDS+=($!)
wait_http "http://127.0.0.1:$P_ORIGIN/j.json" 10
code=$(curl -s -o /dev/null -w "%{http_code}" "http://127.0.0.1:$P_ORIGIN/j.json")
[[ "$code" == 200 ]] || { echo "compression: the origin answers $code" >&2; exit 1; }

mkdir -p "$TMP/albd"
cat > "$TMP/albd/bench.yaml" <<CONF
apiVersion: albd/v1
kind: ServerGroup
metadata: {name: origin}
spec:
  servers: [{address: "127.0.0.1", port: $P_ORIGIN}]
---
apiVersion: albd/v1
kind: Listener
metadata: {name: bench}
spec:
  protocol: HTTP
  port: $P_ALBD
  idleTimeoutSeconds: 600
  requestTimeoutSeconds: 600
  compression: {gzip: true, brotli: true}
  defaultAction: {forward: {serverGroup: origin}}
CONF

run_albd() { # workers
  "$ALBD" run -m "$TMP/albd" --admin "127.0.0.1:$P_ADMIN" --workers "$1" 2>"$TMP/albd.err" &
  ALBD_PID=$!
  PIDS+=("$ALBD_PID")
  wait_http "http://127.0.0.1:$P_ALBD/j.json" 10
}
stop_albd() {
  kill -TERM "$ALBD_PID" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$ALBD_PID" 2>/dev/null || break; sleep 0.2; done
  kill -KILL "$ALBD_PID" 2>/dev/null || true
  wait "$ALBD_PID" 2>/dev/null || true
}

echo "== 64 KiB JSON, $N requests per run, albd --workers $WORKERS (one albd, one run)"
run_albd "$WORKERS"
printf "%-6s %-9s %10s %12s %12s %8s\n" round coding "req/s" "CPU us/req" "bytes/resp" ratio
for round in 1 2; do
  for ae in identity gzip br; do
    t0=$(cpu_ticks "$ALBD_PID")
    out=$(h2load --h1 -c 8 -t 1 -n "$N" -H "Accept-Encoding: $ae" "http://127.0.0.1:$P_ALBD/j.json" 2>&1)
    t1=$(cpu_ticks "$ALBD_PID")
    rps=$(awk '/^finished in/ { print $4 }' <<<"$out")
    ok=$(awk '/^status codes:/ { print $3 }' <<<"$out")
    data=$(sed -n 's/^traffic:.*(\([0-9]*\)) data.*/\1/p' <<<"$out")
    [[ "$ok" == "$N" ]] || echo "compression: $ae: only $ok of $N answered 2xx" >&2
    size=$(stat -c %s "$TMP/www/j.json")
    printf "%-6s %-9s %10s %12s %12s %8s\n" "$round" "$ae" "$rps" "$(cpu_us_per_req $((t1 - t0)) "$N")" \
      "$((data / N))" "$(awk -v a="$data" -v n="$N" -v s="$size" 'BEGIN { printf "%.3f", a / n / s }')"
  done
done
stop_albd

echo "== $CLIENTS slow clients downloading 10 MiB, ${SLOW} s each run, albd --workers 2"
for ae in br gzip identity; do
  run_albd 2
  python3 "$(dirname "$0")/slow_clients.py" "$P_ALBD" "$CLIENTS" "$ae" "$SLOW" "$ALBD_PID"
  stop_albd
done
