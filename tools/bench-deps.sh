#!/bin/sh
# bench-deps.sh -- the peers `make bench` compares against, from Debian's
# packages: webdis + redis-server and etcd (server and client).  Installed
# as root if missing, with the packages' own services kept from starting
# (a temporary policy-rc.d): the benchmark starts its own instances on
# loopback ports and stops them by PID.  Not root: says what is missing
# and goes on (bench/http.sh then skips those peers).
set -eu
missing=""
for p in webdis redis-server etcd-server etcd-client nghttp2-client; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get > /dev/null; then
    echo "bench peers not installed:$missing (sudo apt-get install$missing); they will be skipped" >&2
    exit 0
fi
policy=/usr/sbin/policy-rc.d
had_policy=0
[ -e "$policy" ] && had_policy=1
if [ $had_policy = 0 ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
fi
export DEBIAN_FRONTEND=noninteractive
rc=0
{ apt-get update && apt-get install -y --no-install-recommends $missing; } || rc=$?
[ $had_policy = 0 ] && rm -f "$policy"
[ $rc = 0 ] || echo "could not install$missing: those peers will be skipped" >&2
exit 0
