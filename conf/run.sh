#!/bin/sh
# run.sh -- `make run`: write var/httpd.conf from conf/httpd-run.conf.in and
# run Apache in the foreground with the store on 127.0.0.1:8081 (or $PORT).
# Ctrl-C stops it.  As root, the children run as www-data, who gets ./var/data
# (or, when www-data cannot enter the checkout, /var/lib/kvlsm-run/...).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
var="$top/var"
port="${PORT:-8081}"
mpm="${MPM:-event}"
data="$var/data"
mkdir -p "$var"
usergroup=""
if [ "$(id -u)" = 0 ]; then
    usergroup="User www-data
Group www-data"
    # The children (www-data) must reach the data directory.  A checkout
    # they cannot enter (root's home is 0700, so is mktemp -d) keeps its
    # data under /var/lib/kvlsm-run instead, one directory per checkout.
    if ! runuser -u www-data -- test -x "$var"; then
        data="/var/lib/kvlsm-run/$(basename "$top")-$(printf '%s' "$top" | md5sum | cut -c1-8)"
        echo "mod_kvlsm: www-data cannot enter $top, so the data lives in $data"
    fi
    mkdir -p "$data"
    chown www-data:www-data "$data"
else
    mkdir -p "$data"
fi
sed -e "s|@TOP@|$top|g" -e "s|@VAR@|$var|g" -e "s|@DATA@|$data|g" -e "s|@PORT@|$port|g" \
    -e "s|@MPM@|$mpm|g" -e "s|@MODULE@|$top/.libs/mod_kvlsm.so|g" \
    "$top/conf/httpd-run.conf.in" | awk -v ug="$usergroup" '{ if ($0 == "@USERGROUP@") print ug; else print }' \
    > "$var/httpd.conf"
echo "mod_kvlsm: http://127.0.0.1:$port/ (data in $data, log in $var/error.log); Ctrl-C stops"
exec apache2 -f "$var/httpd.conf" -DFOREGROUND
