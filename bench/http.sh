#!/bin/sh
# bench/http.sh [SECONDS] -- the store over HTTP against what a user would
# pick instead, on this machine, in one run (make bench-http):
#   - the same Apache serving a 20-byte static file (the ceiling);
#   - GET /get, POST /set and DELETE /del with KVLSMSync interval, and POST
#     /set with KVLSMSync always;
#   - webdis in front of Redis (no persistence) and etcd's JSON gateway,
#     from Debian's packages, if installed.
# Apache: event MPM, 2 children x 32 threads, KeepAlive on; load: wrk -t2
# -c64 (etcd: -t1 -c32) for SECONDS (default 10) on loopback; 10,000
# preloaded keys, 100-byte values.  Everything listens on 127.0.0.1 and is
# stopped by its PID.  Results: build/bench-http/results.txt.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-10}
work="$top/build/bench-http"
lua="$top/bench/wrk/kv.lua"
rm -rf "$work"
mkdir -p "$work/htdocs"
printf '0123456789abcdefghi\n' > "$work/htdocs/static.txt"
results="$work/results.txt"
: > "$results"
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

free_port() {
    perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 1, ReuseAddr => 1)->sockport'
}

wait_port() {   # bounded: 20 s
    i=0
    while ! perl -MIO::Socket::INET -e 'exit !IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => $ARGV[0])' "$1"; do
        i=$((i + 1))
        [ $i -lt 400 ] || { echo "nothing listens on $1" >&2; exit 1; }
        sleep 0.05
    done
}

# run NAME THREADS CONNS URL [wrk script args...]
run() {
    name=$1 t=$2 c=$3 url=$4
    shift 4
    out="$work/$name.wrk"
    if [ $# -gt 0 ]; then
        wrk -t"$t" -c"$c" -d"${secs}s" --latency -s "$lua" "$url" -- "$@" > "$out" 2>&1
    else
        wrk -t"$t" -c"$c" -d"${secs}s" --latency "$url" > "$out" 2>&1
    fi
    rps=$(awk '/^Requests\/sec/ {print int($2)}' "$out")
    p99=$(awk '$1 == "99%" {print $2}' "$out")
    bad=$(awk '/Non-2xx/ {print $NF}' "$out")
    errs=$(awk '/Socket errors/ {print $0}' "$out")
    printf '%-22s %9s req/s  p99 %-9s non-2xx %s %s\n' "$name" "$rps" "$p99" "${bad:-0}" "$errs" | tee -a "$results"
}

rps_of() { awk '/^Requests\/sec/ {print int($2)}' "$work/$1.wrk"; }

# ---- Apache with the module --------------------------------------------
start_apache() {   # start_apache NAME SYNC -> sets port, apid
    name=$1 sync=$2
    d="$work/$name"
    mkdir -p "$d/data"
    port=$(free_port)
    user=""
    if [ "$(id -u)" = 0 ]; then
        chown -R www-data:www-data "$d/data"
        user="User www-data
Group www-data"
    fi
    cat > "$d/httpd.conf" <<CONF
ServerRoot "$d"
PidFile "$d/httpd.pid"
ErrorLog "$d/error.log"
LogLevel warn
DefaultRuntimeDir "$d"
ServerName 127.0.0.1
$user
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule mime_module /usr/lib/apache2/modules/mod_mime.so
LoadModule kvlsm_module "$top/.libs/mod_kvlsm.so"
TypesConfig /etc/mime.types
StartServers 2
ServerLimit 2
ThreadLimit 32
ThreadsPerChild 32
MaxRequestWorkers 64
MinSpareThreads 64
MaxSpareThreads 64
KeepAlive On
MaxKeepAliveRequests 0
Listen 127.0.0.1:$port
DocumentRoot "$work/htdocs"
<Directory "$work/htdocs">
    Require all granted
</Directory>
KVLSMDataDir "$d/data"
KVLSMSync $sync
<Location "/kv">
    SetHandler kvlsm
</Location>
CONF
    /usr/sbin/apache2 -f "$d/httpd.conf" -k start
    wait_port "$port"
    apid=$(cat "$d/httpd.pid")
    pids="$pids $apid"
}

stop_apache() {
    kill "$apid"
    i=0
    while kill -0 "$apid" 2>/dev/null && [ $i -lt 400 ]; do i=$((i + 1)); sleep 0.05; done
}

preload() {   # 10,000 keys k0..k9999, then check the ends are there
    wrk -t2 -c64 -d3s -s "$lua" "http://127.0.0.1:$port/kv" -- load 10000 2 > "$work/preload.wrk" 2>&1
    for k in k0 k9999; do
        curl -sf "http://127.0.0.1:$port/kv/get?key=$k" > /dev/null || { echo "preload missed $k" >&2; exit 1; }
    done
}

echo "bench/http.sh: ${secs}s per run, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)" | tee -a "$results"
start_apache interval interval
kv="http://127.0.0.1:$port/kv"
# Warm up (children start their threads), then the ceiling.
wrk -t2 -c64 -d3s "http://127.0.0.1:$port/static.txt" > /dev/null 2>&1
run static 2 64 "http://127.0.0.1:$port/static.txt"
preload
if [ -n "${PROFILE:-}" ] && command -v perf > /dev/null; then
    # A CPU profile of the children while they answer GETs.
    children=$(pgrep -d, -P "$apid" apache2 || true)
    perf record -q -g -o "$work/perf.data" -p "$children" -- sleep $((secs / 2)) 2> /dev/null &
    perfpid=$!
fi
run kv-get 2 64 "$kv" get 10000
if [ -n "${perfpid:-}" ]; then
    wait "$perfpid" || true
    perf report -i "$work/perf.data" --no-children --percent-limit 1.5 --stdio 2> /dev/null \
        | grep -v '^$' | head -80 > "$work/profile.txt" || true
    echo "CPU profile of GET: $work/profile.txt" | tee -a "$results"
fi
run kv-set-interval 2 64 "$kv" set 10000
# Deletes take keys written for them, each once.  The fill runs three
# times as long with 8 connections: with 64, event closes some kept-alive
# connections when a child holds more than its 32 threads (the socket
# errors wrk reports), and a fill request lost that way would leave a key
# for the delete run to miss.
secs_run=$secs
secs=$((secs * 3))
run kv-fill-for-del 2 8 "$kv" fill
secs=$secs_run
run kv-del 2 64 "$kv" del
# Memory: each child's resident set after all of that (4 MiB memtable):
# anonymous memory, and file pages (the SSTs it maps, shared with the
# page cache and the other children).
for c in $(pgrep -P "$apid" apache2 || true); do
    awk -v c="$c" 'BEGIN { printf "child %s", c }
                   /^(VmRSS|RssAnon|RssFile):/ { printf "  %s %d MiB", $1, $2 / 1024 }
                   END { print "" }' "/proc/$c/status" | tee -a "$results"
done
stop_apache

start_apache always always
kv="http://127.0.0.1:$port/kv"
preload
run kv-set-always 2 64 "$kv" set 10000
stop_apache

# ---- peers -------------------------------------------------------------
if command -v redis-server > /dev/null && command -v webdis > /dev/null; then
    rport=$(free_port)
    redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no \
        --daemonize no > "$work/redis.log" 2>&1 &
    rpid=$!
    pids="$pids $rpid"
    wait_port "$rport"
    wport=$(free_port)
    cat > "$work/webdis.json" <<JSON
{ "redis_host": "127.0.0.1", "redis_port": $rport, "http_host": "127.0.0.1",
  "http_port": $wport, "threads": 4, "pool_size": 20, "daemonize": false,
  "verbosity": 0, "logfile": "$work/webdis.log" }
JSON
    webdis "$work/webdis.json" > /dev/null 2>&1 &
    wpid=$!
    pids="$pids $wpid"
    wait_port "$wport"
    run webdis-set 2 64 "http://127.0.0.1:$wport" wset 10000
    run webdis-get 2 64 "http://127.0.0.1:$wport" wget 10000
    kill "$wpid" "$rpid"
else
    echo "webdis/redis-server not installed: peers skipped (apt-get install webdis redis-server)" | tee -a "$results"
fi
if command -v etcd > /dev/null; then
    eport=$(free_port)
    pport=$(free_port)
    etcd --data-dir "$work/etcd" --name bench \
        --listen-client-urls "http://127.0.0.1:$eport" --advertise-client-urls "http://127.0.0.1:$eport" \
        --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
        --initial-cluster "bench=http://127.0.0.1:$pport" > "$work/etcd.log" 2>&1 &
    epid=$!
    pids="$pids $epid"
    wait_port "$eport"
    run etcd-put 1 32 "http://127.0.0.1:$eport" eput 10000
    run etcd-range 1 32 "http://127.0.0.1:$eport" erange 10000
    kill "$epid"
else
    echo "etcd not installed: skipped (apt-get install etcd-server)" | tee -a "$results"
fi

# ---- ratios ------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
static=$(rps_of static)
{
    echo "ratios to the static file ($static req/s):"
    for n in kv-get kv-set-interval kv-del kv-set-always; do
        printf '  %-18s %s x\n' "$n" "$(ratio "$(rps_of $n)" "$static")"
    done
    if [ -f "$work/webdis-get.wrk" ]; then
        printf '  kv-get / webdis-get        %s x\n' "$(ratio "$(rps_of kv-get)" "$(rps_of webdis-get)")"
        printf '  kv-set-interval / webdis-set %s x\n' "$(ratio "$(rps_of kv-set-interval)" "$(rps_of webdis-set)")"
    fi
    if [ -f "$work/etcd-put.wrk" ]; then
        printf '  kv-get / etcd-range        %s x\n' "$(ratio "$(rps_of kv-get)" "$(rps_of etcd-range)")"
        printf '  kv-set-always / etcd-put   %s x\n' "$(ratio "$(rps_of kv-set-always)" "$(rps_of etcd-put)")"
    fi
} | tee -a "$results"
