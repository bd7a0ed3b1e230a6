/* write.c -- the write path: this process's write queue, the log lock
 * (and the repair a holder owes after a failure or a dead holder), the
 * append at the published end, and log rotation.  The protocol and its
 * invariants are in docs/DESIGN.md ("The published end"); in short:
 *   - only a log-lock holder appends, at the published end, never at a
 *     position of its own;
 *   - the end moves only after the whole append reached the kernel, and a
 *     failed append is cut back before anything else is appended;
 *   - a rotation is published whole (record synced, next log created) or
 *     cut back entirely. */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#include "db_impl.h"
#include "fileio.h"
#include "filename.h"
#include "coding.h"

/* A group's buffer is kept for the next group up to this size (a group
 * is capped at GROUP_MAX_BYTES of followers, so a bigger one is a single
 * large batch leading it, which gets a buffer of its own). */
#define GROUP_BUF_KEEP ((size_t)2 << 20)

/* ---- repair and recovery ------------------------------------------------ */

/* Cut the log back to the published end: whatever lies past it (a failed
 * append, a rotation record whose rotation was not published, the next
 * log such a rotation created) was never published and is nobody's.
 * Log lock held. */
static apr_status_t cut_back(kv_db_t *db)
{
    uint64_t end = shm_end(&db->shm), n = logpos_log(end);
    wal_file_t *w;
    apr_status_t rv = wal_file_open(db, n, 0, &w);
    if (rv == APR_SUCCESS) {
        uint64_t size;
        rv = fio_file_size(w->fd, &size);
        if (rv == APR_SUCCESS && size > logpos_off(end)) {
            /* Synced: an unsynced truncate can be undone by a crash while
             * the bytes it cut were synced (recovery would adopt them). */
            rv = fio_truncate(w->fd, logpos_off(end));
            if (rv == APR_SUCCESS)
                rv = log_sync(db, w);
        }
        wal_file_unref(w);
    }
    if (rv == APR_SUCCESS) {
        char path[4096];
        fn_numbered(path, sizeof(path), db->dir, n + 1, "log");
        if (access(path, F_OK) == 0)
            rv = fio_unlink(path);
    }
    return rv;
}

/* The cut-back is owed: the repair flag tells the next lock holder, and
 * the file REPAIR (the end, synced) tells recovery, should every process
 * close before anyone repaired (the flag dies with the mapping, and
 * recovery would otherwise take the failed append's whole records as
 * published).  Best effort: if REPAIR cannot be written either, only the
 * flag remains. */
static void owe_repair(kv_db_t *db)
{
    char buf[8], tmp[4096], path[4096];
    put_u64(buf, shm_end(&db->shm));
    fn_named(tmp, sizeof(tmp), db->dir, FN_REPAIR_TMP);
    fn_named(path, sizeof(path), db->dir, FN_REPAIR);
    fio_write_file_atomic(db->dir, tmp, path, buf, sizeof(buf));
    __atomic_store_n(&db->shm.m->repair, 1, __ATOMIC_RELEASE);
}

/* The repair is done: forget it, durably, before anything is appended.
 * The directory is synced even when REPAIR is already gone: an earlier
 * holder may have unlinked it and failed the sync, and an unlink not yet
 * durable comes back with a power cut, under whatever was appended since. */
static apr_status_t repaired(kv_db_t *db)
{
    char path[4096];
    fn_named(path, sizeof(path), db->dir, FN_REPAIR);
    apr_status_t rv = APR_SUCCESS;
    if (access(path, F_OK) == 0)
        rv = fio_unlink(path);
    if (rv == APR_SUCCESS)
        rv = fio_fsync_dir(db->dir);
    if (rv)
        return rv;
    __atomic_store_n(&db->shm.m->repair, 0, __ATOMIC_RELEASE);
    return APR_SUCCESS;
}

/* The end REPAIR records, if a repair is owed (0: none). */
static uint64_t repair_owed(kv_db_t *db)
{
    char path[4096], buf[8];
    fn_named(path, sizeof(path), db->dir, FN_REPAIR);
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    return n == sizeof(buf) ? get_u64(buf) : 0;
}

/* A failure left bytes past the end: cut them now, or make the next
 * holder (or recovery) do it. */
static void cut_back_or_flag(kv_db_t *db)
{
    if (cut_back(db) != APR_SUCCESS)
        owe_repair(db);
}

/* The mapping is new (nobody had the directory open): the published end
 * is lost with the old mapping, so find it in the files.  Every whole
 * record from the manifest's first log on, following rotation records,
 * is taken as published (none of the writers that could take one back is
 * alive); a torn tail is cut, and logs past the last are removed.  A
 * whole record that fails its checksum is damage: refuse. */
static apr_status_t recover_end(kv_db_t *db)
{
    manifest_t m;
    apr_status_t rv = mf_read(db->dir, &m, NULL, NULL);
    if (rv)
        return rv;
    uint64_t n = m.log_start;
    mf_free(&m);
    /* A cut-back owed when the last process closed: nothing past that end
     * was ever published. */
    uint64_t owed = repair_owed(db);
    replay_buf_t buf = { 0 };
    for (;;) {
        wal_file_t *w;
        rv = wal_file_open(db, n, 0, &w);
        if (APR_STATUS_IS_ENOENT(rv))   /* a rotation whose writer died before creating it */
            rv = wal_file_open(db, n, 1, &w);
        if (rv)
            break;
        replay_t r;
        rv = replay_log(w->fd, 0, REPLAY_TO_END, &buf, NULL, NULL, &r);
        if (rv == APR_SUCCESS && owed && logpos_log(owed) == n) {
            r.rotated = 0;
            r.damaged = 0;
            if (r.end > logpos_off(owed))
                r.end = logpos_off(owed);
        }
        if (rv == APR_SUCCESS && r.rotated && r.next_log != n + 1)
            rv = KV_CORRUPT;
        if (rv == APR_SUCCESS && !r.rotated && r.damaged) {
            db_report_corruption(db, n, "log", r.end);
            rv = KV_CORRUPT;
        }
        if (rv == APR_SUCCESS && !r.rotated && r.end > logpos_off(UINT64_MAX))
            rv = KV_CORRUPT;   /* no end position can say it */
        if (rv == APR_SUCCESS && !r.rotated) {
            uint64_t size;
            if ((rv = fio_file_size(w->fd, &size)) == APR_SUCCESS && size > r.end)
                rv = fio_truncate(w->fd, r.end);
        }
        /* Whatever recovery takes as published must be durable before it
         * says so: its writer may have died before syncing (inside a
         * rotation's fdatasync, say), and an `always` write acknowledged
         * after this point must not sit on top of pages a power loss could
         * take.  Synced after the truncation, so a crash cannot bring back
         * what it cut while keeping what it took. */
        if (rv == APR_SUCCESS)
            rv = log_sync(db, w);
        if (rv == APR_SUCCESS && !r.rotated) {
            shm_publish(&db->shm, logpos(n, r.end));
            shm_raise_synced(&db->shm, logpos(n, r.end));
        }
        wal_file_unref(w);
        if (rv || !r.rotated)
            break;
        n++;
    }
    replay_buf_free(&buf);
    if (rv == APR_SUCCESS)
        rv = cut_back(db);   /* a next log nobody rotated into */
    if (rv == APR_SUCCESS)
        rv = fio_fsync_dir(db->dir);   /* logs created or removed above */
    if (rv == APR_SUCCESS)
        rv = repaired(db);
    return rv;
}

/* Take the log lock.  After a dead holder, cut the log back to the
 * published end before marking the lock consistent; a repair that fails
 * is left flagged for the next holder, and this write fails. */
static apr_status_t log_lock(kv_db_t *db)
{
    int died;
    apr_status_t rv = shm_lock(&db->shm, &died);
    if (rv)
        return rv;
    if (died) {
        /* The dead holder may have written REPAIR and died before it set
         * the flag: once the log is cut back to the end, that file is
         * stale, and recovery would cut to its older end, under writes
         * appended since.  Forget it along with the flag. */
        rv = cut_back(db);
        if (rv == APR_SUCCESS && repair_owed(db))
            rv = repaired(db);
        if (rv)
            owe_repair(db);
        apr_status_t crv = shm_consistent(&db->shm);
        if (rv || crv) {
            shm_unlock(&db->shm);
            return rv ? rv : crv;
        }
    }
    if (__atomic_load_n(&db->shm.m->repair, __ATOMIC_ACQUIRE)) {
        if ((rv = cut_back(db)) || (rv = repaired(db))) {
            shm_unlock(&db->shm);
            return rv;
        }
    }
    return APR_SUCCESS;
}

apr_status_t write_recover(kv_db_t *db)
{
    apr_status_t rv = log_lock(db);
    if (rv)
        return rv;
    if (__atomic_load_n(&db->shm.m->recover, __ATOMIC_ACQUIRE)) {
        rv = recover_end(db);
        if (rv == APR_SUCCESS)
            __atomic_store_n(&db->shm.m->recover, 0, __ATOMIC_RELEASE);
    }
    shm_unlock(&db->shm);
    return rv;
}

/* Lock, refuse if the store may no longer write, come level with the
 * published end. */
static apr_status_t lock_and_catch_up(kv_db_t *db)
{
    /* Most of what other processes appended since this one last wrote can
     * be applied before the lock, as a reader applies it (catchup.c): the
     * log lock, which every process's writers queue for, is then held
     * only for the little published meanwhile.  A failure here is met
     * again below, under the lock, and answered there. */
    (void)catchup_if_behind(db);
    apr_status_t rv = log_lock(db);
    if (rv)
        return rv;
    if (shm_sync_failed(&db->shm))
        rv = KV_SYNCFAIL;
    else if (__atomic_load_n(&db->shm.m->recover, __ATOMIC_ACQUIRE))
        rv = KV_CORRUPT;   /* recovery failed at open: nothing is published */
    else
        rv = catchup_if_behind(db);   /* the end cannot move while we hold the lock */
    if (rv)
        shm_unlock(&db->shm);
    return rv;
}

/* ---- rotation ----------------------------------------------------------- */

/* While L0 is full, wait for compaction (this process's or another's)
 * before starting a new log: writes that outran compaction would
 * otherwise pile up files every read must probe and every L0 merge must
 * rewrite.  A handle without a background thread compacts here itself.
 * Bounded: a compaction that fails (a bad disk) or takes very long must
 * not stop the store; then writes go on.  Failures are counted store-wide
 * (bg_errors), so one in the process we wait for ends the wait too.  Log
 * lock held. */
#define L0_STOP_MAX_WAIT apr_time_from_sec(2)

static apr_status_t l0_stop(kv_db_t *db)
{
    apr_time_t t0 = apr_time_now();
    uint64_t errors = stats_read(&db->stats, ST_bg_errors);
    int stalled = 0;
    for (;;) {
        apr_thread_mutex_lock(db->state_mu);
        int full = compact_l0_full(&db->current->mf);
        apr_thread_mutex_unlock(db->state_mu);
        if (!full || apr_time_now() - t0 > L0_STOP_MAX_WAIT
            || stats_read(&db->stats, ST_bg_errors) != errors)
            break;
        stalled = 1;
        apr_status_t rv = APR_EAGAIN;
        if (!db->bg && (rv = flush_lock(db, 0)) == APR_SUCCESS) {
            int did = 0;
            rv = compact_once(db, &did);
            flush_unlock(db);
        }
        else if (rv == APR_EAGAIN) {
            background_kick(db);
            apr_thread_mutex_lock(db->bg_mu);
            apr_thread_cond_timedwait(db->flushed_cv, db->bg_mu, apr_time_from_msec(5));
            apr_thread_mutex_unlock(db->bg_mu);
            rv = APR_SUCCESS;
        }
        if (rv)
            return rv;
        apr_thread_mutex_lock(db->state_mu);
        rv = catchup_refresh_manifest(db, 0);
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

/* A writer about to seal log n while n-1 still waits for its flush
 * flushes it here if nobody else is flushing, or waits for the flusher
 * (a write stall, counted).  Log lock held. */
static apr_status_t wait_previous_flush(kv_db_t *db, uint64_t n)
{
    apr_status_t rv;
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
        rv = catchup_refresh_manifest(db, 0);
        int behind = db->current->mf.log_start < n;
        apr_thread_mutex_unlock(db->state_mu);
        if (rv || !behind)
            break;
    }
    if (rv == APR_SUCCESS) {
        STAT_ADD(db, write_stalls, 1);
        STAT_ADD(db, write_stall_us, (uint64_t)(apr_time_now() - t0));
    }
    return rv;
}

/* Seal log n at the published end: the rotation record, an fdatasync
 * (whatever this process's sync mode: everyone may then trust a sealed
 * log as durable), log n+1 created; then, and only then, the end moves
 * to (n+1, 0).  Any failure cuts all of it back.  Log lock held, caught
 * up to the end. */
static apr_status_t rotate(kv_db_t *db)
{
    uint64_t end = shm_end(&db->shm), n = logpos_log(end);
    if (n + 1 > LOGPOS_MAX_LOG)
        return APR_ENOSPC;
    apr_thread_mutex_lock(db->state_mu);
    wal_file_t *w = db->current->log;
    wal_file_ref(w);
    apr_thread_mutex_unlock(db->state_mu);
    wal_rec_t rec;
    wal_rec_init(&rec);
    apr_status_t rv = wal_rec_rotate(&rec, n + 1);
    if (rv == APR_SUCCESS) {
        wal_rec_seal(&rec, 0);
        rv = fio_pwrite_full(w->fd, rec.buf, rec.len, logpos_off(end));
        if (rv == APR_SUCCESS)
            rv = log_sync(db, w);
        wal_file_t *next = NULL;
        if (rv == APR_SUCCESS && (rv = wal_file_open(db, n + 1, 1, &next)) == APR_SUCCESS)
            wal_file_unref(next);
        if (rv)
            cut_back_or_flag(db);
    }
    wal_file_unref(w);
    wal_rec_free(&rec);
    if (rv)
        return rv;
    /* Log n is durable to its end: say so before anyone can see n+1. */
    shm_raise_synced(&db->shm, logpos(n + 1, 0));
    shm_publish(&db->shm, logpos(n + 1, 0));
    apr_thread_mutex_lock(db->state_mu);
    rv = catchup_to(db, logpos(n + 1, 0));
    apr_thread_mutex_unlock(db->state_mu);
    background_kick(db);
    return rv;
}

/* Seal the current log when it, or the memtable built from it, has
 * reached the memtable size (small entries take more room in the table
 * than in the log).  Log lock held, caught up. */
static apr_status_t maybe_rotate(kv_db_t *db, int force)
{
    apr_status_t rv = APR_SUCCESS;
    uint64_t end = shm_end(&db->shm), size = logpos_off(end), n = logpos_log(end);
    apr_thread_mutex_lock(db->state_mu);
    int rotate_now = size > 0 && (force || size >= db->opts.memtable_bytes
                                  || mt_bytes(db->current->mem) >= db->opts.memtable_bytes);
    if (rotate_now)
        rv = catchup_refresh_manifest(db, 0);
    int behind = db->current->mf.log_start < n;
    apr_thread_mutex_unlock(db->state_mu);
    if (!rotate_now || rv)
        return rv;
    if (behind && (rv = wait_previous_flush(db, n)))
        return rv;
    if ((rv = l0_stop(db)))
        return rv;
    return rotate(db);
}

apr_status_t write_rotate_now(kv_db_t *db)
{
    apr_status_t rv = lock_and_catch_up(db);
    if (rv)
        return rv;
    rv = maybe_rotate(db, 1);
    shm_unlock(&db->shm);
    return rv;
}

/* ---- the append --------------------------------------------------------- */

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

/* Seal the records of the writers from `first` to `last` (queue order)
 * with consecutive sequence numbers and append them at the published end
 * in one pwrite.  On success they are published and applied here, in
 * that order, under state_mu.  On failure the log is cut
 * back to the end, nothing is applied or published.  Log lock held,
 * caught up. */
static apr_status_t append_group(kv_db_t *db, kv_writer_t *first, kv_writer_t *last)
{
    uint64_t end = shm_end(&db->shm);
    apr_thread_mutex_lock(db->state_mu);
    uint64_t seq = db->last_seq + 1;
    wal_file_t *w = db->current->log;
    wal_file_ref(w);
    apr_thread_mutex_unlock(db->state_mu);
    if (w->number != logpos_log(end) || ATOMIC_LOAD(&db->applied) != end) {
        wal_file_unref(w);
        return KV_CORRUPT;   /* not level with the end: a bug, never append */
    }
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
        if (len <= db->group_cap)
            buf = db->group_buf;
        else if (len <= GROUP_BUF_KEEP && (buf = realloc(db->group_buf, len))) {
            db->group_buf = buf;
            db->group_cap = len;
        }
        else if (!(buf = malloc(len))) {
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
    apr_status_t rv = APR_SUCCESS;
    if (logpos_off(end) + len >= ((uint64_t)1 << LOGPOS_OFF_BITS))
        rv = APR_ENOSPC;
    else if ((rv = fio_pwrite_full(w->fd, buf, len, logpos_off(end))))
        cut_back_or_flag(db);
    wal_file_unref(w);
    if (rv == APR_SUCCESS) {
        uint64_t new_end = logpos(logpos_log(end), logpos_off(end) + len);
        for (kv_writer_t *x = first;; x = x->next) {
            x->log_no = logpos_log(end);
            x->end = logpos_off(new_end);
            if (x == last)
                break;
        }
        apr_thread_mutex_lock(db->state_mu);
        /* Published first, then applied: this process's readers see the
         * records only once `applied` reaches them, which is after the
         * publish (a reader level with the old end waits for state_mu),
         * so none answers with a record that could still be cut back.
         * The records are whole in the file: they stay published even if
         * applying them here fails part-way (ENOMEM); this process then
         * stays behind the end and its next catch-up (a reader's or a
         * writer's) applies the rest, or fails the same way and says so.
         * Published is written: the writers are told so, whatever the
         * apply did. */
        shm_publish(&db->shm, new_end);
        (void)catchup_apply_own(db, buf, len, end);
        apr_thread_mutex_unlock(db->state_mu);
    }
    if (buf != first->rec->buf && buf != db->group_buf)
        free(buf);
    return rv;
}

/* A pool for one thread's short-lived lookups: unmanaged, so creating it
 * touches no pool another thread uses; cleared after each use, destroyed
 * when the thread exits (or by write_scratch_release). */
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

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

void write_scratch_release(void)
{
    pthread_once(&scratch_once, scratch_init);
    apr_pool_t *scratch = pthread_getspecific(scratch_key);
    if (scratch) {
        pthread_setspecific(scratch_key, NULL);
        apr_pool_destroy(scratch);
    }
}

/* Writes queued behind the front one join its append up to this many
 * bytes (a little more than the first record, so small writes do not wait
 * for a large one to be copied), as LevelDB groups its writers. */
#define GROUP_MAX_BYTES ((size_t)1 << 20)
#define GROUP_SMALL_BYTES ((size_t)128 << 10)

/* Write w and the writers queued behind it up to last (w alone if it is
 * not plain). */
static apr_status_t write_group(kv_db_t *db, kv_writer_t *w, kv_writer_t *last)
{
    apr_status_t rv = lock_and_catch_up(db);
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
 * itself, together with the writers queued behind it. */
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

void write_submit(kv_db_t *db, kv_writer_t *w)
{
    if (!w->plain)
        w->rv = write_group(db, w, w);
    else
        queue_write(db, w);
}
