/* snapshot.c -- online snapshots (kvlsm.h): the files that make a data
 * directory at one published end of the shared log, kept readable by
 * hard links in a private directory inside the data directory, and the
 * sweep of private directories whose process died.  Nothing here writes
 * a file the store uses or takes any of the store's locks (only, when the
 * active log is not yet synced to the point, one log_sync, as a writer
 * would), so no writer, flusher or compactor waits for a snapshot.  Why
 * the set of files is one consistent point: docs/DESIGN.md, "Online
 * snapshots". */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <apr_strings.h>
#include "db_impl.h"
#include "fileio.h"
#include "filename.h"

/* Attempts before giving up with APR_EAGAIN.  An attempt fails only when
 * a flush or a compaction installed a new manifest and removed a file
 * while the attempt was linking (microseconds per file; a flush or a
 * compaction step takes at least an fdatasync), so a second attempt
 * almost always succeeds. */
#define SNAP_TRIES 100
#define SNAP_NAME_TRIES 64   /* private directory names tried */
#define SNAP_EMPTY_PASSES 8  /* readdir passes to empty a private directory */

struct kv_snapshot_t {
    apr_pool_t *pool;
    char *path;            /* the private directory */
    int fd;                /* open on it; its flock says "alive" (snapshot_sweep) */
    int closed;
    kv_snapshot_info_t info;
};

static unsigned long snap_counter;

/* Unlink every file in the directory open at fd: a private directory
 * holds nothing else.  Entries removed while a readdir pass runs may
 * hide others from that pass, so look again until one pass finds none. */
static apr_status_t empty_dir(int fd)
{
    apr_status_t rv = APR_SUCCESS;
    for (int pass = 0; pass < SNAP_EMPTY_PASSES; pass++) {
        int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
            return APR_FROM_OS_ERROR(errno);
        DIR *d = fdopendir(dfd);
        if (!d) {
            rv = APR_FROM_OS_ERROR(errno);
            close(dfd);
            return rv;
        }
        int found = 0;
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            found = 1;
            if (unlinkat(fd, de->d_name, 0) < 0 && errno != ENOENT)
                rv = APR_FROM_OS_ERROR(errno);
        }
        closedir(d);
        if (!found || rv)
            return rv;
    }
    return APR_SUCCESS;
}

apr_status_t snapshot_sweep(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return APR_FROM_OS_ERROR(errno);
    int dfd = dirfd(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!fn_is_snapshot(de->d_name))
            continue;
        int fd = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue;
        /* Its owner holds this lock from before it links anything until
         * the directory is gone, and the kernel drops it when the owner
         * dies: got it, nobody owns the directory. */
        if (flock(fd, LOCK_EX | LOCK_NB) == 0 && empty_dir(fd) == APR_SUCCESS)
            unlinkat(dfd, de->d_name, AT_REMOVEDIR);
        close(fd);
    }
    closedir(d);
    return APR_SUCCESS;
}

/* Create and lock this snapshot's private directory.  A sweeper that
 * opened it between our mkdir and our flock may lock it first and remove
 * it: then our flock fails, or the name no longer leads to our inode,
 * and we take the next name. */
static apr_status_t make_private_dir(kv_snapshot_t *s, const char *dir)
{
    apr_status_t rv = APR_EAGAIN;
    for (int i = 0; i < SNAP_NAME_TRIES; i++) {
        unsigned long n = __atomic_add_fetch(&snap_counter, 1, __ATOMIC_RELAXED);
        char *path = apr_psprintf(s->pool, "%s/" FN_SNAP_PREFIX "%ld-%lu" FN_SNAP_SUFFIX,
                                  dir, (long)getpid(), n);
        if (mkdir(path, 0700) < 0) {
            if (errno == EEXIST)     /* left by a dead process with our pid */
                continue;
            return APR_FROM_OS_ERROR(errno);
        }
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            rv = APR_FROM_OS_ERROR(errno);
            continue;
        }
        struct stat a, b;
        if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &a) == 0 && stat(path, &b) == 0
            && a.st_ino == b.st_ino && a.st_dev == b.st_dev) {
            s->path = path;
            s->fd = fd;
            return APR_SUCCESS;
        }
        close(fd);
    }
    return rv;
}

/* Has the store's MANIFEST been replaced since we linked ours? */
static int manifest_replaced(const kv_db_t *db, const kv_snapshot_t *s)
{
    char live[4096], ours[4096];
    struct stat a, b;
    fn_named(live, sizeof(live), db->dir, FN_MANIFEST);
    fn_named(ours, sizeof(ours), s->path, FN_MANIFEST);
    if (stat(ours, &b) < 0)
        return 1;
    return stat(live, &a) < 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev;
}

/* Link "dir/NNNNNN.ext" into the private directory. */
static apr_status_t link_numbered(const kv_db_t *db, const kv_snapshot_t *s,
                                  uint64_t number, const char *ext)
{
    char from[4096], to[4096];
    fn_numbered(from, sizeof(from), db->dir, number, ext);
    fn_numbered(to, sizeof(to), s->path, number, ext);
    return fio_link(from, to);
}

/* One attempt, into the empty private directory: the manifest, then the
 * published end, then every SST the manifest lists and every log from
 * its log_start to the end's log.  On success *m is the manifest linked
 * and *end the end loaded.  APR_ENOENT: a flush or a compaction removed
 * a file meanwhile (it replaced the manifest first), try again. */
static apr_status_t link_point(kv_db_t *db, kv_snapshot_t *s, manifest_t *m, uint64_t *end)
{
    char from[4096], to[4096];
    fn_named(from, sizeof(from), db->dir, FN_MANIFEST);
    fn_named(to, sizeof(to), s->path, FN_MANIFEST);
    /* MANIFEST is only ever replaced by rename, never written in place:
     * the inode we link is one whole manifest, and it is the one we read. */
    apr_status_t rv = fio_link(from, to);
    if (rv)
        return rv;
    if ((rv = mf_read(s->path, m, NULL, NULL)))
        return rv;
    /* Loaded after the manifest was linked, so at least the end any of
     * its flushes saw: a flush moves log_start past log L only when the
     * end is past L.  So log_start <= log(e), and the manifest's SSTs hold
     * only logs wholly before e. */
    uint64_t e = shm_end(&db->shm);
    if (logpos_log(e) < m->log_start)
        rv = KV_CORRUPT;
    for (int i = 0; rv == APR_SUCCESS && i < m->nfiles; i++)
        rv = link_numbered(db, s, m->files[i].number, "sst");
    for (uint64_t n = m->log_start; rv == APR_SUCCESS && n <= logpos_log(e); n++)
        rv = link_numbered(db, s, n, "log");
    if (APR_STATUS_IS_ENOENT(rv) && !manifest_replaced(db, s)) {
        /* Files leave only after a manifest that no longer needs them is
         * in place: with ours still current, a listed file is missing. */
        rv = KV_CORRUPT;
    }
    if (rv)
        mf_free(m);
    else
        *end = e;
    return rv;
}

/* Make the point durable before handing it out, as a writer's records
 * are before they are acknowledged.  Sealed logs were synced by their
 * rotations, SSTs and manifests before they were installed; the active
 * log up to end may not be: an `always` writer publishes, then syncs, and
 * if that sync fails it is told its write failed (commit.c), so a
 * snapshot that held the record would hold a write never acknowledged,
 * which the disk may not have.  Synced through log_sync, which turns a
 * failure into KV_SYNCFAIL for everyone; raising the synced end then
 * covers the writers waiting on these bytes. */
static apr_status_t sync_to(kv_db_t *db, uint64_t end)
{
    if (shm_synced(&db->shm) >= end)
        return APR_SUCCESS;
    wal_file_t *w;
    apr_status_t rv = wal_file_open(db, logpos_log(end), 0, &w);
    if (APR_STATUS_IS_ENOENT(rv) && shm_synced(&db->shm) >= end)
        return APR_SUCCESS;   /* sealed (so synced), flushed and removed since */
    if (rv)
        return rv;
    if ((rv = log_sync(db, w)) == APR_SUCCESS)
        shm_raise_synced(&db->shm, end);
    wal_file_unref(w);
    return rv;
}

/* The file list of a linked point: names, sizes, times. */
static apr_status_t describe(kv_snapshot_t *s, const manifest_t *m, uint64_t end)
{
    uint64_t last = logpos_log(end);
    int n = 1 + m->nfiles + (int)(last - m->log_start + 1);
    kv_snapshot_file_t *files = apr_pcalloc(s->pool, sizeof(*files) * (size_t)n);
    s->info.bytes = 0;
    for (int i = 0; i < n; i++) {
        kv_snapshot_file_t *f = &files[i];
        char name[64];
        int log = i > m->nfiles;
        if (i == 0)
            snprintf(name, sizeof(name), "%s", FN_MANIFEST);
        else if (!log)
            snprintf(name, sizeof(name), "%06llu.sst", (unsigned long long)m->files[i - 1].number);
        else
            snprintf(name, sizeof(name), "%06llu.log",
                     (unsigned long long)(m->log_start + (uint64_t)(i - 1 - m->nfiles)));
        f->name = apr_pstrdup(s->pool, name);
        f->path = apr_pstrcat(s->pool, s->path, "/", name, NULL);
        struct stat st;
        if (stat(f->path, &st) < 0)
            return APR_FROM_OS_ERROR(errno);
        f->mtime = (apr_int64_t)st.st_mtime;
        f->bytes = (uint64_t)st.st_size;
        if (i == n - 1) {
            /* The active log at the end: exactly its published bytes,
             * which never change (only bytes past the end are ever cut
             * back), though writers append past them meanwhile. */
            if (f->bytes < logpos_off(end))
                return KV_CORRUPT;
            f->bytes = logpos_off(end);
        }
        else if (i > 0 && !log && f->bytes != m->files[i - 1].bytes)
            return KV_CORRUPT;
        s->info.bytes += f->bytes;
    }
    s->info.files = files;
    s->info.nfiles = n;
    return APR_SUCCESS;
}

static apr_status_t snap_cleanup(void *data)
{
    kv_snapshot_t *s = data;
    if (s->closed)
        return APR_SUCCESS;
    s->closed = 1;
    apr_status_t rv = empty_dir(s->fd);
    if (unlinkat(AT_FDCWD, s->path, AT_REMOVEDIR) < 0 && rv == APR_SUCCESS)
        rv = APR_FROM_OS_ERROR(errno);
    close(s->fd);   /* only now: the directory is gone before its lock */
    return rv;
}

apr_status_t kv_snapshot_open(kv_snapshot_t **snap, kv_db_t *db, apr_pool_t *pool)
{
    *snap = NULL;
    if (db->closed)
        return KV_CLOSED;
    /* After a failed log sync the page cache may hold bytes the disk never
     * took (DESIGN.md, invariant 9): a snapshot of them could hold writes
     * that are not durable.  Refused like writes, until a reopen. */
    if (shm_sync_failed(&db->shm))
        return KV_SYNCFAIL;
    /* Our own start is a good moment to clear what killed snapshots left. */
    snapshot_sweep(db->dir);
    kv_snapshot_t *s = apr_pcalloc(pool, sizeof(*s));
    s->pool = pool;
    s->fd = -1;
    apr_status_t rv = make_private_dir(s, db->dir);
    if (rv)
        return rv;
    apr_pool_cleanup_register(pool, s, snap_cleanup, apr_pool_cleanup_null);
    manifest_t m;
    uint64_t end = 0;
    rv = APR_EAGAIN;
    for (int i = 0; i < SNAP_TRIES; i++) {
        s->info.attempts = i + 1;
        if ((rv = empty_dir(s->fd)))
            break;
        rv = link_point(db, s, &m, &end);
        if (!APR_STATUS_IS_ENOENT(rv))
            break;
        rv = APR_EAGAIN;
    }
    if (rv == APR_SUCCESS) {
        if ((rv = sync_to(db, end)) == APR_SUCCESS)
            rv = describe(s, &m, end);
        mf_free(&m);
    }
    /* And if a sync failed while we linked: the bytes are the same page
     * cache's. */
    if (rv == APR_SUCCESS && shm_sync_failed(&db->shm))
        rv = KV_SYNCFAIL;
    if (rv) {
        apr_pool_cleanup_run(pool, s, snap_cleanup);
        return rv;
    }
    *snap = s;
    return APR_SUCCESS;
}

const kv_snapshot_info_t *kv_snapshot_info(const kv_snapshot_t *s)
{
    return &s->info;
}

apr_status_t kv_snapshot_close(kv_snapshot_t *s)
{
    if (!s || s->closed)
        return APR_SUCCESS;
    return apr_pool_cleanup_run(s->pool, s, snap_cleanup);
}
