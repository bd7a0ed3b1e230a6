#!/bin/sh
# fuzz/run.sh SECONDS -- run each fuzzer for SECONDS on a copy of its seed
# corpus (the committed seeds stay as they are) and report executions and
# coverage; fail if any target found a crash.
set -eu
secs="$1"
top=$(cd "$(dirname "$0")/.." && pwd)
rc=0
for t in request wal sst; do
    work="$top/build/fuzz/$t.corpus"
    mkdir -p "$work" "$top/build/fuzz/$t.findings"
    cp "$top/fuzz/corpus/$t/"* "$work/" 2>/dev/null || true
    log="$top/build/fuzz/$t.log"
    if "$top/build/fuzz/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$top/build/fuzz/$t.findings/" "$work" > "$log" 2>&1; then
        line=$(grep -E "^#[0-9]+.*(DONE|pulse|NEW|REDUCE)" "$log" | tail -1)
        echo "fuzz $t: ${secs}s: ${line:-no stats}"
    else
        echo "fuzz $t: FOUND A CRASH (see $log and build/fuzz/$t.findings/)"
        tail -30 "$log"
        rc=1
    fi
done
exit $rc
