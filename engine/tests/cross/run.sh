#!/bin/sh
# run.sh [fileio.c] -- build engine/fileio.c for armhf and i386 (the flags
# apr-1-config gives: no _FILE_OFFSET_BITS=64) and run pwrite_abi under
# qemu-user.  Needs gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
# gcc-i686-linux-gnu libc6-dev-i386-cross qemu-user.  Fails if either fails;
# says it skipped, and exits 0, when a compiler, its C library (the
# libc6-dev-*-cross packages are only Recommends of the compilers) or
# qemu is missing.
here=$(dirname "$0"); top=$here/../../..
src=${1:-$top/engine/fileio.c}
out=${TMPDIR:-/tmp}/pwrite_abi
targets="arm-linux-gnueabihf:qemu-arm i686-linux-gnu:qemu-i386"
for t in $targets; do
    if ! printf 'int main(void) { return 0; }\n' | ${t%%:*}-gcc -static -x c -o /dev/null - 2>/dev/null \
        || ! command -v ${t##*:} >/dev/null; then
        echo "cross-abi: skipped (needs ${t%%:*}-gcc with its libc6-dev-*-cross, and ${t##*:}:" \
             "gcc-arm-linux-gnueabihf gcc-i686-linux-gnu libc6-dev-armhf-cross libc6-dev-i386-cross qemu-user)"
        exit 0
    fi
done
rc=0
for t in $targets; do
    cc=${t%%:*}-gcc; qemu=${t##*:}
    $cc -O2 -Wall -D_GNU_SOURCE -I"$here/shim" -I"$top/engine" -static \
        -o "$out.${t%%:*}" "$here/pwrite_abi.c" "$src" || exit 2
    printf '%s: ' "${t%%:*}"
    $qemu "$out.${t%%:*}" | tr '\n' ' '; echo
    $qemu "$out.${t%%:*}" >/dev/null || rc=1
done
exit $rc
