/* pwrite_abi.c -- engine/fileio.c's fio_pwrite_full must put bytes at the
 * offset asked for on every CPU the package is built for (debian/control:
 * Architecture: any).  Run by run.sh under qemu-user for 32-bit ARM (EABI),
 * where a 64-bit system-call argument sits in an aligned register pair. */
#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "fileio.h"

int main(void)
{
    char path[] = "/tmp/pwrite_abi.XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return 2;
    unlink(path);
    apr_status_t a = fio_pwrite_full(fd, "AAAA", 4, 0);
    apr_status_t b = fio_pwrite_full(fd, "BBBB", 4, 4);
    apr_status_t c = fio_pwrite_full(fd, "CCCC", 4, 4096);
    char got[4100] = {0};
    ssize_t n = pread(fd, got, sizeof got, 0);
    printf("rv %d %d %d (%s), file size %lld, first 8 bytes \"%.8s\"\n", a, b, c,
           strerror(a ? a : b ? b : c), (long long)lseek(fd, 0, SEEK_END), got);
    int ok = !a && !b && !c && n == 4100 && memcmp(got, "AAAABBBB", 8) == 0
             && memcmp(got + 4096, "CCCC", 4) == 0;
    puts(ok ? "PASS" : "FAIL: bytes not at the offsets asked for");
    return ok ? 0 : 1;
}
