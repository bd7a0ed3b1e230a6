/* db.c -- the engine's facade: open and close, the write path (append to
 * the shared log under the cross-process lock, then apply), log replay
 * that keeps this process's memtables level with every other process's
 * writes, manifest reloads, group commit, and point reads.
 * The multi-process protocol is described in docs/DESIGN.md. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <apr_strings.h>
#include "db_impl.h"
#include "fileio.h"

#define REFRESH_TRIES 1000

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static void scratch_init(void);

uint64_t db_now(void)
{
    return (uint64_t)time(NULL);
}

void kv_options_default(kv_options_t *o)
{
    memset(o, 0, sizeof(*o));
    o->memtable_bytes = 4u << 20;
    o->sync_mode = KV_SYNC_INTERVAL;
    o->sync_interval_ms = 1000;
    o->max_key_bytes = 4096;
    o->max_value_bytes = 1u << 20;
    o->background = 1;
}

const char *kv_strerror(apr_status_t rv, char *buf, apr_size_t n)
{
    const char *m = NULL;
    switch (rv) {
    case KV_NOTFOUND: m = "key not found"; break;
    case KV_CORRUPT:  m = "data corruption detected (checksum or format)"; break;
    case KV_TOOLARGE: m = "key or value too large"; break;
    case KV_CONFLICT: m = "write condition failed"; break;
    case KV_INVALID:  m = "invalid argument"; break;
    case KV_CLOSED:   m = "store is closed"; break;
    }
    if (m) {
        apr_cpystrn(buf, m, n);
        return buf;
    }
    return apr_strerror(rv, buf, n);
}

/* Tell the embedder (the module logs it) which file is damaged. */
void db_report_corruption(kv_db_t *db, uint64_t number, const char *ext, uint64_t offset)
{
    if (!db->opts.on_corruption)
        return;
    char path[4096];
    fio_name(path, sizeof(path), db->dir, number, ext);
    db->opts.on_corruption(db->opts.corruption_baton, path, offset);
}

/* ---- log files ---------------------------------------------------- */

void wal_file_unref(wal_file_t *w)
{
    if (w && __atomic_sub_fetch(&w->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        close(w->fd);
        free(w);
    }
}

/* Open log `number`; create it only if `create` (a writer finishing a
 * rotation).  APR_ENOENT if it does not exist. */
static apr_status_t wal_file_open(kv_db_t *db, uint64_t number, int create,
                                  wal_file_t **out)
{
    char path[4096];
    fio_name(path, sizeof(path), db->dir, number, "log");
    int fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0644);
    if (fd < 0)
        return APR_FROM_OS_ERROR(errno);
    if (create) {
        apr_status_t rv = fio_fsync_dir(db->dir);
        if (rv) {
            close(fd);
            return rv;
        }
    }
    wal_file_t *w = malloc(sizeof(*w));
    if (!w) {
        close(fd);
        return APR_ENOMEM;
    }
    w->refs = 1;
    w->fd = fd;
    w->number = number;
    *out = w;
    return APR_SUCCESS;
}

/* ---- replay ------------------------------------------------------- */

/* Apply one decoded batch to the active memtable.  state_mu held. */
static apr_status_t apply_batch(kv_db_t *db, const wal_view_t *v)
{
    size_t pos = 0;
    uint32_t idx;
    kv_ent_t e;
    int r;
    while ((r = wal_batch_next(v, &pos, &idx, &e)) == 1) {
        apr_status_t rv = mt_add(db->current->mem, &e);
        if (rv)
            return rv;
        if (e.seq > db->last_seq)
            db->last_seq = e.seq;
    }
    return r == 0 ? APR_SUCCESS : KV_CORRUPT;
}

/* Seal the active memtable and continue in log `next`.  state_mu held.
 * A complete rotation record is permanent, so creating a missing next log
 * is safe for anyone (its writer may have died before creating it).  But
 * the log may instead have been flushed and removed while we were away:
 * then the manifest, read after the open, has moved past it (a flusher
 * writes the manifest before it removes the log), and we must start over
 * from the manifest rather than write into a log nobody will read -- even
 * if opening the manifest's SSTs fails, which then fails the catch-up. */
static apr_status_t switch_log(kv_db_t *db, uint64_t next)
{
    wal_file_t *w;
    apr_status_t rv = wal_file_open(db, next, 1, &w);
    if (rv)
        return rv;
    manifest_t m;
    if ((rv = mf_read(db->dir, &m, NULL, NULL))) {
        wal_file_unref(w);
        return rv;
    }
    uint64_t start = m.log_start;
    mf_free(&m);
    if (start > next) {
        wal_file_unref(w);
        char path[4096];
        fio_name(path, sizeof(path), db->dir, next, "log");
        fio_unlink(path);   /* below log_start: nobody's */
        return db_refresh_manifest(db, 0);
    }
    memtable_t *mem = mt_create_sized(db->opts.memtable_bytes);
    version_t *nv = mem ? version_clone(db->current) : NULL;
    if (!nv) {
        if (mem)
            mt_unref(mem);
        wal_file_unref(w);
        return APR_ENOMEM;
    }
    /* The old active memtable becomes the newest sealed one. */
    memmove(nv->imm + 1, nv->imm, sizeof(memtable_t *) * (size_t)nv->nimm);
    memmove(nv->imm_log + 1, nv->imm_log, sizeof(uint64_t) * (size_t)nv->nimm);
    nv->imm[0] = nv->mem;
    nv->imm_log[0] = nv->log->number;
    nv->nimm++;
    nv->mem = mem;
    wal_file_unref(nv->log);
    nv->log = w;
    ATOMIC_STORE(&db->applied_off, 0);
    ATOMIC_STORE(&db->cur_log_no, next);
    version_install(db, nv);
    /* Sealed memtables already flushed by someone can go now. */
    return db_refresh_manifest(db, 0);
}

static apr_status_t ensure_rbuf(kv_db_t *db, size_t n)
{
    if (n <= db->rbuf_cap)
        return APR_SUCCESS;
    size_t cap = db->rbuf_cap ? db->rbuf_cap : 65536;
    while (cap < n)
        cap *= 2;
    char *b = realloc(db->rbuf, cap);
    if (!b)
        return APR_ENOMEM;
    db->rbuf = b;
    db->rbuf_cap = cap;
    return APR_SUCCESS;
}

apr_status_t db_catch_up(kv_db_t *db, int writer)
{
    for (;;) {
        uint64_t size, off = db->applied_off;
        wal_file_t *log = db->current->log;
        apr_status_t rv = fio_file_size(log->fd, &size);
        if (rv)
            return rv;
        if (size <= off)
            return APR_SUCCESS;
        if (size - off > ((uint64_t)1 << 32))
            return KV_CORRUPT;
        if ((rv = ensure_rbuf(db, (size_t)(size - off))))
            return rv;
        rv = fio_pread_full(log->fd, db->rbuf, (size_t)(size - off), off);
        if (rv == APR_EOF) /* a writer truncated a torn tail meanwhile */
            continue;
        if (rv)
            return rv;
        size_t pos = 0, avail = (size_t)(size - off);
        uint64_t rotate_to = 0;
        while (pos < avail) {
            wal_view_t v;
            size_t n = wal_decode(db->rbuf + pos, avail - pos, &v);
            if (n == 0)
                break;
            if (v.type == WAL_ROTATE) {
                rotate_to = v.next_log;
                break;
            }
            if ((rv = apply_batch(db, &v)))
                return rv;
            pos += n;
            ATOMIC_STORE(&db->applied_off, off + pos);
            ATOMIC_STORE(&db->visible_seq, db->last_seq);
        }
        if (rotate_to) {
            if (rotate_to != log->number + 1)
                return KV_CORRUPT;
            rv = switch_log(db, rotate_to);
            if (rv)
                return rv;
            continue;
        }
        if (pos < avail) {
            /* Torn or in-flight record.  Only a writer, who holds the log
             * lock and so knows nobody is mid-append, may cut it off; and
             * only if it is a tail.  A whole record that fails its
             * checksum is damage: cutting there would drop the records
             * after it, so refuse instead. */
            if (!wal_is_torn(db->rbuf + pos, avail - pos)) {
                db_report_corruption(db, log->number, "log", off + pos);
                return KV_CORRUPT;
            }
            if (!writer)
                return APR_SUCCESS;
            return fio_truncate(log->fd, off + pos);
        }
        return APR_SUCCESS;
    }
}

/* Behind the log?  One load of the shared commit counter says; replay if
 * so.  The count is read before replaying, so the replay covers at least
 * every write it counts. */
apr_status_t db_catch_up_if_behind(kv_db_t *db)
{
    uint64_t c = shm_commits(&db->shm);
    if (c == ATOMIC_LOAD(&db->seen_commits))
        return APR_SUCCESS;
    apr_thread_mutex_lock(db->state_mu);
    apr_status_t rv = db_catch_up(db, 0);
    if (rv == APR_SUCCESS && c > db->seen_commits)
        ATOMIC_STORE(&db->seen_commits, c);
    apr_thread_mutex_unlock(db->state_mu);
    return rv;
}

/* Take the log lock and come level with the log.  If the last holder
 * died holding it, or the shared memory is new (nobody had the directory
 * open: after a crash, say), re-read the file whatever the counter says:
 * a torn record is cut, a whole unpublished one adopted (and published). */
static apr_status_t log_lock(kv_db_t *db)
{
    int died;
    apr_status_t rv = shm_lock(&db->shm, &died);
    if (rv)
        return rv;
    apr_thread_mutex_lock(db->state_mu);
    int recover = died || db->shm.m->recover;
    if (recover || shm_commits(&db->shm) != db->seen_commits) {
        rv = db_catch_up(db, 1);
        if (rv == APR_SUCCESS) {
            ATOMIC_STORE(&db->seen_commits, recover ? shm_commit(&db->shm) : shm_commits(&db->shm));
            db->shm.m->recover = 0;
        }
    }
    apr_thread_mutex_unlock(db->state_mu);
    if (rv)
        shm_unlock(&db->shm);
    return rv;
}

/* Publish a change to the log made under the lock (state_mu held). */
static void log_published(kv_db_t *db)
{
    ATOMIC_STORE(&db->seen_commits, shm_commit(&db->shm));
}

/* ---- manifest ----------------------------------------------------- */

/* Build and install the version for manifest m (consumed).  state_mu held.
 * If the manifest has moved past our log, everything we replayed is in
 * its SSTs: start over from its first log. */
static apr_status_t install_manifest(kv_db_t *db, manifest_t *m)
{
    version_t *cur = db->current;
    version_t *nv = calloc(1, sizeof(*nv));
    if (!nv) {
        mf_free(m);
        return APR_ENOMEM;
    }
    nv->refs = 1;
    nv->db = db;
    nv->mf = *m;
    apr_status_t rv = version_open_files(db, nv, cur);
    if (rv)
        goto fail;
    int reset = !cur || m->log_start > db->cur_log_no;
    if (reset) {
        if ((rv = wal_file_open(db, m->log_start, 1, &nv->log)))
            goto fail;
        if (!(nv->mem = mt_create_sized(db->opts.memtable_bytes))) {
            rv = APR_ENOMEM;
            goto fail;
        }
    }
    else {
        nv->log = cur->log;
        __atomic_fetch_add(&nv->log->refs, 1, __ATOMIC_RELAXED);
        nv->mem = cur->mem;
        mt_ref(nv->mem);
        nv->imm = calloc((size_t)cur->nimm + 1, sizeof(memtable_t *));
        nv->imm_log = calloc((size_t)cur->nimm + 1, sizeof(uint64_t));
        if (!nv->imm || !nv->imm_log) {
            rv = APR_ENOMEM;
            goto fail;
        }
        for (int i = 0; i < cur->nimm; i++) {
            if (cur->imm_log[i] >= m->log_start) {
                nv->imm[nv->nimm] = cur->imm[i];
                nv->imm_log[nv->nimm++] = cur->imm_log[i];
                mt_ref(cur->imm[i]);
            }
        }
    }
    if (m->last_seq > db->last_seq)
        db->last_seq = m->last_seq;
    if (reset) {
        ATOMIC_STORE(&db->applied_off, 0);
        ATOMIC_STORE(&db->cur_log_no, m->log_start);
    }
    ATOMIC_STORE(&db->visible_seq, db->last_seq);
    if (cur)
        version_install(db, nv);
    else
        db->current = nv;
    return APR_SUCCESS;
fail:
    version_unref(nv);   /* frees nv->mf, i.e. m */
    return rv;
}

apr_status_t db_refresh_manifest(kv_db_t *db, int force)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/MANIFEST", db->dir);
    apr_status_t rv = APR_SUCCESS;
    for (int tries = 0; tries < REFRESH_TRIES; tries++) {
        struct stat st;
        if (stat(path, &st) < 0)
            return APR_FROM_OS_ERROR(errno);
        /* We keep the loaded manifest open, so its inode is not reused. */
        if (!force && db->current && st.st_ino == db->mf_ino)
            return APR_SUCCESS;
        force = 0;
        manifest_t m;
        ino_t ino;
        int fd;
        if ((rv = mf_read(db->dir, &m, &ino, &fd)))
            return rv;
        if (db->current && m.generation <= db->current->mf.generation)
            mf_free(&m);
        else if ((rv = install_manifest(db, &m)) != APR_SUCCESS) {
            close(fd);
            if (!APR_STATUS_IS_ENOENT(rv))
                return rv;
            /* A file it lists was removed by a newer manifest: read again. */
            force = 1;
            continue;
        }
        if (db->mf_fd >= 0)
            close(db->mf_fd);
        db->mf_fd = fd;
        db->mf_ino = ino;
        /* Loop: check it was not replaced while we loaded it. */
    }
    return rv;
}

/* ---- open / close --------------------------------------------------- */

static apr_status_t open_lockfile(kv_db_t *db, const char *name, int *fd)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", db->dir, name);
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    return *fd < 0 ? APR_FROM_OS_ERROR(errno) : APR_SUCCESS;
}

/* First opener of an empty directory writes the initial manifest and log
 * (under the log lock, so two first openers do it once). */
static apr_status_t init_directory(kv_db_t *db)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/MANIFEST", db->dir);
    if (access(path, F_OK) == 0)
        return APR_SUCCESS;
    apr_status_t rv = fio_lock(db->lock_fd, 1);
    if (rv)
        return rv;
    if (access(path, F_OK) != 0) {
        wal_file_t *w = NULL;
        rv = wal_file_open(db, 1, 1, &w);
        if (rv == APR_SUCCESS) {
            wal_file_unref(w);
            manifest_t m;
            mf_init(&m);
            m.generation = 1;
            m.log_start = 1;
            m.next_sst = 1;
            rv = mf_write(db->dir, &m);
        }
    }
    fio_unlock(db->lock_fd);
    return rv;
}

static apr_status_t db_cleanup(void *data)
{
    return kv_db_close(data);
}

apr_status_t kv_db_open(kv_db_t **dbp, const char *dir, const kv_options_t *opts,
                        apr_pool_t *pool)
{
    kv_db_t *db = apr_pcalloc(pool, sizeof(*db));
    apr_status_t rv;
    pthread_mutex_init(&db->wq_mu, NULL);
    db->pool = pool;
    db->dir = apr_pstrdup(pool, dir);
    db->lock_fd = db->flock_fd = db->mf_fd = db->shm.fd = -1;
    if (opts)
        db->opts = *opts;
    else
        kv_options_default(&db->opts);
    if (db->opts.memtable_bytes < 4096)
        db->opts.memtable_bytes = 4096;
    if (db->opts.max_key_bytes == 0 || db->opts.max_key_bytes > 65535)
        db->opts.max_key_bytes = 65535;
    if (db->opts.max_value_bytes == 0 || db->opts.max_value_bytes > (256u << 20))
        db->opts.max_value_bytes = 256u << 20;
    if (db->opts.sync_interval_ms == 0)
        db->opts.sync_interval_ms = 1000;

    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return APR_FROM_OS_ERROR(errno);
    if ((rv = apr_thread_mutex_create(&db->flush_mu, APR_THREAD_MUTEX_DEFAULT, pool))
        || (rv = apr_thread_mutex_create(&db->state_mu, APR_THREAD_MUTEX_DEFAULT, pool))
        || (rv = apr_thread_mutex_create(&db->sync_mu, APR_THREAD_MUTEX_DEFAULT, pool))
        || (rv = apr_thread_mutex_create(&db->bg_mu, APR_THREAD_MUTEX_DEFAULT, pool))
        || (rv = apr_thread_cond_create(&db->sync_cv, pool))
        || (rv = apr_thread_cond_create(&db->bg_cv, pool))
        || (rv = apr_thread_cond_create(&db->flushed_cv, pool))
        || (rv = apr_thread_rwlock_create(&db->rw, pool)))
        return rv;
    if ((rv = open_lockfile(db, "LOCK", &db->lock_fd))
        || (rv = open_lockfile(db, "FLUSHLOCK", &db->flock_fd))
        || (rv = init_directory(db))
        || (rv = shm_attach(&db->shm, db->dir, db->lock_fd))) {
        if (db->lock_fd >= 0)
            close(db->lock_fd);
        if (db->flock_fd >= 0)
            close(db->flock_fd);
        return rv;
    }
    /* A pre-cleanup: it must run before the pool destroys its subpools,
     * one of which belongs to the background thread. */
    apr_pool_pre_cleanup_register(pool, db, db_cleanup);

    apr_thread_mutex_lock(db->state_mu);
    uint64_t commits = shm_commits(&db->shm);
    rv = db_refresh_manifest(db, 1);
    if (rv == APR_SUCCESS)
        rv = db_catch_up(db, 0);
    if (rv == APR_SUCCESS)
        ATOMIC_STORE(&db->seen_commits, commits);
    apr_thread_mutex_unlock(db->state_mu);
    if (rv == APR_SUCCESS && db->opts.background)
        rv = flush_start(db);
    if (rv != APR_SUCCESS) {
        kv_db_close(db);
        return rv;
    }
    *dbp = db;
    return APR_SUCCESS;
}

apr_status_t kv_db_close(kv_db_t *db)
{
    if (!db || db->closed)
        return APR_SUCCESS;
    db->closed = 1;
    /* The closing thread's scratch pool goes now (a thread's exit frees
     * it otherwise, but the main thread's exit does not). */
    pthread_once(&scratch_once, scratch_init);
    apr_pool_t *scratch = pthread_getspecific(scratch_key);
    if (scratch) {
        pthread_setspecific(scratch_key, NULL);
        apr_pool_destroy(scratch);
    }
    flush_stop(db);
    apr_status_t rv = APR_SUCCESS;
    if (db->current) {
        if (db->opts.sync_mode != KV_SYNC_OFF)
            rv = fio_fdatasync(db->current->log->fd);
        version_unref(db->current);
        db->current = NULL;
    }
    for (int l = 0; l < KV_MAX_LEVELS; l++)
        free(db->cptr[l]);
    free(db->rbuf);
    db->rbuf = NULL;
    if (db->lock_fd >= 0)
        close(db->lock_fd);
    if (db->flock_fd >= 0)
        close(db->flock_fd);
    if (db->mf_fd >= 0)
        close(db->mf_fd);
    shm_detach(&db->shm);
    db->lock_fd = db->flock_fd = db->mf_fd = -1;
    pthread_mutex_destroy(&db->wq_mu);
    return rv;
}

/* ---- the write path ------------------------------------------------- */

/* Make sure the record at (log, end) is on stable storage.  Writers share
 * one fdatasync: whoever finds none running syncs for all who wait.
 * Before it syncs, the leader gives the writers of this process that are
 * still appending (they hold or wait for the log lock, microseconds from
 * joining) a bounded moment to join: one fdatasync costs far more than
 * the wait, and without it each sync covers only the writers that
 * happened to be ready.  Waiters sit in a list (sync_mu) from which the
 * leader takes every one its sync covered, so the count it gathers
 * against is of writers still waiting, not of covered ones that have not
 * yet woken to leave. */
#define GATHER_YIELDS 64

typedef struct sync_waiter {
    uint64_t log, end;
    int covered;
    struct sync_waiter *next;
} sync_waiter_t;

/* Take the waiters that (log, upto) or a later rotation covers out of
 * the list.  sync_mu held. */
static void sync_release(kv_db_t *db, uint64_t log, uint64_t upto)
{
    uint64_t cur = ATOMIC_LOAD(&db->cur_log_no);
    for (sync_waiter_t **pp = &db->sync_list; *pp;) {
        sync_waiter_t *x = *pp;
        /* A rotation fdatasyncs the old log before sealing it. */
        if (x->log < log || (x->log == log && x->end <= upto) || x->log < cur) {
            x->covered = 1;
            *pp = x->next;
            db->sync_waiting--;
        }
        else
            pp = &x->next;
    }
}

static apr_status_t group_sync(kv_db_t *db, uint64_t log, uint64_t end)
{
    apr_status_t rv = APR_SUCCESS;
    sync_waiter_t me = { log, end, 0, NULL };
    apr_thread_mutex_lock(db->sync_mu);
    me.next = db->sync_list;
    db->sync_list = &me;
    db->sync_waiting++;
    sync_release(db, db->synced_log, db->synced_off);
    while (!me.covered) {
        if (db->syncing) {
            apr_thread_cond_wait(db->sync_cv, db->sync_mu);
            continue;
        }
        db->syncing = 1;
        for (int i = 0; i < GATHER_YIELDS
                        && db->sync_waiting < __atomic_load_n(&db->sync_inflight, __ATOMIC_ACQUIRE); i++) {
            apr_thread_mutex_unlock(db->sync_mu);
            sched_yield();
            apr_thread_mutex_lock(db->sync_mu);
        }
        apr_thread_mutex_unlock(db->sync_mu);
        apr_thread_rwlock_rdlock(db->rw);
        wal_file_t *w = db->current->log;
        __atomic_fetch_add(&w->refs, 1, __ATOMIC_RELAXED);
        uint64_t upto = ATOMIC_LOAD(&db->applied_off);
        apr_thread_rwlock_unlock(db->rw);
        rv = fio_fdatasync(w->fd);
        STAT_ADD(db, syncs, 1);
        apr_thread_mutex_lock(db->sync_mu);
        db->syncing = 0;
        if (rv == APR_SUCCESS && (w->number > db->synced_log
                                  || (w->number == db->synced_log && upto > db->synced_off))) {
            db->synced_log = w->number;
            db->synced_off = upto;
        }
        wal_file_unref(w);
        sync_release(db, db->synced_log, db->synced_off);
        apr_thread_cond_broadcast(db->sync_cv);
        if (rv)
            break;
    }
    if (!me.covered) {
        /* Failed: leave the list; the others try again themselves. */
        for (sync_waiter_t **pp = &db->sync_list; *pp; pp = &(*pp)->next)
            if (*pp == &me) {
                *pp = me.next;
                db->sync_waiting--;
                break;
            }
    }
    apr_thread_mutex_unlock(db->sync_mu);
    return rv;
}

/* Seal the records of the writers from `first` to `last` (queue order)
 * with consecutive sequence numbers, append them at the end of the log in
 * one pwrite and apply them here; each writer gets its first sequence
 * number, the log and the end of the append.  Caller holds the log lock
 * and has caught up.  On failure the log is cut back and nothing is
 * applied. */
static apr_status_t append_group(kv_db_t *db, kv_writer_t *first, kv_writer_t *last)
{
    /* The log is stable (only log-lock holders rotate), but the version
     * holding it may be replaced by a refresh meanwhile: take the log
     * with a reference, under state_mu. */
    apr_thread_mutex_lock(db->state_mu);
    uint64_t seq = db->last_seq + 1;
    wal_file_t *w = db->current->log;
    __atomic_fetch_add(&w->refs, 1, __ATOMIC_RELAXED);
    uint64_t log_no = w->number, off = db->applied_off;
    apr_thread_mutex_unlock(db->state_mu);
    size_t len = 0;
    for (kv_writer_t *x = first;; x = x->next) {
        wal_rec_seal(x->rec, seq);
        x->first = seq;
        seq += x->rec->count;
        len += x->rec->len;
        if (x == last)
            break;
    }
    /* One writer's record goes out as it is; a group's are copied into
     * one buffer, so the whole group costs one system call. */
    char *buf = first->rec->buf;
    if (first != last) {
        if (!(buf = malloc(len))) {
            wal_file_unref(w);
            return APR_ENOMEM;
        }
        size_t at = 0;
        for (kv_writer_t *x = first;; x = x->next) {
            memcpy(buf + at, x->rec->buf, x->rec->len);
            at += x->rec->len;
            if (x == last)
                break;
        }
    }
    apr_status_t rv = fio_pwrite_full(w->fd, buf, len, off);
    if (rv)
        /* Leave no partial record; if even this fails, the next writer
         * finds a torn tail and cuts it. */
        fio_truncate(w->fd, off);
    wal_file_unref(w);
    if (rv == APR_SUCCESS) {
        uint64_t end = off + len;
        for (kv_writer_t *x = first;; x = x->next) {
            x->log_no = log_no;
            x->end = end;
            if (x == last)
                break;
        }
        apr_thread_mutex_lock(db->state_mu);
        if (db->applied_off == off) {
            /* Nobody in this process has replayed them yet: apply our copy. */
            for (size_t at = 0; rv == APR_SUCCESS && at < len;) {
                wal_view_t view;
                size_t n = wal_decode(buf + at, len - at, &view);
                rv = n ? apply_batch(db, &view) : KV_CORRUPT;
                at += n;
            }
            if (rv == APR_SUCCESS) {
                ATOMIC_STORE(&db->applied_off, end);
                ATOMIC_STORE(&db->visible_seq, db->last_seq);
            }
        }
        /* Published even if applying failed: the records are in the log. */
        log_published(db);
        apr_thread_mutex_unlock(db->state_mu);
    }
    if (buf != first->rec->buf)
        free(buf);
    return rv;
}

/* While L0 is full, wait for compaction (this process's or another's)
 * before starting a new log: writes that outran compaction would
 * otherwise pile up files every read must probe and every L0 merge must
 * rewrite.  A handle without a background thread compacts here itself.
 * Bounded: a compaction that fails (a bad disk) or takes very long must
 * not stop the store; then writes go on.  Log lock held. */
#define L0_STOP_MAX_WAIT apr_time_from_sec(2)

static apr_status_t l0_stop(kv_db_t *db)
{
    apr_time_t t0 = apr_time_now();
    uint64_t errors = __atomic_load_n(&db->st.bg_errors, __ATOMIC_RELAXED);
    int stalled = 0;
    /* The caller has just refreshed the view; refresh after each wait. */
    for (;;) {
        apr_thread_mutex_lock(db->state_mu);
        int full = compact_l0_full(&db->current->mf);
        apr_thread_mutex_unlock(db->state_mu);
        if (!full || apr_time_now() - t0 > L0_STOP_MAX_WAIT
            || __atomic_load_n(&db->st.bg_errors, __ATOMIC_RELAXED) != errors)
            break;
        stalled = 1;
        apr_status_t rv = APR_EAGAIN;
        if (!db->bg && (rv = flush_lock(db, 0)) == APR_SUCCESS) {
            int did = 0;
            rv = compact_once(db, &did);
            flush_unlock(db);
        }
        else if (rv == APR_EAGAIN) {
            flush_kick(db);
            apr_thread_mutex_lock(db->bg_mu);
            apr_thread_cond_timedwait(db->flushed_cv, db->bg_mu, apr_time_from_msec(5));
            apr_thread_mutex_unlock(db->bg_mu);
            rv = APR_SUCCESS;
        }
        if (rv)
            return rv;
        apr_thread_mutex_lock(db->state_mu);
        rv = db_refresh_manifest(db, 0);
        apr_thread_mutex_unlock(db->state_mu);
        if (rv)
            return rv;
    }
    if (stalled) {
        STAT_ADD(db, write_stalls, 1);
        STAT_ADD(db, write_stall_us, (uint64_t)(apr_time_now() - t0));
    }
    return APR_SUCCESS;
}

/* Seal the current log when it, or the memtable built from it, has
 * reached the memtable size (small entries take more room in the table
 * than in the log).  If the previously sealed log is still waiting for
 * its flush, flush it here first (a write stall, counted).  Log lock
 * held. */
static apr_status_t maybe_rotate(kv_db_t *db, int force)
{
    apr_status_t rv = APR_SUCCESS;
    apr_thread_mutex_lock(db->state_mu);
    uint64_t size = db->applied_off, n = db->current->log->number;
    int rotate = size > 0 && (force || size >= db->opts.memtable_bytes
                              || mt_bytes(db->current->mem) >= db->opts.memtable_bytes);
    if (rotate)
        rv = db_refresh_manifest(db, 0);
    int behind = db->current->mf.log_start < n;
    apr_thread_mutex_unlock(db->state_mu);
    if (!rotate || rv)
        return rv;
    if (behind) {
        /* A write stall: the previous log is still waiting for its flush.
         * Flush it here if nobody else is flushing; otherwise wait for the
         * flusher, which may be mid-compaction and flushes between output
         * files (woken by this process's flushes, or polling briefly for
         * another process's). */
        apr_time_t t0 = apr_time_now();
        for (;;) {
            if ((rv = flush_lock(db, 0)) == APR_SUCCESS) {
                rv = flush_sealed_logs(db);
                flush_unlock(db);
                break;
            }
            if (rv != APR_EAGAIN)
                break;
            apr_thread_mutex_lock(db->bg_mu);
            apr_thread_cond_timedwait(db->flushed_cv, db->bg_mu, apr_time_from_msec(5));
            apr_thread_mutex_unlock(db->bg_mu);
            apr_thread_mutex_lock(db->state_mu);
            rv = db_refresh_manifest(db, 0);
            behind = db->current->mf.log_start < n;
            apr_thread_mutex_unlock(db->state_mu);
            if (rv || !behind)
                break;
        }
        if (rv)
            return rv;
        STAT_ADD(db, write_stalls, 1);
        STAT_ADD(db, write_stall_us, (uint64_t)(apr_time_now() - t0));
    }
    if ((rv = l0_stop(db)))
        return rv;
    apr_thread_mutex_lock(db->state_mu);
    wal_file_t *w = db->current->log;
    __atomic_fetch_add(&w->refs, 1, __ATOMIC_RELAXED);
    apr_thread_mutex_unlock(db->state_mu);
    wal_rec_t rec;
    wal_rec_init(&rec);
    if ((rv = wal_rec_rotate(&rec, n + 1))) {
        wal_file_unref(w);
        return rv;
    }
    wal_rec_seal(&rec, 0);
    /* Everything before the rotation record is durable before the log is
     * sealed, so group_sync may trust any sealed log (see group_sync). */
    if (db->opts.sync_mode != KV_SYNC_OFF && (rv = fio_fdatasync(w->fd)))
        goto out;
    if ((rv = fio_pwrite_full(w->fd, rec.buf, rec.len, size))) {
        fio_truncate(w->fd, size);   /* if this fails, the next writer cuts it */
        goto out;
    }
    if (db->opts.sync_mode != KV_SYNC_OFF && (rv = fio_fdatasync(w->fd)))
        goto out;
    wal_file_t *next;
    if ((rv = wal_file_open(db, n + 1, 1, &next)))
        goto out;
    wal_file_unref(next);
    uint64_t end;
    (void)end;
    apr_thread_mutex_lock(db->state_mu);
    rv = db_catch_up(db, 1);
    log_published(db);
    apr_thread_mutex_unlock(db->state_mu);
    flush_kick(db);
out:
    wal_file_unref(w);
    wal_rec_free(&rec);
    return rv;
}

/* The decision a conditional write or a delete takes, against the state
 * every process agrees on (we hold the log lock and have caught up). */
static apr_status_t check_cond(kv_db_t *db, const char *key, size_t klen,
                               const kv_write_opts_t *o, apr_pool_t *pool,
                               kv_ent_t *cur, int *exists)
{
    version_t *v = version_acquire(db, NULL);
    apr_status_t rv = version_get_live(v, key, klen, ATOMIC_LOAD(&db->visible_seq), pool, cur);
    version_unref(v);
    if (rv != APR_SUCCESS && rv != KV_NOTFOUND)
        return rv;
    *exists = rv == APR_SUCCESS;
    if (o && o->cond == KV_IF_SEQ && (!*exists || cur->seq != o->if_seq))
        return KV_CONFLICT;
    if (o && o->cond == KV_IF_ABSENT && *exists)
        return KV_CONFLICT;
    return APR_SUCCESS;
}

typedef enum { W_PUT, W_DEL, W_BATCH } wkind_e;

/* A pool for one thread's short-lived lookups: unmanaged, so creating it
 * touches no pool another thread uses; cleared after each use, destroyed
 * when the thread exits. */
static void scratch_destroy(void *p)
{
    apr_pool_destroy(p);
}

static void scratch_init(void)
{
    pthread_key_create(&scratch_key, scratch_destroy);
}

static apr_pool_t *scratch_pool(void)
{
    pthread_once(&scratch_once, scratch_init);
    apr_pool_t *p = pthread_getspecific(scratch_key);
    if (!p) {
        if (apr_pool_create_unmanaged_ex(&p, NULL, NULL) != APR_SUCCESS)
            return NULL;
        pthread_setspecific(scratch_key, p);
    }
    return p;
}

/* Writes queued behind the front one join its append up to this many
 * bytes (a little more than the first record, so small writes do not wait
 * for a large one to be copied), as LevelDB groups its writers. */
#define GROUP_MAX_BYTES ((size_t)1 << 20)
#define GROUP_SMALL_BYTES ((size_t)128 << 10)

/* Write w and the writers queued behind it up to last (w alone if it is
 * not plain): the log lock, catching up, the check a conditional write or
 * a delete needs, a rotation if due, one append for all of them. */
static apr_status_t write_group(kv_db_t *db, kv_writer_t *w, kv_writer_t *last)
{
    apr_status_t rv = log_lock(db);
    if (rv)
        return rv;
    if (!w->plain) {
        /* The current value goes into the caller's pool when it wants the
         * old value back, else into this thread's scratch pool. */
        apr_pool_t *tmp = w->old && w->pool ? w->pool : scratch_pool();
        int exists = 0;
        kv_ent_t cur;
        rv = tmp ? check_cond(db, w->key, w->klen, w->o, tmp, &cur, &exists) : APR_ENOMEM;
        if (rv == APR_SUCCESS && w->kind == W_DEL && !exists)
            rv = KV_NOTFOUND;
        if (rv == APR_SUCCESS && w->kind == W_DEL && w->old && w->pool) {
            w->old->data = cur.val;
            w->old->len = cur.vlen;
            w->old->seq = cur.seq;
            w->old->expire_at = (apr_int64_t)cur.expire;
        }
        if (tmp && tmp != w->pool)
            apr_pool_clear(tmp);
    }
    if (rv == APR_SUCCESS)
        rv = maybe_rotate(db, 0);
    if (rv == APR_SUCCESS)
        rv = append_group(db, w, last);
    shm_unlock(&db->shm);
    return rv;
}

/* Line w (a plain write) up in the write queue and wait until it is
 * written: by the writer in front of it, or, once at the front, by
 * itself, together with the writers queued behind it.  Sets w->rv and,
 * on success, w->first, w->log_no and w->end. */
static void queue_write(kv_db_t *db, kv_writer_t *w)
{
    pthread_cond_init(&w->cv, NULL);
    pthread_mutex_lock(&db->wq_mu);
    if (db->wq_tail)
        db->wq_tail->next = w;
    else
        db->wq_head = w;
    db->wq_tail = w;
    while (!w->done && db->wq_head != w)
        pthread_cond_wait(&w->cv, &db->wq_mu);
    if (!w->done) {
        /* At the front: take the writers queued behind, in order. */
        kv_writer_t *last = w;
        size_t bytes = w->rec->len;
        size_t cap = bytes <= GROUP_SMALL_BYTES ? bytes + GROUP_SMALL_BYTES : GROUP_MAX_BYTES;
        /* A group lands in the memtable whole: keep it to a quarter of it. */
        size_t quarter = db->opts.memtable_bytes / 4;
        if (cap > quarter)
            cap = quarter > bytes ? quarter : bytes;
        while (last->next && bytes + last->next->rec->len <= cap) {
            last = last->next;
            bytes += last->rec->len;
        }
        pthread_mutex_unlock(&db->wq_mu);
        apr_status_t rv = write_group(db, w, last);
        pthread_mutex_lock(&db->wq_mu);
        db->wq_head = last->next;
        if (!db->wq_head)
            db->wq_tail = NULL;
        for (kv_writer_t *x = w, *next;; x = next) {
            next = x->next;
            x->rv = rv;
            x->done = 1;
            if (x != w)
                pthread_cond_signal(&x->cv);
            if (x == last)
                break;
        }
        if (db->wq_head)
            pthread_cond_signal(&db->wq_head->cv);
    }
    pthread_mutex_unlock(&db->wq_mu);
    pthread_cond_destroy(&w->cv);
}

/* The one write path: a plain write lines up in this process's write
 * queue and, at the front, writes for itself and the plain writers behind
 * it; a write that must check the state first (a condition, a delete
 * returning the old value) appends alone and needs no queue: the log lock
 * orders it against everyone.  Either way: lock, catch up, check, rotate,
 * append, apply, unlock; then sync.  For a delete, old receives the value
 * it removed. */
static apr_status_t do_write(kv_db_t *db, wkind_e kind, wal_rec_t *rec,
                             const char *key, size_t klen,
                             const kv_write_opts_t *o, apr_pool_t *pool,
                             kv_value_t *old, uint64_t *seq)
{
    if (db->closed)
        return KV_CLOSED;
    int syncing = db->opts.sync_mode == KV_SYNC_ALWAYS;
    if (syncing)
        __atomic_fetch_add(&db->sync_inflight, 1, __ATOMIC_ACQ_REL);
    int blind = o && o->cond == KV_BLIND;
    kv_writer_t w = { .rec = rec, .kind = kind, .key = key, .klen = klen, .o = o,
                      .pool = pool, .old = old };
    w.plain = kind == W_BATCH || blind || (kind == W_PUT && (!o || o->cond == KV_IF_ANY));
    if (!w.plain)
        w.rv = write_group(db, &w, &w);
    else
        queue_write(db, &w);
    apr_status_t rv = w.rv;
    if (rv) {
        if (syncing)
            __atomic_fetch_sub(&db->sync_inflight, 1, __ATOMIC_ACQ_REL);
        return rv;
    }
    if (seq)
        *seq = w.first;
    STAT_ADD(db, bytes_written, rec->len);
    if (syncing) {
        rv = group_sync(db, w.log_no, w.end);
        __atomic_fetch_sub(&db->sync_inflight, 1, __ATOMIC_ACQ_REL);
    }
    else if (db->opts.sync_mode == KV_SYNC_INTERVAL) {
        apr_thread_mutex_lock(db->bg_mu);
        db->dirty = 1;
        apr_thread_mutex_unlock(db->bg_mu);
    }
    return rv;
}

static apr_status_t check_sizes(kv_db_t *db, size_t klen, size_t vlen)
{
    if (klen == 0)
        return KV_INVALID;
    if (klen > db->opts.max_key_bytes || vlen > db->opts.max_value_bytes)
        return KV_TOOLARGE;
    return APR_SUCCESS;
}

apr_status_t kv_put(kv_db_t *db, const void *key, apr_size_t klen,
                    const void *val, apr_size_t vlen,
                    const kv_write_opts_t *opts, apr_uint64_t *seq)
{
    apr_status_t rv = check_sizes(db, klen, vlen);
    if (rv)
        return rv;
    wal_rec_t rec;
    wal_rec_init(&rec);
    uint64_t expire = opts && opts->expire_at > 0 ? (uint64_t)opts->expire_at : 0;
    if (!(rv = wal_rec_batch(&rec))
        && !(rv = wal_rec_op(&rec, WOP_PUT, key, klen, val, vlen, expire)))
        rv = do_write(db, W_PUT, &rec, key, klen, opts, NULL, NULL, seq);
    wal_rec_free(&rec);
    if (rv == APR_SUCCESS)
        STAT_ADD(db, sets, 1);
    return rv;
}

apr_status_t kv_delete(kv_db_t *db, const void *key, apr_size_t klen,
                       const kv_write_opts_t *opts, apr_pool_t *pool,
                       kv_value_t *old)
{
    apr_status_t rv = check_sizes(db, klen, 0);
    if (rv)
        return rv;
    wal_rec_t rec;
    wal_rec_init(&rec);
    if (!(rv = wal_rec_batch(&rec))
        && !(rv = wal_rec_op(&rec, WOP_DEL, key, klen, NULL, 0, 0)))
        rv = do_write(db, W_DEL, &rec, key, klen, opts, pool, old, NULL);
    wal_rec_free(&rec);
    if (rv == APR_SUCCESS)
        STAT_ADD(db, dels, 1);
    return rv;
}

/* ---- batches -------------------------------------------------------- */

struct kv_batch_t {
    wal_rec_t rec;
    apr_status_t err;
};

static apr_status_t batch_cleanup(void *data)
{
    wal_rec_free(&((kv_batch_t *)data)->rec);
    return APR_SUCCESS;
}

apr_status_t kv_batch_create(kv_batch_t **bp, apr_pool_t *pool)
{
    kv_batch_t *b = apr_pcalloc(pool, sizeof(*b));
    wal_rec_init(&b->rec);
    apr_status_t rv = wal_rec_batch(&b->rec);
    if (rv)
        return rv;
    apr_pool_cleanup_register(pool, b, batch_cleanup, apr_pool_cleanup_null);
    *bp = b;
    return APR_SUCCESS;
}

apr_status_t kv_batch_put(kv_batch_t *b, const void *key, apr_size_t klen,
                          const void *val, apr_size_t vlen, apr_int64_t expire_at)
{
    if (klen == 0)
        return KV_INVALID;
    if (klen > 65535)
        return KV_TOOLARGE;
    return wal_rec_op(&b->rec, WOP_PUT, key, klen, val, vlen,
                      expire_at > 0 ? (uint64_t)expire_at : 0);
}

apr_status_t kv_batch_delete(kv_batch_t *b, const void *key, apr_size_t klen)
{
    if (klen == 0)
        return KV_INVALID;
    if (klen > 65535)
        return KV_TOOLARGE;
    return wal_rec_op(&b->rec, WOP_DEL, key, klen, NULL, 0, 0);
}

int kv_batch_count(const kv_batch_t *b)
{
    return (int)b->rec.count;
}

apr_status_t kv_write_batch(kv_db_t *db, kv_batch_t *b, apr_uint64_t *first_seq)
{
    if (b->rec.count == 0)
        return APR_SUCCESS;
    apr_status_t rv = do_write(db, W_BATCH, &b->rec, NULL, 0, NULL, NULL, NULL, first_seq);
    if (rv == APR_SUCCESS)
        STAT_ADD(db, batches, 1);
    return rv;
}

/* ---- reads ---------------------------------------------------------- */

apr_status_t kv_get(kv_db_t *db, const void *key, apr_size_t klen,
                    apr_pool_t *pool, kv_value_t *out)
{
    if (db->closed)
        return KV_CLOSED;
    if (klen == 0)
        return KV_INVALID;
    apr_status_t rv = db_catch_up_if_behind(db);
    if (rv)
        return rv;
    uint64_t snap;
    version_t *v = version_acquire(db, &snap);
    kv_ent_t e;
    rv = version_get_live(v, key, klen, snap, pool, &e);
    version_unref(v);
    STAT_ADD(db, gets, 1);
    if (rv)
        return rv;
    out->data = e.val;
    out->len = e.vlen;
    out->seq = e.seq;
    out->expire_at = (apr_int64_t)e.expire;
    STAT_ADD(db, bytes_read, e.vlen);
    return APR_SUCCESS;
}

/* ---- maintenance ---------------------------------------------------- */

apr_status_t kv_db_flush(kv_db_t *db)
{
    if (db->closed)
        return KV_CLOSED;
    apr_status_t rv;
    if ((rv = log_lock(db)) == APR_SUCCESS) {
        rv = maybe_rotate(db, 1);
        shm_unlock(&db->shm);
    }
    if (rv)
        return rv;
    if ((rv = flush_lock(db, 1)))
        return rv;
    rv = flush_sealed_logs(db);
    flush_unlock(db);
    return rv;
}

apr_status_t kv_db_compact(kv_db_t *db)
{
    if (db->closed)
        return KV_CLOSED;
    apr_status_t rv = flush_lock(db, 1);
    if (rv)
        return rv;
    int did = 1;
    for (int i = 0; i < 1000 && did && rv == APR_SUCCESS; i++)
        rv = compact_once(db, &did);
    flush_unlock(db);
    return rv;
}

apr_status_t kv_db_stats(kv_db_t *db, kv_stats_t *st)
{
    if (db->closed)
        return KV_CLOSED;
    memset(st, 0, sizeof(*st));
    st->flushes = __atomic_load_n(&db->st.flushes, __ATOMIC_RELAXED);
    st->compactions = __atomic_load_n(&db->st.compactions, __ATOMIC_RELAXED);
    st->write_stalls = __atomic_load_n(&db->st.write_stalls, __ATOMIC_RELAXED);
    st->write_stall_us = __atomic_load_n(&db->st.write_stall_us, __ATOMIC_RELAXED);
    st->gets = __atomic_load_n(&db->st.gets, __ATOMIC_RELAXED);
    st->sets = __atomic_load_n(&db->st.sets, __ATOMIC_RELAXED);
    st->dels = __atomic_load_n(&db->st.dels, __ATOMIC_RELAXED);
    st->batches = __atomic_load_n(&db->st.batches, __ATOMIC_RELAXED);
    st->bytes_read = __atomic_load_n(&db->st.bytes_read, __ATOMIC_RELAXED);
    st->bytes_written = __atomic_load_n(&db->st.bytes_written, __ATOMIC_RELAXED);
    st->syncs = __atomic_load_n(&db->st.syncs, __ATOMIC_RELAXED);
    apr_status_t rv = db_catch_up_if_behind(db);
    if (rv)
        return rv;
    uint64_t snap;
    version_t *v = version_acquire(db, &snap);
    st->last_seq = snap;
    for (int i = 0; i < v->mf.nfiles; i++) {
        const mf_file_t *f = &v->mf.files[i];
        st->sst_files++;
        st->sst_bytes += f->bytes;
        st->level_files[f->level]++;
        st->level_bytes[f->level] += f->bytes;
    }
    st->sst_mapped_bytes = sst_mapped_bytes();
    st->memtable_bytes = mt_bytes(v->mem);
    for (int i = 0; i < v->nimm; i++)
        st->memtable_bytes += mt_bytes(v->imm[i]);
    /* Unflushed logs: the sealed ones count at their size on disk. */
    uint64_t size;
    if (fio_file_size(v->log->fd, &size) == APR_SUCCESS)
        st->wal_bytes += size;
    for (uint64_t n = v->mf.log_start; n < v->log->number; n++) {
        char path[4096];
        struct stat sb;
        fio_name(path, sizeof(path), db->dir, n, "log");
        if (stat(path, &sb) == 0)
            st->wal_bytes += (uint64_t)sb.st_size;
    }
    version_unref(v);
    return APR_SUCCESS;
}
