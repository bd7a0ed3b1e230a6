#!/bin/sh
# run.sh -- run the Apache::Test suite (t/*.t) against .libs/mod_kvlsm.so.
# Apache::Test refuses to run as root, so as root the suite runs as
# www-data on a copy of the tree that www-data owns.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" = 0 ]; then
    work=$(mktemp -d /tmp/kvlsm-t.XXXXXX)
    mkdir -p "$work/.libs"
    cp -r "$top/t" "$top/conf" "$work/"
    rm -rf "$work/t/logs" "$work/t/data"
    cp "$top/.libs/mod_kvlsm.so" "$work/.libs/"
    for m in build/fault/mod_kvlsm.so build/asan/mod_kvlsm.so; do
        if [ -f "$top/$m" ]; then
            mkdir -p "$work/$(dirname $m)" && cp "$top/$m" "$work/$m"
        fi
    done
    chown -R www-data:www-data "$work"
    rc=0
    runuser -u www-data -- env HOME="$work" TMPDIR="$work" \
        KVLSM_STRESS_CYCLES="${KVLSM_STRESS_CYCLES:-}" KVLSM_SEED="${KVLSM_SEED:-}" sh "$work/t/run.sh" "$@" || rc=$?
    if [ "$rc" != 0 ] && [ -f "$work/t/logs/error_log" ]; then
        echo "--- last lines of the test server's error_log ---"
        grep -v '\[.*:trace' "$work/t/logs/error_log" | tail -25
    fi
    rm -rf "$work"
    exit $rc
fi
cd "$top"
rm -rf t/data t/data2
export APACHE_TEST_NO_STICKY_PREFERENCES=1
perl t/TEST.PL -clean >/dev/null 2>&1 || true
exec perl t/TEST.PL -apxs "$(command -v apxs)" -httpd /usr/sbin/apache2 \
    -httpd_conf "$top/t/conf/base.conf" -port select "$@"
