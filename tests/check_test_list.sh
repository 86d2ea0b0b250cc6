#!/bin/sh
# Compares the tests ctest registers in a build directory with the checked-in
# list tests/expected_tests.txt, so that a test lost (a file renamed, a glob
# that matches nothing, a fuzz corpus gone) fails `make test` instead of
# quietly running less.
#
#   tests/check_test_list.sh BUILD_DIR           check (exit 1 on any difference)
#   tests/check_test_list.sh --write BUILD_DIR   rewrite the list (`make test-list`)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
list="$here/expected_tests.txt"
write=0
if [ "${1:-}" = "--write" ]; then
    write=1
    shift
fi
build=${1:?usage: $0 [--write] BUILD_DIR}

registered=$(mktemp)
expected=$(mktemp)
trap 'rm -f "$registered" "$expected"' EXIT
# "  Test  #12: integration/serves_http2" -> "integration/serves_http2"
(cd "$build" && ctest -N) | sed -n 's/^ *Test *#[0-9]*: //p' | LC_ALL=C sort > "$registered"

if [ "$write" = 1 ]; then
    {
        echo "# Every test ctest must register, one name a line (ctest -N)."
        echo "# Checked by tests/check_test_list.sh in \`make test\`; regenerate with"
        echo "# \`make test-list\` after adding or removing a test, and review the diff."
        cat "$registered"
    } > "$list"
    echo "wrote $(wc -l < "$registered") test names to $list"
    exit 0
fi

grep -v '^#' "$list" | grep -v '^[[:space:]]*$' | LC_ALL=C sort > "$expected"
if [ ! -s "$registered" ]; then
    echo "check_test_list: ctest registers no tests in $build" >&2
    exit 1
fi
missing=$(LC_ALL=C comm -23 "$expected" "$registered")
extra=$(LC_ALL=C comm -13 "$expected" "$registered")
status=0
if [ -n "$missing" ]; then
    echo "check_test_list: tests listed in tests/expected_tests.txt but not registered in $build:" >&2
    echo "$missing" | sed 's/^/  /' >&2
    echo "  (a test file was removed or renamed, or its directory is no longer globbed;" >&2
    echo "   if the removal is deliberate, run \`make test-list\` and commit the list)" >&2
    status=1
fi
if [ -n "$extra" ]; then
    echo "check_test_list: tests registered in $build but not listed in tests/expected_tests.txt:" >&2
    echo "$extra" | sed 's/^/  /' >&2
    echo "  (run \`make test-list\` to add them, review the diff and commit the list)" >&2
    status=1
fi
[ "$status" = 0 ] && echo "check_test_list: $build registers the $(wc -l < "$expected") expected tests"
exit $status
