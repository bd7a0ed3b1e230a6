#!/bin/sh
# deb.sh -- `make deb`: build the Debian package libapache2-mod-kvlsm with
# dpkg-buildpackage in a copy of the tree under a temporary directory (it
# writes its results beside the tree it builds, and debian/rules clean
# runs `make clean`), then put the .deb in build/ and say where.
# Build-Depends (debian/control) that are missing are installed first
# when run as root (apt-get build-dep), or named otherwise.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
if ! dpkg-checkbuilddeps "$top/debian/control" 2>/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update
        apt-get build-dep -y --no-install-recommends "$top"
    else
        dpkg-checkbuilddeps "$top/debian/control" || true
        echo "make deb: install the missing packages above (as root: apt-get build-dep $top)" >&2
        exit 1
    fi
fi
version=$(cd "$top" && dpkg-parsechangelog -S Version)
work=$(mktemp -d /tmp/kvlsm-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
src="$work/mod-kvlsm-$version"
mkdir "$src"
# The files git knows and the new ones it does not ignore (so uncommitted
# changes are built), or, outside git, everything but the build outputs.
if command -v git >/dev/null && git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$top" && git ls-files -z --cached --others --exclude-standard) |
        (cd "$top" && xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh) |
        (cd "$top" && tar --null --no-recursion -T - -cf -) | (cd "$src" && tar -xf -)
else
    (cd "$top" && tar -cf - --exclude=./.git --exclude=./build --exclude=./.libs --exclude=./var .) |
        (cd "$src" && tar -xf -)
fi
start=$(date +%s)
echo "make deb: dpkg-buildpackage -us -uc -b in $src"
if ! (cd "$src" && dpkg-buildpackage -us -uc -b) > "$work/build.log" 2>&1; then
    cat "$work/build.log"
    echo "make deb: dpkg-buildpackage failed" >&2
    exit 1
fi
mkdir -p "$top/build"
rm -f "$top"/build/libapache2-mod-kvlsm_*.deb
cp "$work"/libapache2-mod-kvlsm_*.deb "$top/build/"
deb=$(ls "$top"/build/libapache2-mod-kvlsm_*.deb)
echo "make deb: built $deb in $(($(date +%s) - start)) s"
# Lintian when it is installed (it is not among the project's packages):
# what it says is shown, it does not fail the build.
if command -v lintian >/dev/null 2>&1; then
    tags=$(lintian --info "$work"/*.changes 2>&1 | grep -v 'running with root privileges' || true)
    echo "make deb: lintian: ${tags:-no tags}"
fi
