/* fileio.h -- the engine's OS layer for files the engine coordinates on:
 * whole reads and writes that retry short transfers, durable renames,
 * directory syncs, and the flock() locks that several processes share.
 * All errors come back as apr_status_t (APR_FROM_OS_ERROR). */
#ifndef KV_FILEIO_H
#define KV_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <apr_errno.h>

/* open(2) as a status (fault builds can make it fail). */
apr_status_t fio_open(const char *path, int flags, int mode, int *fd);
/* Read exactly n bytes at off; APR_EOF if the file ends first. */
apr_status_t fio_pread_full(int fd, void *buf, size_t n, uint64_t off);
/* Write exactly n bytes at off. */
apr_status_t fio_pwrite_full(int fd, const void *buf, size_t n, uint64_t off);
apr_status_t fio_fdatasync(int fd);
apr_status_t fio_fsync_dir(const char *dir);
/* ftruncate, rename and unlink, as statuses. */
apr_status_t fio_truncate(int fd, uint64_t size);
apr_status_t fio_rename(const char *from, const char *to);
apr_status_t fio_unlink(const char *path);
/* link(2) as a status: a second name for an existing file (fault builds
 * can make it fail, or run a step first: FAULT_LINK). */
apr_status_t fio_link(const char *from, const char *to);
/* Write buf to tmp, fsync, rename over path, fsync dir. */
apr_status_t fio_write_file_atomic(const char *dir, const char *tmp,
                                   const char *path, const void *buf, size_t n);
apr_status_t fio_file_size(int fd, uint64_t *size);

/* flock() on an open file description: exclusive, blocking or not.
 * Non-blocking: APR_EAGAIN when another description holds it. */
apr_status_t fio_lock(int fd, int wait);
void fio_unlock(int fd);


#endif
