#!/usr/bin/env bash
# CPU per request of albd with the access log off and on (to a file), in
# the same run, alternating (off, file, off, file, ...) so that the other
# load of a shared machine falls on both alike; then a destination that
# cannot take lines: a FIFO nobody reads and a full disk (/dev/full).
# Plain HTTP listeners (TLS would only add the same cost to every run),
# one albd, one nginx backend, wrk over keep-alive.
#   bench/access_log.sh build/albd
# Knobs: BENCH_DURATION (5 s per run), BENCH_ROUNDS (3), BENCH_CONNECTIONS
# (50), BENCH_WORKERS (1), BENCH_BASELINE (another albd binary, e.g. one
# without per-request records and metrics: its runs, "base", alternate
# with "off" on a listener alike).
set -euo pipefail
BENCH_NAME=access_log
source "$(dirname "$0")/lib.sh"
bench_usage "$@"
bench_require wrk nginx curl
DURATION=${BENCH_DURATION:-5}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNECTIONS:-50}
WORKERS=${BENCH_WORKERS:-1}
bench_tmp albd-bench-alog

read -r P_BACK P_OFF P_ON P_FIFO P_FULL P_ADMIN P_BASE P_BADMIN <<<"$(free_ports 8)"
backend_nginx_conf "$P_BACK"
start_backend "$P_BACK"
mkfifo "$TMP/stuck.fifo"
exec 3<>"$TMP/stuck.fifo" # a reader that never reads: writes fill the pipe, then block

listener() { # name port [accessLog path]
  cat <<CONF
---
apiVersion: albd/v1
kind: Listener
metadata: {name: $1}
spec:
  instance: bench
  protocol: HTTP
  port: $2
  idleTimeoutSeconds: 60
  compression: {gzip: false, brotli: false}
  defaultAction: {forward: {serverGroup: backend}}
CONF
  [[ -z "${3:-}" ]] || echo "  accessLog: {enabled: true, path: \"$3\"}"
}
mkdir -p "$TMP/albd"
{
  cat <<CONF
apiVersion: albd/v1
kind: Instance
metadata: {name: bench}
spec: {addresses: ["127.0.0.1"]}
---
apiVersion: albd/v1
kind: ServerGroup
metadata: {name: backend}
spec:
  servers: [{address: "127.0.0.1", port: $P_BACK}]
  upstreamKeepalive: true
CONF
  listener off "$P_OFF"
  listener on "$P_ON" "$TMP/access.log"
  listener fifo "$P_FIFO" "$TMP/stuck.fifo"
  listener full "$P_FULL" /dev/full
} >"$TMP/albd/bench.yaml"
"$ALBD" run -m "$TMP/albd" --admin "127.0.0.1:$P_ADMIN" --workers "$WORKERS" 2>"$TMP/albd.err" &
ALBD_PID=$!
PIDS+=("$ALBD_PID")
wait_http "http://127.0.0.1:$P_ADMIN/readyz" 10 || { tail "$TMP/albd.err" >&2; exit 1; }

run() { # name port: one wrk run; prints "name req/s cpu-us/req p99"
  local t0 t1 out reqs rps p99
  t0=$(cpu_ticks "$ALBD_PID")
  out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:$2/")
  t1=$(cpu_ticks "$ALBD_PID")
  reqs=$(awk '/requests in/ { print $1 }' <<<"$out")
  rps=$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")
  p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
  printf "%-6s %10s req/s  %8s us/req  p99 %s\n" "$1" "$rps" "$(cpu_us_per_req $((t1 - t0)) "$reqs")" "$p99"
}
metric() { curl -s "http://127.0.0.1:$P_ADMIN/metrics" | awk -v n="$1" '$1 == n { print $2 }'; }

BASE_PID=""
if [[ -n "${BENCH_BASELINE:-}" ]]; then
  mkdir -p "$TMP/base"
  sed -n '1,/^  upstreamKeepalive/p' "$TMP/albd/bench.yaml" >"$TMP/base/bench.yaml"
  listener off "$P_BASE" >>"$TMP/base/bench.yaml"
  "$BENCH_BASELINE" run -m "$TMP/base" --admin "127.0.0.1:$P_BADMIN" --workers "$WORKERS" \
    2>"$TMP/base.err" &
  BASE_PID=$!
  PIDS+=("$BASE_PID")
  wait_http "http://127.0.0.1:$P_BADMIN/readyz" 10 || { tail "$TMP/base.err" >&2; exit 1; }
  wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$P_BASE/" >/dev/null
fi

wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$P_OFF/" >/dev/null # warm-up
echo "albd workers=$WORKERS, wrk -c$CONNS, ${DURATION}s per run, $ROUNDS rounds"
for ((i = 1; i <= ROUNDS; i++)); do
  run off "$P_OFF"
  run file "$P_ON"
  [[ -z "$BASE_PID" ]] || ALBD_PID=$BASE_PID run base "$P_BASE"
done
echo "access log lines written: $(metric albd_access_log_lines_total), in the file: $(wc -l <"$TMP/access.log")"
d0=$(metric albd_access_log_dropped_total)
run fifo "$P_FIFO"
d1=$(metric albd_access_log_dropped_total)
run full "$P_FULL"
sleep 0.5
d2=$(metric albd_access_log_dropped_total)
echo "dropped: blocked FIFO $((d1 - d0)), /dev/full $((d2 - d1))"
run off "$P_OFF"
