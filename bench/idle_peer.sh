#!/usr/bin/env bash
# idle_peer.sh DIR — the albd peer of ../shared/bench for idle_mem.sh.
#
# idle_mem.sh raises the idle timeouts of nginx, HAProxy and h2o to 900 s
# so that 10,000 idle connections outlive their setup (~16 s) and its
# SETTLE wait, but knows no patch for albd: run unchanged, albd closes
# them after its default idleTimeoutSeconds (15 s, the reference's), and
# the figures divide by the few still open. This copies
# ../shared/bench/peers/albd to DIR with the listener's idleTimeoutSeconds
# at 600 (the most an instance allows by default) and prints DIR:
#
#   NS=10000 ALBD=build/albd ../shared/bench/idle_mem.sh nginx haproxy \
#       "$(bench/idle_peer.sh /tmp/albd-idle)"
set -euo pipefail
[ $# -eq 1 ] || { sed -n '2,13s/^# \{0,1\}//p' "$0"; exit 64; }
SHARED_BENCH=${SHARED_BENCH:-$(dirname "$0")/../../shared/bench}
src=$SHARED_BENCH/peers/albd
[ -f "$src/manifests.yaml.in" ] || { echo "no $src/manifests.yaml.in (set SHARED_BENCH)" >&2; exit 66; }
rm -rf "$1"
cp -r "$src" "$1"
grep -q '^  http2: true$' "$1/manifests.yaml.in" || { echo "$src: no 'http2: true' line to patch" >&2; exit 65; }
sed -i 's/^  http2: true$/  http2: true\n  idleTimeoutSeconds: 600/' "$1/manifests.yaml.in"
realpath "$1"
