#!/bin/sh
# criterion-run.sh LOG BINARY [ARGS...] -- run a Criterion test binary,
# keeping its whole output in LOG, and when it fails repeat the failing
# tests and their assertion messages at the end, so that the tail of a
# long CI log (all that is sometimes kept) still says what failed.
set -u
log="$1"; shift
mkdir -p "$(dirname "$log")"
{ "$@" 2>&1; echo $? > "$log.rc"; } | tee "$log"
rc=$(cat "$log.rc")
if [ "$rc" != 0 ]; then
    echo "==== $1 failed (exit $rc); the failures again:"
    # Failed and crashed tests, each assertion's file:line and its message
    # lines (indented by three spaces), and seeds to reproduce with; not
    # the passing tests' informational lines.
    grep -E '^\[(FAIL|ERR )\]|^\[----\] [^ ]+:[0-9]+: |^\[----\]   |seed [0-9]|CRASH|Warning! The test' "$log" | tail -60
fi
exit "$rc"
