#!/usr/bin/env bash
# reload_hwm.sh ALBD CERTS [K] [RUNS] — the exact peak memory of adding one
# certificate to a listener of K (default 10,000), albd alone.
#
# ../shared/bench/bigconfig.sh samples APSS every few ms and may miss a
# peak that lasts ~10 ms; this reads the kernel's high-water mark instead.
# It renders bigconfig's layout (../shared/bench/bigconf/albd.sh: one
# Certificate file per name, one listener naming them all) from CERTS, a
# folder of hN.crt/hN.key for N = 1..K+1 (what bigconfig.sh keeps with
# CERTS_KEEP=), starts `albd run`, and 3 s after generation 1 resets
# VmHWM (/proc/PID/clear_refs), adds certificate K+1 the way bigconfig
# does, and after generation 2 prints, in MiB: RSS before, VmHWM (and the
# difference: what the change took at its peak), RSS after, and anonymous
# PSS before and 1 s after. Not a ratio to the peers: compare binaries
# run back to back. Loopback only; every process it starts is stopped by
# PID on exit; every wait is bounded.
#
# HEAP_PEAK=1: albd runs under bench/heap_peak.c (built here with cc, an
# LD_PRELOAD library), armed just before the change; after each run it
# prints which allocations made by the change were live at the heap's
# highest point, by call stack (albd's frames resolved with addr2line).
# Its VmHWM line then counts the tracer's own table: read only the stacks.
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,15s/^# \{0,1\}//p' "$0"; exit 64; }
ALBD=$(realpath "$1")
BIG_CERTS=$(realpath "$2")
K=${3:-10000}
RUNS=${4:-2}
SHARED_BENCH=${SHARED_BENCH:-$(dirname "$0")/../../shared/bench}
[ -f "$SHARED_BENCH/bigconf/albd.sh" ] || { echo "no $SHARED_BENCH/bigconf/albd.sh (set SHARED_BENCH)" >&2; exit 66; }
[ -f "$BIG_CERTS/h$((K + 1)).crt" ] || { echo "$BIG_CERTS has no h$((K + 1)).crt" >&2; exit 66; }
[ -w /proc/self/clear_refs ] || { echo "/proc/PID/clear_refs is not writable here" >&2; exit 69; }
HEAP_PEAK=${HEAP_PEAK:-0}

export BIG_CERTS PORT=${PORT:-19443} BACKEND_HOST=127.0.0.1 BACKEND_PORT=${BACKEND_PORT:-19080}
export WORKERS=${WORKERS:-2}
PEER_RUN=$(mktemp -d /tmp/albd-reload-hwm.XXXXXX)
export PEER_RUN
PID=
cleanup() {
    if [ -n "$PID" ]; then kill -INT "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$PEER_RUN"
}
trap cleanup EXIT
PRELOAD=()
if [ "$HEAP_PEAK" = 1 ]; then
    cc -std=c17 -O2 -Wall -Wextra -shared -fPIC -o "$PEER_RUN/heap_peak.so" "$(dirname "$0")/heap_peak.c"
    PRELOAD=(env LD_PRELOAD="$PEER_RUN/heap_peak.so" HEAP_PEAK_DIR="$PEER_RUN/hp")
fi
# heap_peak_report: the tracer's summary, albd's frames as function and line.
heap_peak_report() {
    python3 - "$ALBD" "$PEER_RUN/hp/out" <<'PY'
import re, subprocess, sys
albd, path = sys.argv[1], sys.argv[2]
try:
    text = open(path).read()
except OSError:
    sys.exit("heap_peak: no summary (was it armed?)")
offs = sorted(set(re.findall(re.escape(albd) + r"\(\+(0x[0-9a-f]+)\)", text)))
names = {}
if offs:
    out = subprocess.run(["addr2line", "-f", "-s", "-e", albd] + offs,
                         capture_output=True, text=True).stdout.split("\n")
    names = {o: out[2 * i] + " " + out[2 * i + 1] for i, o in enumerate(offs)}
text = re.sub(re.escape(albd) + r"\(\+(0x[0-9a-f]+)\)[^\n]*", lambda m: names.get(m.group(1), m.group(0)), text)
text = re.sub(r"/(usr/)?lib/x86_64-linux-gnu/", "", text)
blocks = ["\n".join(ln for ln in b.split("\n") if "heap_peak.so" not in ln)
          for b in text.split("\n\n")]
print("\n\n".join(blocks[:16]))
PY
}
# shellcheck source=/dev/null
. "$SHARED_BENCH/bigconf/albd.sh"

kib() { awk -v k="$2" '$1 == k { print $2 }' "/proc/$1/$3"; }
wait_log() { # TEXT: at most 60 s
    local i
    for ((i = 0; i < 600; i++)); do
        grep -qs "$1" "$PEER_RUN/log" && return 0
        kill -0 "$PID" 2>/dev/null || { echo "albd exited:" >&2; tail -5 "$PEER_RUN/log" >&2; exit 1; }
        sleep 0.1
    done
    echo "timed out waiting for: $1" >&2
    exit 1
}

for ((run = 1; run <= RUNS; run++)); do
    rm -rf "$PEER_RUN/m" "$PEER_RUN/log"
    mkdir -p "$PEER_RUN/m"
    bc_render "$K"
    rm -rf "$PEER_RUN/hp"
    mkdir -p "$PEER_RUN/hp"
    "${PRELOAD[@]}" "$ALBD" run -m "$PEER_RUN/m" --workers "$WORKERS" --admin off >"$PEER_RUN/log" 2>&1 &
    PID=$!
    wait_log "applied generation 1 "
    sleep 3
    rss0=$(kib "$PID" VmRSS: status)
    anon0=$(kib "$PID" Pss_Anon: smaps_rollup)
    echo 5 >"/proc/$PID/clear_refs"
    [ "$HEAP_PEAK" = 1 ] && touch "$PEER_RUN/hp/arm"
    bc_add $((K + 1))
    wait_log "applied generation 2 "
    sleep 1
    hwm=$(kib "$PID" VmHWM: status)
    rss1=$(kib "$PID" VmRSS: status)
    anon1=$(kib "$PID" Pss_Anon: smaps_rollup)
    awk -v r="$run" -v a="$rss0" -v h="$hwm" -v b="$rss1" -v x="$anon0" -v y="$anon1" 'BEGIN {
        printf "run %d: RSS %.1f MiB, VmHWM %.1f (+%.1f), RSS after %.1f; anonymous %.1f -> %.1f\n",
            r, a / 1024, h / 1024, (h - a) / 1024, b / 1024, x / 1024, y / 1024 }'
    kill -INT "$PID"
    wait "$PID" || true
    PID=
    [ "$HEAP_PEAK" = 1 ] && heap_peak_report
done
