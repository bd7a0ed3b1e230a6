#!/bin/sh
# bench/run.sh -- `make bench`: every measurement of the performance issue
# in one run, then one table of ratios against their targets.
#   1. the engine against LevelDB, 1M entries, each benchmark 5 times per
#      engine in alternating order (bench/db_bench.c --rounds=5);
#   1b. readrandom again with every SST mapped (--map_bytes=1G, the
#      KVLSMMapSize trade-off: no memory bound, no system call per read);
#   2. scale: 10M entries through the engine alone (fillrandom, then 1M
#      random reads; space on disk against the live data);
#   3. HTTP: bench/http.sh (static file, GET/SET/DEL, SET with sync always,
#      webdis+Redis and etcd when installed, each child's memory).
# BENCH_SECONDS sets the length of each HTTP run (default 10).  Outputs in
# build/bench/ and build/bench-http/; the table is build/bench/summary.txt.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
out="$top/build/bench"
secs=${BENCH_SECONDS:-10}
mkdir -p "$out"
start=$(date +%s)

echo "== 1. the engine against LevelDB (1M entries, 5 rounds)"
"$top/build/db_bench" --rounds=5 | tee "$out/engine.txt"
echo
echo "== 1b. random reads with every SST mapped (KVLSMMapSize 1G; 3 rounds)"
"$top/build/db_bench" --rounds=3 --benchmarks=fillrandom,readrandom --map_bytes=1073741824 \
    | tee "$out/mapped.txt"
echo
echo "== 2. scale: 10M entries (engine alone)"
"$top/build/db_bench" --num=10000000 --benchmarks=fillrandom,readrandom \
    --engines=kvlsm --reads=1000000 | tee "$out/scale.txt"
echo
echo "== 3. over HTTP"
sh "$top/bench/http.sh" "$secs"
http="$top/build/bench-http"
end=$(date +%s)

# ---- one table -----------------------------------------------------------
# row WHAT VALUE TARGET OP: OP is ge (value >= target) or le.
row() {
    awk -v w="$1" -v v="$2" -v t="$3" -v op="$4" 'BEGIN {
        if (v == "" || v == "-") { printf "%-44s %9s %9s  %s\n", w, "-", (op == "ge" ? ">= " : "<= ") t, "not measured"; exit }
        ok = (op == "ge") ? (v + 0 >= t + 0) : (v + 0 <= t + 0)
        printf "%-44s %9.2f %9s  %s\n", w, v, (op == "ge" ? ">= " : "<= ") t, ok ? "met" : "NOT MET" }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b + 0 > 0) printf "%.3f", a / b; else print "-" }'; }
rps() { [ -f "$http/$1.wrk" ] && awk '/^Requests\/sec/ { print $2 }' "$http/$1.wrk" || echo ""; }
# wrk's 99th percentile, in ms whatever unit wrk chose.
p99() {
    [ -f "$http/$1.wrk" ] || { echo ""; return; }
    awk '$1 == "99%" { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
                       m = (u == "us") ? v / 1000 : (u == "s") ? v * 1000 : (u == "m") ? v * 60000 : v
                       print m }' "$http/$1.wrk"
}
engine_ratio() { awk -v b="$1" '$1 == b { r = $4; sub(/x$/, "", r); print r }' "$out/engine.txt"; }

static=$(rps static)
non2xx=$(cat "$http"/kv-*.wrk 2> /dev/null | awk '/Non-2xx/ { n += $NF } END { print n + 0 }')
rr1=$(awk '$1 == "readrandom" { print $2 }' "$out/engine.txt")
rr10=$(awk '$1 == "readrandom" { print $2 }' "$out/scale.txt")
space=$(awk '/space on disk after the run: kvlsm/ { r = $NF; sub(/x$/, "", r); print r }' "$out/scale.txt")
group=$(awk '/group commit: kvlsm/ { r = $6; sub(/x$/, "", r); print r }' "$out/engine.txt")
# Largest child resident set (MiB) against 2 x the 4 MiB memtable + 64 MiB.
rss=$(awk '/^child/ { for (i = 1; i < NF; i++) if ($i == "VmRSS:" && $(i + 1) > m) m = $(i + 1) } END { print m + 0 }' "$http/results.txt")

{
    echo "make bench, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $((end - start)) s"
    printf '%-44s %9s %9s  %s\n' "ratio" "measured" "target" ""
    echo "-- HTTP (Apache event 2x32, wrk -t2 -c64 ${secs}s; static file $static req/s)"
    row "GET /get / static file" "$(ratio "$(rps kv-get)" "$static")" 1.0 ge
    row "GET p99 / static file p99" "$(ratio "$(p99 kv-get)" "$(p99 static)")" 1.0 le
    row "POST /set (sync interval) / static file" "$(ratio "$(rps kv-set-interval)" "$static")" 0.8 ge
    row "DELETE /del / static file" "$(ratio "$(rps kv-del)" "$static")" 0.8 ge
    row "POST /set (sync always) / static file" "$(ratio "$(rps kv-set-always)" "$static")" 0.3 ge
    row "non-2xx answers (count)" "$non2xx" 0 le
    row "GET / etcd range" "$(ratio "$(rps kv-get)" "$(rps etcd-range)")" 1.0 ge
    row "SET (sync always) / etcd put" "$(ratio "$(rps kv-set-always)" "$(rps etcd-put)")" 1.0 ge
    row "SET (sync interval) / etcd put" "$(ratio "$(rps kv-set-interval)" "$(rps etcd-put)")" 1.0 ge
    printf '%-44s %9s %9s  %s\n' "GET / webdis+Redis GET" "$(ratio "$(rps kv-get)" "$(rps webdis-get)")" "" "(reported)"
    printf '%-44s %9s %9s  %s\n' "SET (sync interval) / webdis+Redis SET" "$(ratio "$(rps kv-set-interval)" "$(rps webdis-set)")" "" "(reported)"
    echo "-- engine / LevelDB (1M entries, median of 5 rounds)"
    for b in fillseq fillrandom overwrite readrandom readseq deleterandom; do
        row "$b" "$(engine_ratio $b)" 1.0 ge
    done
    row "readmissing" "$(engine_ratio readmissing)" 2.0 ge
    row "fillsync8 / fillsync (group commit)" "$group" 4.0 ge
    printf '%-44s %9s %9s  %s\n' "readrandom, every SST mapped (KVLSMMapSize)" \
        "$(awk '$1 == "readrandom" { r = $4; sub(/x$/, "", r); print r }' "$out/mapped.txt")" "" "(reported)"
    printf '%-44s %9s %9s  %s\n' "fillsync" "$(engine_ratio fillsync)" "" "(reported)"
    printf '%-44s %9s %9s  %s\n' "fillsync8" "$(engine_ratio fillsync8)" "" "(reported)"
    echo "-- scale"
    row "10M readrandom slowdown (1M ops/s / 10M ops/s)" "$(ratio "$rr1" "$rr10")" 2.0 le
    row "10M space on disk / live key+value bytes" "$space" 1.5 le
    row "largest child RSS / (2 x memtable + 64 MiB)" "$(ratio "$rss" 72)" 1.0 le
} > "$out/summary.txt"
echo
cat "$out/summary.txt"
