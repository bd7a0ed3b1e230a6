#!/bin/sh
# run.sh -- run the Apache::Test suite (t/*.t) against .libs/mod_kvlsm.so.
# Apache::Test refuses to run as root, so as root the suite runs as
# www-data on a copy of the tree that www-data owns.
# KVLSM_SANITIZE=1 runs it against build/asan/mod_kvlsm.so (the module
# built with AddressSanitizer and UBSan) instead, with Apache started with
# the sanitizer runtimes preloaded; any sanitizer report fails the run.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
sanitize=${KVLSM_SANITIZE:-}
if [ -z "${KVLSM_IN_COPY:-}" ] && { [ "$(id -u)" = 0 ] || [ -n "$sanitize" ]; }; then
    work=$(mktemp -d /tmp/kvlsm-t.XXXXXX)
    mkdir -p "$work/.libs"
    cp -r "$top/t" "$top/conf" "$work/"
    rm -rf "$work/t/logs" "$work/t/data"
    if [ -n "$sanitize" ]; then
        cp "$top/build/asan/mod_kvlsm.so" "$work/.libs/"
    else
        cp "$top/.libs/mod_kvlsm.so" "$work/.libs/"
    fi
    if [ -x "$top/build/kvlsm-check" ]; then
        mkdir -p "$work/build" && cp "$top/build/kvlsm-check" "$work/build/"
    fi
    if [ -f "$top/build/fault/mod_kvlsm.so" ]; then
        mkdir -p "$work/build/fault" && cp "$top/build/fault/mod_kvlsm.so" "$work/build/fault/"
    fi
    if [ -f "$top/build/released/mod_kvlsm.so" ]; then
        mkdir -p "$work/build/released" && cp "$top/build/released/mod_kvlsm.so" "$work/build/released/"
    fi
    runner=
    if [ "$(id -u)" = 0 ]; then
        chown -R www-data:www-data "$work"
        runner="runuser -u www-data --"
    fi
    rc=0
    $runner env HOME="$work" TMPDIR="$work" KVLSM_IN_COPY=1 KVLSM_SANITIZE="$sanitize" \
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
httpd=/usr/sbin/apache2
if [ -n "$sanitize" ]; then
    # Every Apache the suite starts goes through this wrapper, so the
    # runtimes come first in the process, as the instrumented module needs.
    mkdir -p "$top/san"
    httpd="$top/san/apache2"
    cat > "$httpd" <<WRAP
#!/bin/sh
export LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:log_path=$top/san/report"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$top/san/report"
exec /usr/sbin/apache2 "\$@"
WRAP
    chmod +x "$httpd"
    export KVLSM_HTTPD="$httpd"
fi
perl t/TEST.PL -clean >/dev/null 2>&1 || true
rc=0
perl t/TEST.PL -apxs "$(command -v apxs)" -httpd "$httpd" \
    -httpd_conf "$top/t/conf/base.conf" -port select "$@" || rc=$?
if [ -n "$sanitize" ] && ls "$top/san/" | grep -q '^report'; then
    echo "--- sanitizer reports ---"
    cat "$top"/san/report*
    rc=1
fi
exit $rc
