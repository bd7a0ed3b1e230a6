#!/bin/sh
# bench/http.sh [SECONDS] -- the store over HTTP against what a user would
# pick instead, on this machine, in one run (make bench-http):
#   - the same Apache serving a 20-byte static file (the ceiling of its
#     request path);
#   - GET /get and POST /set with KVLSMSync interval, by the default path,
#     by the quick handler (a second port of the same Apache, same
#     children, same store, with KVLSMQuickHandler on), and by the quick
#     handler on pinned connections (a third port, KVLSMPinConnections on
#     too), and by the default path with KVLSMNextRequestWait off (a
#     fourth port: the event MPM's own hand-off after every answer);
#     DELETE /del; POST /set on a second Apache with KVLSMSync
#     always;
#   - webdis in front of Redis without persistence, webdis in front of a
#     Redis with appendonly yes + appendfsync everysec (the promise of
#     KVLSMSync interval), and etcd's JSON gateway, from Debian's packages,
#     if installed;
#   - each child's private memory after the HTTP/1.1 load;
#   - h2load (nghttp2-client) against the same store and the static file,
#     over h2c and over h2 with TLS (mod_http2, mod_ssl, a self-signed
#     certificate made here).
# The machine is shared and noisy, so what is compared runs side by side:
# every server is up at once, and a group of runs (static, kv GET, quick
# GET, pinned GET, GET without the wait, webdis GET) takes turns BENCH_ROUNDS times (default 3), SECONDS
# each (default 5); bench/run.sh takes the median of the per-round ratios.
# Apache: event MPM, 2 children x 32 threads, KeepAlive on; load: wrk -t2
# -c64 (etcd: -t1 -c32) on loopback; 10,000 preloaded keys, 100-byte
# values.  Everything listens on 127.0.0.1 and is stopped by its PID.
# Results: build/bench-http/runs.txt, one line per run:
#   NAME ROUND REQ_PER_S P99_MS NON2XX CPU_US_PER_REQUEST
# (CPU: user + system time of the serving processes -- Apache's children,
# or webdis + redis, or etcd -- over the run, per request answered), and
# results.txt, the same for people.  PROFILE=1 also records a perf profile
# of the children under GET and SET, default path and quick handler
# (bench/profile.sh).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-5}
rounds=${BENCH_ROUNDS:-3}
work="$top/build/bench-http"
lua="$top/bench/wrk/kv.lua"
rm -rf "$work"
mkdir -p "$work/htdocs"
printf '0123456789abcdefghi\n' > "$work/htdocs/static.txt"
results="$work/results.txt"
runs="$work/runs.txt"
: > "$results"
: > "$runs"
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

# CPU ticks (user + system) of a list of processes.
ticks() {
    t=0
    for p in $1; do
        [ -r "/proc/$p/stat" ] || continue
        t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
    done
    echo $t
}
hz=$(getconf CLK_TCK)

# run NAME ROUND "PIDS" THREADS CONNS URL [wrk script args...]
run() {
    name=$1 round=$2 who=$3 t=$4 c=$5 url=$6
    shift 6
    out="$work/$name.r$round.wrk"
    t0=$(ticks "$who")
    if [ $# -gt 0 ]; then
        wrk -t"$t" -c"$c" -d"${secs}s" --latency -s "$lua" "$url" -- "$@" > "$out" 2>&1 || true
    else
        wrk -t"$t" -c"$c" -d"${secs}s" --latency "$url" > "$out" 2>&1 || true
    fi
    t1=$(ticks "$who")
    awk -v n="$name" -v r="$round" -v dt=$((t1 - t0)) -v hz="$hz" '
        /requests in/ { total = $1 }
        /^Requests\/sec/ { rps = $2 }
        $1 == "99%" { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
                      p99 = (u == "us") ? v / 1000 : (u == "s") ? v * 1000 : (u == "m") ? v * 60000 : v }
        /Non-2xx/ { bad = $NF }
        /Socket errors/ { sock = $0; sub(/^ *Socket errors: */, "", sock) }
        END { cpu = total > 0 ? dt / hz * 1e6 / total : 0
              printf "%s %d %.0f %.2f %d %.1f\n", n, r, rps, p99, bad + 0, cpu > "/dev/stderr"
              printf "%-24s r%d %8.0f req/s  p99 %7.2f ms  non-2xx %d  CPU %5.1f us/req  %s\n",
                     n, r, rps, p99, bad + 0, cpu, sock }' "$out" 2>> "$runs" | tee -a "$results"
}

children() { pgrep -P "$1" apache2 | tr '\n' ' '; }

# ---- Apache with the module --------------------------------------------
# start_apache NAME SYNC [EXTRA_CONF_FILE] -> sets port, qport, pport, apid
start_apache() {
    name=$1 sync=$2 extra=${3:-/dev/null}
    d="$work/$name"
    mkdir -p "$d/data"
    port=$(free_port)
    qport=$(free_port)
    pport=$(free_port)
    nport=$(free_port)
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
# The same store and children, by the quick handler, and by the quick
# handler with pinned connections.
Listen 127.0.0.1:$qport
<VirtualHost 127.0.0.1:$qport>
    KVLSMQuickHandler on
</VirtualHost>
Listen 127.0.0.1:$pport
<VirtualHost 127.0.0.1:$pport>
    KVLSMQuickHandler on
    KVLSMPinConnections on
</VirtualHost>
# The default path without the short wait for the next request (the
# event MPM's own behaviour).
Listen 127.0.0.1:$nport
<VirtualHost 127.0.0.1:$nport>
    KVLSMNextRequestWait off
</VirtualHost>
CONF
    cat "$extra" >> "$d/httpd.conf"
    /usr/sbin/apache2 -f "$d/httpd.conf" -k start
    wait_port "$port"
    apid=$(cat "$d/httpd.pid")
    pids="$pids $apid"
}

stop_apache() {   # stop_apache PID
    kill "$1"
    i=0
    while kill -0 "$1" 2>/dev/null && [ $i -lt 400 ]; do i=$((i + 1)); sleep 0.05; done
}

preload() {   # preload URL: 10,000 keys k0..k9999, then check the ends are there
    wrk -t2 -c64 -d3s -s "$lua" "$1" -- load 10000 2 > "$work/preload.wrk" 2>&1
    for k in k0 k9999; do
        curl -sf "$1/get?key=$k" > /dev/null || { echo "preload missed $k" >&2; exit 1; }
    done
}

echo "bench/http.sh: $rounds rounds of ${secs}s per run, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)" | tee -a "$results"
# How busy the machine was (others' work too): 1-minute load average.
cut -d' ' -f1 /proc/loadavg > "$work/load.txt"
start_apache interval interval
ipid=$apid
kv="http://127.0.0.1:$port/kv"
kvq="http://127.0.0.1:$qport/kv"
kvp="http://127.0.0.1:$pport/kv"
kvn="http://127.0.0.1:$nport/kv"
static="http://127.0.0.1:$port/static.txt"
idir="$work/interval"
iport=$port
start_apache always always
apid_always=$apid
kva="http://127.0.0.1:$port/kv"

# ---- peers -------------------------------------------------------------
webdis_up=0
if command -v redis-server > /dev/null && command -v webdis > /dev/null; then
    # start_redis NAME ARGS... -> sets wport, wpids (webdis + redis)
    start_redis() {
        rname=$1
        shift
        rport=$(free_port)
        mkdir -p "$work/$rname"
        redis-server --port "$rport" --bind 127.0.0.1 --save "" --dir "$work/$rname" "$@" \
            --daemonize no > "$work/$rname/redis.log" 2>&1 &
        rpid=$!
        pids="$pids $rpid"
        wait_port "$rport"
        wport=$(free_port)
        cat > "$work/$rname/webdis.json" <<JSON
{ "redis_host": "127.0.0.1", "redis_port": $rport, "http_host": "127.0.0.1",
  "http_port": $wport, "threads": 4, "pool_size": 20, "daemonize": false,
  "verbosity": 0, "logfile": "$work/$rname/webdis.log" }
JSON
        webdis "$work/$rname/webdis.json" > /dev/null 2>&1 &
        wpid=$!
        pids="$pids $wpid"
        wait_port "$wport"
        wpids="$wpid $rpid"
    }
    start_redis redis --appendonly no
    wd="http://127.0.0.1:$wport"
    wd_pids=$wpids
    start_redis redis-aof --appendonly yes --appendfsync everysec
    wda="http://127.0.0.1:$wport"
    wda_pids=$wpids
    webdis_up=1
else
    echo "webdis/redis-server not installed: peers skipped (apt-get install webdis redis-server)" | tee -a "$results"
fi
etcd_up=0
if command -v etcd > /dev/null; then
    eport=$(free_port)
    epeer=$(free_port)
    etcd --data-dir "$work/etcd" --name bench \
        --listen-client-urls "http://127.0.0.1:$eport" --advertise-client-urls "http://127.0.0.1:$eport" \
        --listen-peer-urls "http://127.0.0.1:$epeer" --initial-advertise-peer-urls "http://127.0.0.1:$epeer" \
        --initial-cluster "bench=http://127.0.0.1:$epeer" > "$work/etcd.log" 2>&1 &
    epid=$!
    pids="$pids $epid"
    wait_port "$eport"
    etcd_up=1
else
    echo "etcd not installed: skipped (apt-get install etcd-server)" | tee -a "$results"
fi

# ---- preload and warm up -----------------------------------------------
wrk -t2 -c64 -d2s "$static" > /dev/null 2>&1
preload "$kv"
preload "$kva"
if [ $webdis_up = 1 ]; then
    for w in "$wd" "$wda"; do
        wrk -t2 -c64 -d3s -s "$lua" "$w" -- wset 10000 > /dev/null 2>&1
    done
fi
# The children, once they are all up and have served.
ich=$(children "$ipid")
ach=$(children "$apid_always")

if [ -n "${PROFILE:-}" ]; then
    sh "$top/bench/profile.sh" "$ipid" "$work" 4 get:"$kv":get set:"$kv":set \
        get-quick:"$kvq":get set-quick:"$kvq":set get-pin:"$kvp":get set-pin:"$kvp":set \
        || echo "profile failed" >&2
fi

# ---- 1. reads: static file, GET by both paths, webdis GET ---------------
r=1
while [ $r -le "$rounds" ]; do
    run static $r "$ich" 2 64 "$static"
    run kv-get $r "$ich" 2 64 "$kv" get 10000
    run kv-get-quick $r "$ich" 2 64 "$kvq" get 10000
    run kv-get-pin $r "$ich" 2 64 "$kvp" get 10000
    run kv-get-nowait $r "$ich" 2 64 "$kvn" get 10000
    [ $webdis_up = 1 ] && run webdis-get $r "$wd_pids" 2 64 "$wd" wget 10000
    r=$((r + 1))
done
# ---- 2. writes: SET by both paths, webdis SET with and without AOF ------
r=1
while [ $r -le "$rounds" ]; do
    run kv-set-interval $r "$ich" 2 64 "$kv" set 10000
    run kv-set-quick $r "$ich" 2 64 "$kvq" set 10000
    run kv-set-pin $r "$ich" 2 64 "$kvp" set 10000
    run kv-set-nowait $r "$ich" 2 64 "$kvn" set 10000
    if [ $webdis_up = 1 ]; then
        run webdis-set-aof $r "$wda_pids" 2 64 "$wda" wset 10000
        run webdis-set $r "$wd_pids" 2 64 "$wd" wset 10000
    fi
    r=$((r + 1))
done
cut -d' ' -f1 /proc/loadavg >> "$work/load.txt"
# ---- 3. deletes, once: they take keys written for them, each once.  The
# fill runs three times as long with 8 connections: with 64, event closes
# some kept-alive connections when a child holds more than its 32 threads
# (the socket errors wrk reports), and a fill request lost that way would
# leave a key for the delete run to miss.
secs_run=$secs
secs=$((secs * 3))
run kv-fill-for-del 1 "$ich" 2 8 "$kv" fill
secs=$secs_run
run kv-del 1 "$ich" 2 64 "$kv" del
# ---- 4. synced writes against etcd --------------------------------------
run kv-set-always 1 "$ach" 2 64 "$kva" set 10000
if [ $etcd_up = 1 ]; then
    run etcd-put 1 "$epid" 1 32 "http://127.0.0.1:$eport" eput 10000
    run etcd-range 1 "$epid" 1 32 "http://127.0.0.1:$eport" erange 10000
    kill "$epid"
fi
if [ $webdis_up = 1 ]; then
    # shellcheck disable=SC2086
    kill $wd_pids $wda_pids
fi
stop_apache "$apid_always"

# ---- memory: each child's private memory after all of that --------------
# RssAnon (status) plus the Private_Dirty of its file mappings (smaps:
# written pages of private file mappings; anonymous pages, dirty too,
# are in RssAnon already, so smaps_rollup's Private_Dirty, which counts
# both, is not added whole).  Clean file pages (SSTs read through a
# mapping, libraries) are the page cache, shared and reclaimable.
for c in $ich; do
    anon=$(awk '/^RssAnon:/ { print $2 }' "/proc/$c/status")
    filedirty=$(awk '/^[0-9a-f]+-[0-9a-f]+ / { file = ($6 != "" && $6 !~ /^\[/) }
                     file && /^Private_Dirty:/ { s += $2 } END { print s + 0 }' "/proc/$c/smaps")
    rollup=$(awk '/^Private_Dirty:/ { print $2 }' "/proc/$c/smaps_rollup")
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$c/status")
    printf 'child %s  private %d KiB  RssAnon %d KiB  file Private_Dirty %d KiB  (smaps_rollup Private_Dirty %d KiB, VmRSS %d KiB)\n' \
        "$c" $((anon + filedirty)) "$anon" "$filedirty" "$rollup" "$rss" | tee -a "$results"
done
stop_apache "$ipid"

# ---- 5. HTTP/2: the same store (the same data directory) -----------------
mods=/usr/lib/apache2/modules
if command -v h2load > /dev/null && [ -f "$mods/mod_http2.so" ] && [ -f "$mods/mod_ssl.so" ] \
   && command -v openssl > /dev/null; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
        -keyout "$work/key.pem" -out "$work/cert.pem" -addext subjectAltName=IP:127.0.0.1 \
        > /dev/null 2>&1
    h2c_port=$(free_port)
    tls_port=$(free_port)
    cat > "$work/h2.conf" <<CONF
LoadModule socache_shmcb_module $mods/mod_socache_shmcb.so
LoadModule ssl_module $mods/mod_ssl.so
LoadModule http2_module $mods/mod_http2.so
Listen 127.0.0.1:$h2c_port
<VirtualHost 127.0.0.1:$h2c_port>
    Protocols h2c http/1.1
</VirtualHost>
Listen 127.0.0.1:$tls_port
<VirtualHost 127.0.0.1:$tls_port>
    Protocols h2 http/1.1
    SSLEngine on
    SSLCertificateFile "$work/cert.pem"
    SSLCertificateKeyFile "$work/key.pem"
</VirtualHost>
CONF
    # The same configuration and data directory as the runs above, with
    # two more ports.
    rm -f "$idir/httpd.pid"
    sed -i '/^# The same store and children/,$d' "$idir/httpd.conf"
    cat "$work/h2.conf" >> "$idir/httpd.conf"
    /usr/sbin/apache2 -f "$idir/httpd.conf" -k start
    wait_port "$h2c_port"
    wait_port "$tls_port"
    hpid=$(cat "$idir/httpd.pid")
    pids="$pids $hpid"
    hch=$(children "$hpid")
    awk 'BEGIN { srand(13); for (i = 0; i < 1000; i++) printf "k%d\n", int(rand() * 10000) }' \
        > "$work/keys.txt"
    printf '{"key":"h2","value":"%s"}' "$(printf '%0100d' 0 | tr 0 v)" > "$work/set.json"
    # h2run NAME BASE PATH|@keys [h2load args...]
    h2run() {
        name=$1 base=$2 what=$3
        shift 3
        out="$work/$name.h2load"
        if [ "$what" = @keys ]; then
            sed "s|^|$base/kv/get?key=|" "$work/keys.txt" > "$work/uris.txt"
            set -- "$@" -i "$work/uris.txt"
        else
            set -- "$@" "$base$what"
        fi
        t0=$(ticks "$hch")
        h2load -t2 -c16 -m4 -D "$secs" --warm-up-time=1 "$@" > "$out" 2>&1 || true
        t1=$(ticks "$hch")
        awk -v n="$name" -v dt=$((t1 - t0)) -v hz="$hz" '
            /^finished in/ { rps = $4 }
            /^requests:/ { done = $6; bad = $10 + $12 + $14 }
            /^status codes:/ { non2xx = $5 + $7 + $9 }
            END { cpu = done > 0 ? dt / hz * 1e6 / done : 0
                  printf "%s 1 %.0f - %d %.1f\n", n, rps, bad + non2xx, cpu > "/dev/stderr"
                  printf "%-24s    %8.0f req/s  failed+errored+timeout %d  non-2xx %d  CPU %5.1f us/req\n",
                         n, rps, bad, non2xx, cpu }' "$out" 2>> "$runs" | tee -a "$results"
    }
    h2c="http://127.0.0.1:$h2c_port"
    h2s="https://127.0.0.1:$tls_port"
    h2load -n 100 -c 1 "$h2c/static.txt" > /dev/null 2>&1 || true
    h2run h2c-static "$h2c" /static.txt
    h2run h2c-get "$h2c" @keys
    h2run h2c-set "$h2c" /kv/set -d "$work/set.json"
    h2run h2-tls-static "$h2s" /static.txt
    h2run h2-tls-get "$h2s" @keys
    h2run h2-tls-set "$h2s" /kv/set -d "$work/set.json"
    stop_apache "$hpid"
else
    echo "h2load, mod_http2, mod_ssl or openssl missing: HTTP/2 skipped (apt-get install nghttp2-client)" \
        | tee -a "$results"
fi
