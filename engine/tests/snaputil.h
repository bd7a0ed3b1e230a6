/* snaputil.h -- helpers the snapshot tests share (test_snapshot.c, and
 * fault/test_snapshot.c in the fault build): write a snapshot's files
 * into a directory as an untarred archive would (the first `bytes` bytes
 * of each, under its name), count the private directories in a data
 * directory, run kvlsm-check; and open a store in a fresh directory (with
 * an empty one beside it to restore into) and close and remove both. */
#ifndef KV_SNAPUTIL_H
#define KV_SNAPUTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/wait.h>
#include "testutil.h"

/* A store a test opens in a fresh directory of its own (su_open) and
 * su_close removes, with out (when asked for) an empty directory to
 * restore a snapshot into.  o are the options it was opened with (1 MiB
 * memtable, no background thread), for reopening it or a restored copy. */
typedef struct {
    char *dir, *out;
    apr_pool_t *pool;
    kv_options_t o;
    kv_db_t *db;
} su_store_t;

static inline void su_open(su_store_t *t, int with_out)
{
    t->dir = tu_tmpdir();
    t->out = with_out ? tu_tmpdir() : NULL;
    t->pool = tu_pool();
    t->o = tu_opts(1 << 20, 0);
    cr_assert_eq(kv_db_open(&t->db, t->dir, &t->o, t->pool), APR_SUCCESS);
}

/* Close the store (unless the test closed it itself and set db to NULL),
 * destroy its pool (closing what snapshots are still open in it), remove
 * both directories. */
static inline void su_close(su_store_t *t)
{
    if (t->db)
        kv_db_close(t->db);
    apr_pool_destroy(t->pool);
    if (t->out) {
        tu_rmrf(t->out);
        free(t->out);
    }
    tu_rmrf(t->dir);
    free(t->dir);
}

/* Copy the first `bytes` bytes of src to dest (created).  0 or -1. */
static inline int su_copy_prefix(const char *src, const char *dest, apr_uint64_t bytes)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -1;
    int out = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0) {
        close(in);
        return -1;
    }
    char buf[65536];
    apr_uint64_t done = 0;
    int rc = 0;
    while (done < bytes) {
        size_t want = bytes - done < sizeof buf ? (size_t)(bytes - done) : sizeof buf;
        ssize_t n = read(in, buf, want);
        if (n <= 0 || write(out, buf, (size_t)n) != n) {
            rc = -1;   /* a short source is a failure: the snapshot promised the bytes */
            break;
        }
        done += (apr_uint64_t)n;
    }
    close(in);
    if (close(out) < 0)
        rc = -1;
    return rc;
}

/* Write every file of the snapshot into the (empty) directory dest. */
static inline void su_restore(const kv_snapshot_t *s, const char *dest)
{
    const kv_snapshot_info_t *info = kv_snapshot_info(s);
    apr_uint64_t total = 0;
    for (int i = 0; i < info->nfiles; i++) {
        char to[4096];
        snprintf(to, sizeof to, "%s/%s", dest, info->files[i].name);
        cr_assert_eq(su_copy_prefix(info->files[i].path, to, info->files[i].bytes), 0,
                     "copy %s (%llu bytes): %s", info->files[i].path,
                     (unsigned long long)info->files[i].bytes, strerror(errno));
        total += info->files[i].bytes;
    }
    cr_assert_eq(total, info->bytes);
    cr_assert_str_eq(info->files[0].name, "MANIFEST");
}

/* Snapshot private directories (SNAP-*.tmp) in dir. */
static inline int su_private_dirs(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (strncmp(de->d_name, "SNAP-", 5) == 0 && len > 4 && !strcmp(de->d_name + len - 4, ".tmp"))
            n++;
    }
    closedir(d);
    return n;
}

/* kvlsm-check's exit status on dir (0: clean). */
static inline int su_check(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "%s %s > /dev/null", KVLSM_CHECK, dir);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

#endif
