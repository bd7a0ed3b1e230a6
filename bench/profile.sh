#!/bin/sh
# bench/profile.sh APACHE_PID OUTDIR SECONDS NAME:URL:MODE... -- CPU
# profiles of an Apache's children (perf record -g, DWARF call chains)
# while wrk -t2 -c64 sends requests of bench/wrk/kv.lua's MODE (get, set)
# to URL (a store's mount point).  For each NAME:
# OUTDIR/profile-NAME.txt, the share of samples per request phase
# (bench/phases.pl), by shared object, and the top user-space symbols;
# OUTDIR/profile.txt has the phase tables one after another.  Run by
# `PROFILE=1 make bench-http` before the measured runs (DWARF unwinding
# slows the children; the shares are what counts, not the rates).
set -eu
apid=$1 out=$2 secs=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
lua="$here/wrk/kv.lua"
command -v perf > /dev/null || { echo "perf not installed: no profile" >&2; exit 1; }
children=$(pgrep -d, -P "$apid" apache2)
: > "$out/profile.txt"
for what in "$@"; do
    name=${what%%:*}
    rest=${what#*:}
    mode=${rest##*:}
    url=${rest%:*}
    data="$out/perf-$name.data"
    perf record -q --call-graph dwarf,16384 -F 499 -o "$data" -p "$children" -- sleep "$secs" \
        > /dev/null 2>&1 &
    perfpid=$!
    sleep 0.3
    wrk -t2 -c64 -d"$((secs + 1))s" -s "$lua" "$url" -- "$mode" 10000 > "$out/perf-$name.wrk" 2>&1 || true
    wait "$perfpid" || true
    f="$out/profile-$name.txt"
    {
        echo "== $name: share of the children's CPU samples per request phase"
        perf script -i "$data" -F ip,sym 2> /dev/null | perl "$here/phases.pl"
        echo
        echo "== $name: by shared object (self)"
        perf report -i "$data" --no-children --sort dso --stdio -g none 2> /dev/null \
            | grep -E '^ +[0-9]' | head -12
        echo
        echo "== $name: top user-space symbols (self)"
        perf report -i "$data" --no-children --sort dso,sym --stdio -g none 2> /dev/null \
            | grep -E '^ +[0-9]' | grep -v '\[k\]' | head -25
    } > "$f"
    echo "CPU profile of $name: $f"
    { sed -n '1,/samples)/p' "$f"; echo; } >> "$out/profile.txt"
    rm -f "$data"
done
