#!/bin/sh
# bench/run.sh -- `make bench`: every measurement of the performance issue
# in one run, then one table of ratios against their targets.
#   1. the engine against LevelDB, 1M entries, each benchmark 5 times per
#      engine in alternating order (bench/db_bench.c --rounds=5);
#   1b. readrandom again with every SST mapped (--map_bytes=1G, the
#      KVLSMMapSize trade-off: no memory bound, no system call per read);
#   2. scale: 10M entries through the engine alone (fillrandom, then 1M
#      random reads; space on disk against the live data);
#   3. HTTP: bench/http.sh (static file, GET/SET by the default path, the
#      quick handler and pinned connections, DEL, SET with sync always,
#      webdis+Redis with and without AOF and etcd when installed, each
#      child's memory, h2load over h2c and h2 with TLS).
# BENCH_SECONDS sets the length of each HTTP run (default 5), BENCH_ROUNDS
# how many times the compared HTTP runs take turns (default 3).  Outputs
# in build/bench/ and build/bench-http/; the table is
# build/bench/summary.txt.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
out="$top/build/bench"
secs=${BENCH_SECONDS:-5}
rounds=${BENCH_ROUNDS:-3}
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
BENCH_ROUNDS=$rounds sh "$top/bench/http.sh" "$secs"
http="$top/build/bench-http"
end=$(date +%s)

# ---- one table -----------------------------------------------------------
runs="$http/runs.txt"
# row WHAT VALUE TARGET OP [NOTE]: OP is ge (value >= target) or le.
row() {
    awk -v w="$1" -v v="$2" -v t="$3" -v op="$4" -v note="${5:-}" 'BEGIN {
        tt = (op == "ge" ? ">= " : "<= ") t
        if (v == "" || v == "-") { printf "%-54s %9s %8s  %-8s %s\n", w, "-", tt, "not measured", note; exit }
        ok = (op == "ge") ? (v + 0 >= t + 0) : (v + 0 <= t + 0)
        printf "%-54s %9.2f %8s  %-8s %s\n", w, v, tt, ok ? "met" : "NOT MET", note }'
}
# reported WHAT VALUE [NOTE]: a figure without a target.
reported() { printf '%-54s %9s %8s  %-8s %s\n' "$1" "${2:--}" "" "" "(reported${3:+; $3})"; }
# rmed A B [FIELD]: the median over rounds of A's FIELD (3: req/s, 4: p99
# ms, 6: CPU us/request) over B's in the same round, then its range.
rmed() {
    [ -f "$runs" ] || { echo "- -"; return; }
    awk -v a="$1" -v b="$2" -v f="${3:-3}" '
        $1 == a { x[$2] = $f } $1 == b { y[$2] = $f }
        END { n = 0
              for (r in x) if ((r in y) && y[r] + 0 > 0) q[++n] = x[r] / y[r]
              if (n == 0) { print "- -"; exit }
              for (i = 2; i <= n; i++) for (j = i; j > 1 && q[j - 1] > q[j]; j--) { t = q[j]; q[j] = q[j - 1]; q[j - 1] = t }
              m = (n % 2) ? q[(n + 1) / 2] : (q[n / 2] + q[n / 2 + 1]) / 2
              printf "%.3f %.2f-%.2f\n", m, q[1], q[n] }' "$runs"
}
med() { rmed "$@" | cut -d' ' -f1; }
range() { rmed "$@" | awk '$2 != "-" { print "range " $2 }'; }
# The median of one run's FIELD over rounds.
val() {
    [ -f "$runs" ] || return 0
    awk -v a="$1" -v f="${2:-3}" '$1 == a { q[++n] = $f }
        END { if (n == 0) exit
              for (i = 2; i <= n; i++) for (j = i; j > 1 && q[j - 1] > q[j]; j--) { t = q[j]; q[j] = q[j - 1]; q[j - 1] = t }
              m = (n % 2) ? q[(n + 1) / 2] : (q[n / 2] + q[n / 2 + 1]) / 2
              printf (f == 3 ? "%.0f" : "%.1f"), m }' "$runs"
}
# A ratio row against a peer: the median of the per-round ratios, its range.
vs() { row "$1" "$(med "$2" "$3" "${6:-3}")" "$4" "$5" "$(range "$2" "$3" "${6:-3}")"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b + 0 > 0) printf "%.3f", a / b; else print "-" }'; }
engine_ratio() { awk -v b="$1" '$1 == b { r = $4; sub(/x$/, "", r); print r }' "$out/engine.txt"; }

non2xx=$(awk '$1 ~ /^kv-/ { n += $5 } END { print n + 0 }' "$runs" 2> /dev/null || echo "")
h2bad=$(awk '$1 ~ /^h2/ { n += $5; seen = 1 } END { if (seen) print n + 0 }' "$runs" 2> /dev/null || echo "")
rr1=$(awk '$1 == "readrandom" { print $2 }' "$out/engine.txt")
rr10=$(awk '$1 == "readrandom" { print $2 }' "$out/scale.txt")
space=$(awk '/space on disk after the run: kvlsm/ { r = $NF; sub(/x$/, "", r); print r }' "$out/scale.txt")
group=$(awk '/group commit: kvlsm/ { r = $6; sub(/x$/, "", r); print r }' "$out/engine.txt")
# Each child's private memory (KiB, bench/http.sh: RssAnon + Private_Dirty
# of file mappings) against 2 x the 4 MiB memtable + 32 MiB.
priv=$(awk '/^child/ && $4 > m { m = $4 } END { print m + 0 }' "$http/results.txt")
# The engine's own memory (RssAnon, KiB) and its SST indexes' share after
# the 10M reads: what grows with the data, which the HTTP run's 10,000
# keys cannot show.
priv10=$(awk '/kvlsm:.*private/ { for (i = 1; i < NF; i++) { if ($i == "private") p = $(i + 1); if ($i == "indexes") x = $(i + 1) } } END { print p + 0, x + 0 }' "$out/scale.txt")

{
    echo "make bench, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $((end - start)) s"
    printf '%-54s %9s %8s\n' "ratio" "measured" "target"
    echo "-- HTTP/1.1: Apache event 2x32, wrk -t2 -c64, $rounds rounds x ${secs}s taking turns;"
    echo "   median of the per-round ratios (range); static file $(val static) req/s;"
    echo "   1-minute load average before / after the compared runs: $(paste -sd/ "$http/load.txt" 2> /dev/null)"
    vs "GET /get / webdis+Redis GET" kv-get webdis-get 1.0 ge
    vs "GET /get, KVLSMQuickHandler / webdis+Redis GET" kv-get-quick webdis-get 1.0 ge
    vs "GET /get, quick + KVLSMPinConnections / webdis" kv-get-pin webdis-get 1.0 ge
    vs "POST /set (interval) / webdis SET, Redis AOF everysec" kv-set-interval webdis-set-aof 1.0 ge
    vs "POST /set, KVLSMQuickHandler / webdis SET, AOF" kv-set-quick webdis-set-aof 1.0 ge
    vs "POST /set, quick + pinned / webdis SET, AOF" kv-set-pin webdis-set-aof 1.0 ge
    reported "GET /get, KVLSMNextRequestWait off / webdis GET" "$(med kv-get-nowait webdis-get)" "$(range kv-get-nowait webdis-get)"
    reported "POST /set, KVLSMNextRequestWait off / webdis, AOF" "$(med kv-set-nowait webdis-set-aof)" "$(range kv-set-nowait webdis-set-aof)"
    reported "POST /set (interval) / webdis SET, no persistence" "$(med kv-set-interval webdis-set)" "$(range kv-set-interval webdis-set)"
    reported "POST /set, quick + pinned / webdis SET, no persist." "$(med kv-set-pin webdis-set)" "$(range kv-set-pin webdis-set)"
    vs "GET p99 / static file p99" kv-get static 1.0 le 4
    vs "GET p99, quick + pinned / static file p99" kv-get-pin static 1.0 le 4
    row "non-2xx answers (count, every kv run)" "$non2xx" 0 le
    vs "GET /get / static file" kv-get static 1.0 ge
    vs "POST /set (sync interval) / static file" kv-set-interval static 0.8 ge
    row "DELETE /del / static file" "$(ratio "$(val kv-del)" "$(val static)")" 0.8 ge
    row "POST /set (sync always) / static file" "$(ratio "$(val kv-set-always)" "$(val static)")" 0.3 ge
    row "GET / etcd range" "$(ratio "$(val kv-get)" "$(val etcd-range)")" 1.0 ge
    row "SET (sync always) / etcd put" "$(ratio "$(val kv-set-always)" "$(val etcd-put)")" 1.0 ge
    row "SET (sync interval) / etcd put" "$(ratio "$(val kv-set-interval)" "$(val etcd-put)")" 1.0 ge
    reported "GET, CPU us/request: default / quick / pinned / no wait" "$(val kv-get 6) / $(val kv-get-quick 6) / $(val kv-get-pin 6) / $(val kv-get-nowait 6)" "children"
    reported "GET, CPU us/request: webdis + redis" "$(val webdis-get 6)"
    reported "SET, CPU us/request: default / quick / pinned / no wait" "$(val kv-set-interval 6) / $(val kv-set-quick 6) / $(val kv-set-pin 6) / $(val kv-set-nowait 6)" "children"
    reported "SET, CPU us/request: webdis + redis (AOF)" "$(val webdis-set-aof 6)"
    echo "-- HTTP/2: h2load -t2 -c16 -m4 ${secs}s, the same store; req/s"
    reported "h2c: static file / GET /get / POST /set" "$(val h2c-static) / $(val h2c-get) / $(val h2c-set)"
    reported "h2 (TLS): static file / GET /get / POST /set" "$(val h2-tls-static) / $(val h2-tls-get) / $(val h2-tls-set)"
    row "h2 failed, errored, timed out or non-2xx (count)" "$h2bad" 0 le
    echo "-- engine / LevelDB (1M entries, median of 5 rounds)"
    row "readrandom" "$(engine_ratio readrandom)" 2.0 ge
    row "deleterandom" "$(engine_ratio deleterandom)" 1.2 ge
    for b in fillseq fillrandom overwrite readseq fillsync fillsync8; do
        row "$b" "$(engine_ratio $b)" 1.1 ge
    done
    row "readmissing" "$(engine_ratio readmissing)" 5.0 ge
    row "fillsync8 / fillsync (group commit)" "$group" 5.0 ge
    reported "readrandom, every SST mapped (KVLSMMapSize 1G)" \
        "$(awk '$1 == "readrandom" { r = $4; sub(/x$/, "", r); print r }' "$out/mapped.txt")"
    echo "-- scale and memory"
    row "10M readrandom slowdown (1M ops/s / 10M ops/s)" "$(ratio "$rr1" "$rr10")" 1.5 le
    row "10M space on disk / live key+value bytes" "$space" 1.5 le
    row "largest child private memory / (2 x memtable + 32M)" "$(ratio "$priv" $((2 * 4096 + 32768)))" 1.0 le \
        "$((priv / 1024)) MiB: RssAnon + file Private_Dirty"
    set -- $priv10
    row "10M: engine process private memory / (2 x memtable + 32M)" "$(ratio "$1" $((2 * 4096 + 32768)))" 1.0 le \
        "$(($1 / 1024)) MiB RssAnon, of it SST indexes $(($2 / 1024)) MiB"
} > "$out/summary.txt"
echo
cat "$out/summary.txt"
