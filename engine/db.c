/* db.c -- the engine's facade: options, open and close, put/delete/batch
 * (handed to the write path, write.c, then to commit.c for durability),
 * point reads (after catching up, catchup.c), flush/compact on demand and
 * stats.  The multi-process protocol is in docs/DESIGN.md. */
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
#include "filename.h"

void kv_options_default(kv_options_t *o)
{
    memset(o, 0, sizeof(*o));
    o->memtable_bytes = 4u << 20;
    o->sync_mode = KV_SYNC_INTERVAL;
    o->sync_interval_ms = 1000;
    o->max_key_bytes = 4096;
    o->max_value_bytes = 1u << 20;
    o->background = 1;
    o->map_bytes = KV_MAP_ALL;
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
    case KV_SYNCFAIL: m = "a log fdatasync failed: writes are refused until the store is reopened"; break;
    }
    if (m) {
        apr_cpystrn(buf, m, n);
        return buf;
    }
    return apr_strerror(rv, buf, n);
}

/* ---- open / close --------------------------------------------------- */

static apr_status_t open_lockfile(kv_db_t *db, const char *name, int *fd)
{
    char path[4096];
    fn_named(path, sizeof(path), db->dir, name);
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    return *fd < 0 ? APR_FROM_OS_ERROR(errno) : APR_SUCCESS;
}

/* First opener of an empty directory writes the initial manifest and log
 * (under the log lock, so two first openers do it once). */
static apr_status_t init_directory(kv_db_t *db)
{
    char path[4096];
    fn_named(path, sizeof(path), db->dir, FN_MANIFEST);
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
    pthread_mutex_init(&db->fsync_mu, NULL);
    db->pool = pool;
    db->dir = apr_pstrdup(pool, dir);
    db->lock_fd = db->flock_fd = db->mf_fd = db->shm.fd = db->stats.fd = -1;
    if (opts)
        db->opts = *opts;
    else
        kv_options_default(&db->opts);
    if (db->opts.memtable_bytes < 4096)
        db->opts.memtable_bytes = 4096;
    /* A log position keeps offsets below 2^36 (shm.h): a log is sealed at
     * the memtable size plus one group, far below that. */
    if (db->opts.memtable_bytes > ((apr_size_t)1 << 30))
        db->opts.memtable_bytes = (apr_size_t)1 << 30;
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
        || (rv = apr_thread_cond_create(&db->syncer_cv, pool))
        || (rv = apr_thread_cond_create(&db->flushed_cv, pool))
        || (rv = apr_thread_rwlock_create(&db->rw, pool)))
        return rv;
    if ((rv = open_lockfile(db, FN_LOCK, &db->lock_fd))
        || (rv = open_lockfile(db, FN_FLUSHLOCK, &db->flock_fd))
        || (rv = init_directory(db))
        || (rv = shm_attach(&db->shm, db->dir, db->lock_fd))
        || (rv = stats_attach(&db->stats, db->dir, db->lock_fd))) {
        shm_detach(&db->shm);
        if (db->lock_fd >= 0)
            close(db->lock_fd);
        if (db->flock_fd >= 0)
            close(db->flock_fd);
        return rv;
    }
    /* Private directories of snapshots killed with their process pin
     * the files they link: the next open removes them. */
    snapshot_sweep(db->dir);
    db->swept = apr_time_now();
    /* A pre-cleanup: it must run before the pool destroys its subpools,
     * one of which belongs to the background thread. */
    apr_pool_pre_cleanup_register(pool, db, db_cleanup);

    /* Nobody had the directory open: find the published end in the files
     * before anyone reads (write.c). */
    if (__atomic_load_n(&db->shm.m->recover, __ATOMIC_ACQUIRE))
        rv = write_recover(db);
    if (rv == APR_SUCCESS) {
        apr_thread_mutex_lock(db->state_mu);
        rv = catchup_refresh_manifest(db, 1);
        if (rv == APR_SUCCESS)
            rv = catchup_to(db, shm_end(&db->shm));
        apr_thread_mutex_unlock(db->state_mu);
    }
    if (rv == APR_SUCCESS && db->opts.background)
        rv = background_start(db);
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
    write_scratch_release();
    background_stop(db);
    apr_status_t rv = APR_SUCCESS;
    if (db->current) {
        if (db->opts.sync_mode != KV_SYNC_OFF && db->shm.m && !shm_sync_failed(&db->shm))
            rv = log_sync(db, db->current->log);
        version_unref(db->current);
        db->current = NULL;
    }
    for (int l = 0; l < KV_MAX_LEVELS; l++)
        free(db->cptr[l]);
    replay_buf_free(&db->rbuf);
    free(db->group_buf);
    db->group_buf = NULL;
    db->group_cap = 0;
    if (db->lock_fd >= 0)
        close(db->lock_fd);
    if (db->flock_fd >= 0)
        close(db->flock_fd);
    if (db->mf_fd >= 0)
        close(db->mf_fd);
    shm_detach(&db->shm);
    stats_detach(&db->stats);
    db->lock_fd = db->flock_fd = db->mf_fd = -1;
    pthread_mutex_destroy(&db->wq_mu);
    pthread_mutex_destroy(&db->fsync_mu);
    return rv;
}

/* ---- writes ---------------------------------------------------------- */

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
    write_submit(db, &w);
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
        rv = commit_wait_durable(db, w.log_no, w.end);
        __atomic_fetch_sub(&db->sync_inflight, 1, __ATOMIC_ACQ_REL);
    }
    else if (db->opts.sync_mode == KV_SYNC_INTERVAL
             && !__atomic_load_n(&db->dirty, __ATOMIC_SEQ_CST))
        /* Loaded first: no line bouncing.  Sequentially consistent with
         * the background thread's exchange: it cannot miss this flag and
         * also sync at an end read before this write was published. */
        __atomic_store_n(&db->dirty, 1, __ATOMIC_SEQ_CST);
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
    apr_status_t rv = catchup_if_behind(db);
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
    apr_status_t rv = write_rotate_now(db);
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
    /* The buckets first, then the sum, so a scrape's sum never counts an
     * observation its buckets miss (it may count fewer: adds land in
     * that order too, bucket then sum). */
    for (int b = 0; b <= KV_LATENCY_BUCKETS; b++)
        st->latency_buckets[b] = stats_read(&db->stats, ST_LATENCY_BUCKET0 + b);
    st->latency_sum_ns = stats_read(&db->stats, ST_LATENCY_SUM_NS);
#define COPY(name, id) st->name = stats_read(&db->stats, id);
    STATS_COUNTER_SLOTS(COPY)
#undef COPY
    st->counters_since = db->stats.created;
    st->counters_shared = db->stats.shared;
    st->counters_why = db->stats.why;
    apr_status_t rv = catchup_if_behind(db);
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
    st->sst_private_bytes = sst_private_bytes();
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
        fn_numbered(path, sizeof(path), db->dir, n, "log");
        if (stat(path, &sb) == 0)
            st->wal_bytes += (uint64_t)sb.st_size;
    }
    version_unref(v);
    return APR_SUCCESS;
}

/* Every counter of kv_stats_t has a slot (stats.h), and no slot more. */
#define ONE(...) +1
_Static_assert(0 KV_STATS_COUNTERS(ONE) == 0 STATS_COUNTER_SLOTS(ONE),
               "KV_STATS_COUNTERS and STATS_COUNTER_SLOTS differ");
#undef ONE

void kv_db_observe_latency(kv_db_t *db, double seconds)
{
    if (db->closed)
        return;
    if (!(seconds >= 0))
        seconds = 0;                    /* negative or NaN */
    if (seconds > 1e9)
        seconds = 1e9;                  /* keeps the conversion defined */
    stats_observe_ns(&db->stats, (uint64_t)(seconds * 1e9 + 0.5));
}

double kv_latency_bound(int i)
{
    if (i < 0 || i >= KV_LATENCY_BUCKETS)
        return 0;
    return (double)stats_latency_bound_ns[i] / 1e9;
}
