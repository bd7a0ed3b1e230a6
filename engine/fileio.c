/* fileio.c -- file and lock primitives (fileio.h).  Everything here
 * retries EINTR and short transfers, so callers see all-or-error.  Fault
 * builds (-DKV_FAULT_INJECT, tests only) pass each operation that changes
 * a file or a directory through fault.c; production builds compile the
 * hooks away. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>
#include "fileio.h"

#ifdef KV_FAULT_INJECT
#include "fault.h"
#define FAULT(call) call
#else
#define FAULT(call) ((void)0)
#endif

apr_status_t fio_pread_full(int fd, void *buf, size_t n, uint64_t off)
{
    char *p = buf;
#ifdef KV_FAULT_INJECT
    if (fault_read_error(fd))
        return APR_FROM_OS_ERROR(errno);
#endif
    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return APR_FROM_OS_ERROR(errno);
        }
        if (r == 0)
            return APR_EOF;
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return APR_SUCCESS;
}

/* pwrite as the bare system call: libc's wrapper is a cancellation point
 * and brackets every call with enabling and disabling asynchronous
 * cancellation, 3% of a single writer's time.  Nothing here is ever
 * cancelled (APR threads are not), so that bracket buys nothing.  Only
 * where the offset is one 64-bit register (x86-64, arm64): 32-bit ABIs
 * split it, some into an aligned register pair, which libc knows and a
 * bare syscall() does not (found in review: every write failed with
 * EFBIG on armhf and i686).  ASan builds keep libc's, which ASan checks. */
#if (defined(__x86_64__) && !defined(__ILP32__) || defined(__aarch64__)) \
    && !defined(__SANITIZE_ADDRESS__)
static ssize_t bare_pwrite(int fd, const void *p, size_t n, off_t off)
{
    return syscall(SYS_pwrite64, fd, p, n, off);
}
#else
#define bare_pwrite pwrite
#endif

static apr_status_t pwrite_full(int fd, const char *p, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t r = bare_pwrite(fd, p, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return APR_FROM_OS_ERROR(errno);
        }
        if (r == 0)
            return APR_ENOSPC;
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return APR_SUCCESS;
}

apr_status_t fio_open(const char *path, int flags, int mode, int *fd)
{
#ifdef KV_FAULT_INJECT
    int err = fault_check(FAULT_OPEN, -1, path, NULL);
    if (err)
        return APR_FROM_OS_ERROR(err);
#endif
    *fd = open(path, flags, mode);
    return *fd < 0 ? APR_FROM_OS_ERROR(errno) : APR_SUCCESS;
}

apr_status_t fio_pwrite_full(int fd, const void *buf, size_t n, uint64_t off)
{
#ifdef KV_FAULT_INJECT
    size_t partial = 0;
    int err = fault_check(FAULT_WRITE, fd, NULL, &partial);
    if (err) {
        /* A short write: some bytes land, then the error. */
        if (partial > n)
            partial = n;
        if (partial)
            pwrite_full(fd, buf, partial, off);
        if (err < 0)
            _exit(FAULT_EXIT);
        return APR_FROM_OS_ERROR(err);
    }
#endif
    FAULT(fault_enter());
    FAULT(fault_before_write(fd, off));
    apr_status_t rv = pwrite_full(fd, buf, n, off);
    FAULT(fault_leave());
    return rv;
}

apr_status_t fio_fdatasync(int fd)
{
    apr_status_t rv = APR_SUCCESS;
#ifdef KV_FAULT_INJECT
    int err = fault_check(FAULT_SYNC, fd, NULL, NULL);
    if (err)
        return APR_FROM_OS_ERROR(err);
#endif
    FAULT(fault_enter());
    while (fdatasync(fd) < 0) {
        if (errno != EINTR) {
            rv = APR_FROM_OS_ERROR(errno);
            break;
        }
    }
    if (rv == APR_SUCCESS)
        FAULT(fault_after_sync(fd));
    FAULT(fault_leave());
    return rv;
}

apr_status_t fio_truncate(int fd, uint64_t size)
{
    apr_status_t rv = APR_SUCCESS;
#ifdef KV_FAULT_INJECT
    int err = fault_check(FAULT_TRUNCATE, fd, NULL, NULL);
    if (err)
        return APR_FROM_OS_ERROR(err);
#endif
    FAULT(fault_enter());
    FAULT(fault_before_truncate(fd));
    while (ftruncate(fd, (off_t)size) < 0) {
        if (errno != EINTR) {
            rv = APR_FROM_OS_ERROR(errno);
            break;
        }
    }
    if (rv == APR_SUCCESS)
        FAULT(fault_after_truncate(fd, size));
    FAULT(fault_leave());
    return rv;
}

apr_status_t fio_rename(const char *from, const char *to)
{
    apr_status_t rv = APR_SUCCESS;
    FAULT(fault_enter());
    FAULT(fault_before_rename(from, to));
    if (rename(from, to) < 0)
        rv = APR_FROM_OS_ERROR(errno);
    FAULT(fault_leave());
    return rv;
}

apr_status_t fio_unlink(const char *path)
{
    apr_status_t rv = APR_SUCCESS;
    FAULT(fault_enter());
    FAULT(fault_before_unlink(path));
    if (unlink(path) < 0)
        rv = APR_FROM_OS_ERROR(errno);
    FAULT(fault_leave());
    return rv;
}

apr_status_t fio_link(const char *from, const char *to)
{
#ifdef KV_FAULT_INJECT
    int err = fault_check(FAULT_LINK, -1, from, NULL);
    if (err)
        return APR_FROM_OS_ERROR(err);
#endif
    return link(from, to) < 0 ? APR_FROM_OS_ERROR(errno) : APR_SUCCESS;
}

apr_status_t fio_fsync_dir(const char *dir)
{
#ifdef KV_FAULT_INJECT
    int err = fault_check(FAULT_SYNC_DIR, -1, dir, NULL);
    if (err)
        return APR_FROM_OS_ERROR(err);
#endif
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return APR_FROM_OS_ERROR(errno);
    apr_status_t rv = APR_SUCCESS;
    FAULT(fault_enter());
    while (fsync(fd) < 0) {
        if (errno != EINTR) {
            rv = APR_FROM_OS_ERROR(errno);
            break;
        }
    }
    if (rv == APR_SUCCESS)
        FAULT(fault_after_sync_dir(dir));
    FAULT(fault_leave());
    close(fd);
    return rv;
}

apr_status_t fio_write_file_atomic(const char *dir, const char *tmp,
                                   const char *path, const void *buf, size_t n)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return APR_FROM_OS_ERROR(errno);
    apr_status_t rv = fio_truncate(fd, 0);
    if (rv == APR_SUCCESS)
        rv = fio_pwrite_full(fd, buf, n, 0);
    if (rv == APR_SUCCESS)
        rv = fio_fdatasync(fd);
    close(fd);
    if (rv == APR_SUCCESS)
        rv = fio_rename(tmp, path);
    if (rv != APR_SUCCESS) {
        fio_unlink(tmp);
        return rv;
    }
    return fio_fsync_dir(dir);
}

apr_status_t fio_file_size(int fd, uint64_t *size)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return APR_FROM_OS_ERROR(errno);
    *size = (uint64_t)st.st_size;
    return APR_SUCCESS;
}

apr_status_t fio_lock(int fd, int wait)
{
    while (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
        if (errno == EINTR)
            continue;
        if (errno == EWOULDBLOCK)
            return APR_EAGAIN;
        return APR_FROM_OS_ERROR(errno);
    }
    return APR_SUCCESS;
}

void fio_unlock(int fd)
{
    flock(fd, LOCK_UN);
}
