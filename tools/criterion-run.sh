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
    grep -E '^\[(FAIL|----|ERR )\]|CRASH|Warning! The test' "$log" | grep -v -e '^\[----\] write mode' -e 'Criterion v' | tail -60
fi
exit "$rc"
