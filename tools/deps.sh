#!/bin/sh
# deps.sh -- install the Debian packages in .ci/packages that are missing.
# As root it runs apt-get; as anyone else it says what to install.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
missing=""
for p in $(cat "$top/.ci/packages"); do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    # The tests start their own servers on loopback ports (prometheus,
    # for one, would otherwise start a service on every interface):
    # packages installed here do not start theirs.
    policy=/usr/sbin/policy-rc.d
    had_policy=0
    [ -e "$policy" ] && had_policy=1
    if [ $had_policy = 0 ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy"
        chmod 755 "$policy"
    fi
    rc=0
    { apt-get update && apt-get install -y --no-install-recommends $missing; } || rc=$?
    [ $had_policy = 0 ] && rm -f "$policy"
    exit $rc
else
    echo "missing Debian packages:$missing" >&2
    echo "install them with: sudo apt-get install$missing" >&2
    exit 1
fi
