#!/bin/sh
# package.sh -- `make package-test`, as root: the Debian package against
# this machine's own Apache.  Builds it (make deb), installs it with
# apt-get, starts Apache (or restarts it gracefully if it was running),
# stores and reads a key on 127.0.0.1:8081 and finds it in /var/lib/kvlsm;
# removes the package (module disabled, the port closed), stops Apache by
# its PID file if it was not running before, purges the package (the data
# goes), and checks /etc/apache2 and /var/lib/apache2 are as they were.
# Whatever fails, the package is purged and Apache left running or
# stopped as it was found.  It skips, saying why, when not root or when
# the machine already has a kvlsm (the package, `make install`, the data
# directory) or port 8081 taken.  Every wait has a deadline.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
name="t/package.sh"
if [ "$(id -u)" != 0 ]; then
    echo "$name skipped: it installs a package into the system Apache with apt-get, run make test as root"
    exit 0
fi

pkg=libapache2-mod-kvlsm
datadir=/var/lib/kvlsm
url=http://127.0.0.1:8081
pidfile=$(set +u; . /etc/apache2/envvars && echo "$APACHE_PID_FILE")
errlog=$(set +u; . /etc/apache2/envvars && echo "$APACHE_LOG_DIR")/error.log
export DEBIAN_FRONTEND=noninteractive
started=$(date +%s)
n=0

skip() { echo "$name skipped: $*"; exit 0; }
ok() { n=$((n + 1)); echo "ok $n - $*"; }
fail() {
    echo "not ok $((n + 1)) - $*"
    if [ -s "${tmp:-/nonexistent}/body" ]; then
        echo "--- the last answer's body ---"
        head -c 2000 "$tmp/body"; echo
    fi
    if [ -f "$errlog" ]; then
        echo "--- last lines of $errlog ---"
        tail -15 "$errlog"
    fi
    exit 1
}
check() { what=$1; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }
not() { ! "$@"; }

installed() { dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed'; }
known() { dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -qv 'not-installed'; }
# The system Apache's parent: its PID file names a live process (an
# exited one that no one reaped yet counts as gone).
apache_pid() {
    [ -s "$pidfile" ] || return 1
    p=$(cat "$pidfile")
    [ -r "/proc/$p/stat" ] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$p/stat" 2>/dev/null || return 1
    echo "$p"
}
port_taken() { ss -Hltn "sport = :$1" | grep -q .; }
# Runs "$@" until it succeeds, for at most $2 seconds.
wait_for() {
    what=$1; secs=$2; shift 2
    end=$(($(date +%s) + secs))
    until "$@"; do
        [ "$(date +%s)" -lt "$end" ] || fail "$what within ${secs}s"
        sleep 0.1
    done
}
code() { curl -s -o "$tmp/body" -w '%{http_code}' --max-time 5 "$@" || true; }
store_answers() { [ "$(code "$url/get?key=probe")" != 000 ]; }
store_closed() { [ "$(code "$url/get?key=probe")" = 000 ]; }
apache_running() { apache_pid >/dev/null; }
apache_gone() { ! apache_running; }
apt_get() {
    if ! apt-get -y -o DPkg::Lock::Timeout=120 "$@" > "$tmp/apt.log" 2>&1; then
        cat "$tmp/apt.log"
        return 1
    fi
}
# apache2ctl, its output kept for a failure (it warns about ServerName).
ctl() {
    if ! apache2ctl "$@" > "$tmp/ctl.log" 2>&1; then
        cat "$tmp/ctl.log"
        return 1
    fi
}
# Stops Apache by its PID file: SIGTERM to the parent, which stops its
# children and exits; SIGKILL after 30 s (its children then leave too).
stop_apache() {
    p=$(apache_pid) || return 0
    kill -TERM "$p"
    end=$(($(date +%s) + 30))
    while apache_running; do
        if [ "$(date +%s)" -ge "$end" ]; then
            kill -KILL "$p"
            fail "Apache (pid $p) stops on SIGTERM within 30s (it got SIGKILL)"
        fi
        sleep 0.1
    done
}
# a2dismod makes /var/lib/apache2/module/disabled_by_{admin,maint} (its
# record of who disabled what) and a purge empties them but leaves them:
# those this test made go again.
a2state=/var/lib/apache2/module
a2dirs() { for d in "$a2state/disabled_by_admin" "$a2state/disabled_by_maint"; do [ -d "$d" ] || echo "$d"; done; }
snapshot() {
    find /etc/apache2 /var/lib/apache2 -printf '%M %u:%g %p %l\n' | LC_ALL=C sort
    find /etc/apache2 /var/lib/apache2 -type f -exec md5sum {} + | LC_ALL=C sort -k2
}

known && skip "$pkg is already on this machine (dpkg: $(dpkg-query -W -f='${Status}' "$pkg")); this test purges it"
for f in /usr/lib/apache2/modules/mod_kvlsm.so /etc/apache2/mods-available/kvlsm.load \
         /etc/apache2/mods-available/kvlsm.conf "$datadir"; do
    [ -e "$f" ] && skip "$f exists (make install, or a store): the package would take it over and purge it"
done
port_taken 8081 && skip "port 8081 is in use: $(ss -Hltnp 'sport = :8081' | head -1)"
was_running=
apache_running && was_running=1
if [ -z "$was_running" ] && port_taken 80; then
    skip "the system Apache is stopped and port 80, which its ports.conf listens on, is in use"
fi

tmp=$(mktemp -d /tmp/kvlsm-pkg.XXXXXX)
snapshot > "$tmp/before"
new_a2dirs=$(a2dirs)
cleanup() {
    rc=$?
    set +e
    [ "$rc" = 0 ] && { rm -rf "$tmp"; exit 0; }
    if known; then
        echo "$name: purging $pkg after a failure"
        apt-get -y -o DPkg::Lock::Timeout=120 purge "$pkg" > /dev/null 2>&1
        rm -rf "$datadir"
    fi
    for d in $new_a2dirs; do rmdir "$d" 2>/dev/null; done
    if [ -n "$was_running" ]; then
        if apache_running; then ctl graceful; else ctl start; fi
    else
        stop_apache
    fi
    rm -rf "$tmp"
    exit $rc
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

make -C "$top" --no-print-directory deb
deb=$(ls "$top"/build/${pkg}_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || fail "make deb left build/${pkg}_*.deb"

# Install: the module enabled the Debian way, the store's directory made.
apt_get install --no-install-recommends "$deb" || fail "apt-get install $deb"
check "$pkg is installed" installed
check "mods-enabled/kvlsm.load and kvlsm.conf are links into mods-available" \
    test -L /etc/apache2/mods-enabled/kvlsm.load -a -L /etc/apache2/mods-enabled/kvlsm.conf \
         -a -f /etc/apache2/mods-available/kvlsm.load -a -f /etc/apache2/mods-available/kvlsm.conf
check "a2query -m kvlsm: enabled" a2query -q -m kvlsm
check "the packaged kvlsm.conf keeps the store in $datadir" \
    grep -Eq "^[[:space:]]*KVLSMDataDir[[:space:]]+$datadir\$" /etc/apache2/mods-available/kvlsm.conf
check "$datadir is a directory owned by www-data" \
    test -d "$datadir" -a "$(stat -c %U:%G "$datadir")" = www-data:www-data
check "kvlsm-check is in /usr/bin" test -x /usr/bin/kvlsm-check

# Serve: started, or restarted if it runs (the package's postinst may
# have restarted it already, where invoke-rc.d may).
if apache_running; then
    ctl graceful || fail "apache2ctl graceful"
else
    ctl start || fail "apache2ctl start"
fi
wait_for "the store answers on $url" 30 store_answers
check "Apache runs (pid $(apache_pid || echo none), $pidfile)" apache_running
addrs=$(ss -Hltn 'sport = :8081' | awk '{print $4}' | sort -u | tr '\n' ' ')
check "port 8081 is open on 127.0.0.1 only (listening: $addrs)" test "$addrs" = "127.0.0.1:8081 "
check "an unknown key: 404" test "$(code "$url/get?key=package-test")" = 404
check "POST /set: 200" test "$(code -d '{"key":"package-test","value":"from the .deb"}' "$url/set")" = 200
check "GET /get: 200" test "$(code "$url/get?key=package-test")" = 200
check "GET /get: the value" grep -Fqx '{"key":"package-test","value":"from the .deb"}' "$tmp/body"
check "$datadir holds the store's files, all www-data's" \
    test -n "$(ls -A "$datadir")" -a -z "$(find "$datadir" ! -user www-data)"
rc=0; kvlsm-check "$datadir" > "$tmp/check" 2>&1 || rc=$?
check "kvlsm-check $datadir: clean ($(tail -1 "$tmp/check"))" test "$rc" = 0
runuser -u www-data -- kvlsm-check --dump "$datadir" > "$tmp/dump" || fail "kvlsm-check --dump $datadir"
check "kvlsm-check --dump finds the key" grep -Fq '"key":"package-test","value":"from the .deb"' "$tmp/dump"

# Remove: the module disabled, its conffiles and the data kept.
apt_get remove "$pkg" || fail "apt-get remove $pkg"
check "mods-enabled/kvlsm.load and kvlsm.conf are gone" \
    test ! -e /etc/apache2/mods-enabled/kvlsm.load -a ! -e /etc/apache2/mods-enabled/kvlsm.conf
check "a2query -m kvlsm: not enabled" not a2query -q -m kvlsm
check "the module and kvlsm-check are gone" \
    test ! -e /usr/lib/apache2/modules/mod_kvlsm.so -a ! -e /usr/bin/kvlsm-check
check "mods-available/kvlsm.conf (a conffile) and $datadir stay until purge" \
    test -f /etc/apache2/mods-available/kvlsm.conf -a -n "$(ls -A "$datadir")"
if apache_running; then
    ctl graceful || fail "apache2ctl graceful after remove"
else
    ctl start || fail "apache2ctl start after remove"
fi
wait_for "port 8081 closes once Apache rereads its configuration" 30 store_closed
ok "after a graceful restart nothing answers on $url"
if [ -z "$was_running" ]; then
    stop_apache
    ok "Apache stopped by its PID file, as it was before"
fi

# Purge: the conffiles, a2enmod's record and the data go.
apt_get purge "$pkg" || fail "apt-get purge $pkg"
check "$pkg is purged" not known
check "$datadir is gone" test ! -e "$datadir"
for d in $new_a2dirs; do rmdir "$d" 2>/dev/null || true; done
snapshot > "$tmp/after"
if diff -u "$tmp/before" "$tmp/after" > "$tmp/diff"; then
    ok "/etc/apache2 and /var/lib/apache2 are as they were"
else
    cat "$tmp/diff"
    fail "/etc/apache2 and /var/lib/apache2 are as they were"
fi
if [ -n "$was_running" ]; then
    check "the system Apache still runs, as it did" apache_running
else
    check "the system Apache is stopped, as it was" apache_gone
fi
echo "$name: $n tests passed in $(($(date +%s) - started)) s"
