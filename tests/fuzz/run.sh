#!/bin/sh
# Runs each named fuzzer of a -DALBD_FUZZ=ON build for SECONDS, one after
# the other (see tests/fuzz/README.md). New inputs go to BUILD/fuzz-new/<name>
# (the tree corpus is only read), crashes and timeouts to
# BUILD/fuzz-artifacts/<name>/, the log to BUILD/fuzz-<name>.log.
# usage: tests/fuzz/run.sh BUILD SECONDS NAME...
# FUZZ_KEEP_GOING=1: libFuzzer's fork mode, which saves each crash or
# timeout and goes on instead of stopping at the first.
set -u
build=$1 seconds=$2
shift 2
src=$(cd "$(dirname "$0")" && pwd)
status=0
for name in "$@"; do
    bin=$build/tests/fuzz/fuzz_$name
    new=$build/fuzz-new/$name
    art=$build/fuzz-artifacts/$name
    mkdir -p "$new" "$art"
    # A manifest may take long to reject; anything slower than this is a
    # finding (issue 9: loading must cost O(N)).
    case $name in
    manifest) opts="-timeout=10 -rss_limit_mb=1024 -max_len=16384" ;;
    *) opts="-timeout=10 -rss_limit_mb=1024 -max_len=65536" ;;
    esac
    [ "${FUZZ_KEEP_GOING:-0}" = 1 ] &&
        opts="$opts -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1"
    dict=
    [ -f "$src/$name.dict" ] && dict="-dict=$src/$name.dict"
    # CPU time used (user + system, children included) goes to the log.
    timer=
    [ -x /usr/bin/time ] && timer="/usr/bin/time -a -o $build/fuzz-$name.log -f cpu:user=%Us,system=%Ss,wall=%es"
    echo "== fuzz_$name for ${seconds}s (log: $build/fuzz-$name.log)"
    # shellcheck disable=SC2086
    $timer "$bin" $opts $dict -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix="$art/" "$new" "$src/corpus/$name" >"$build/fuzz-$name.log" 2>&1
    rc=$?
    grep -aE '^(stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)|cpu:)' \
        "$build/fuzz-$name.log"
    # Fork mode prints no stat:: lines: its last progress line instead.
    [ "${FUZZ_KEEP_GOING:-0}" = 1 ] && grep -aE '^#[0-9]+: cov' "$build/fuzz-$name.log" | tail -1
    if [ $rc -ne 0 ]; then
        status=1
        echo "fuzz_$name: FOUND SOMETHING (exit $rc), see $build/fuzz-$name.log and $art/"
        grep -aE 'FUZZ FINDING|ERROR: (AddressSanitizer|libFuzzer|UndefinedBehavior)|SUMMARY|runtime error' \
            "$build/fuzz-$name.log" | head -5
    fi
done
exit $status
