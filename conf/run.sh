#!/bin/sh
# run.sh -- `make run`: write var/httpd.conf from conf/httpd-run.conf.in and
# run Apache in the foreground with the store on 127.0.0.1:8081 (or $PORT).
# Ctrl-C stops it.  As root, the children run as www-data, who gets ./var/data.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
var="$top/var"
port="${PORT:-8081}"
mpm="${MPM:-event}"
mkdir -p "$var/data"
usergroup=""
if [ "$(id -u)" = 0 ]; then
    usergroup="User www-data
Group www-data"
    chown www-data:www-data "$var/data"
fi
sed -e "s|@TOP@|$top|g" -e "s|@VAR@|$var|g" -e "s|@PORT@|$port|g" \
    -e "s|@MPM@|$mpm|g" -e "s|@MODULE@|$top/.libs/mod_kvlsm.so|g" \
    "$top/conf/httpd-run.conf.in" | awk -v ug="$usergroup" '{ if ($0 == "@USERGROUP@") print ug; else print }' \
    > "$var/httpd.conf"
echo "mod_kvlsm: http://127.0.0.1:$port/ (data in $var/data, log in $var/error.log); Ctrl-C stops"
exec apache2 -f "$var/httpd.conf" -DFOREGROUND
