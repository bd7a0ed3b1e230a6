/* background.c -- each process's background APR threads.  The flush
 * thread, every second or sync interval (or when kicked by a rotation),
 * flushes sealed logs and compacts while it holds the flush lock, and
 * reloads a changed manifest; it sits above flush.c and compact.c and
 * calls down into both.  Under KV_SYNC_INTERVAL a second thread, the
 * syncer, syncs the log every interval if this process wrote since: on
 * its own, so a long flush or compaction (seconds of fsyncs on a slow
 * disk) never holds the interval's promise back behind it. */
#include "db_impl.h"

#define SWEEP_SECONDS 60

/* One round of background work: flush sealed logs, then compact step by
 * step, taking the flush lock for each step so a stalled writer (or
 * another process) gets its turn in between.  Skipped when another
 * process holds the lock: it is doing the same work. */
static void background_work(kv_db_t *db)
{
    int did = 1;
    for (int i = 0; did && i < 64; i++) {
        apr_thread_mutex_lock(db->bg_mu);
        int stop = db->stop;
        apr_thread_mutex_unlock(db->bg_mu);
        if (stop || flush_lock(db, 0) != APR_SUCCESS)
            return;
        apr_status_t rv = flush_sealed_logs(db);
        if (rv == APR_SUCCESS)
            rv = compact_once(db, &did);
        flush_unlock(db);
        if (did) {
            /* Writers waiting for L0 to shrink look again. */
            apr_thread_mutex_lock(db->bg_mu);
            apr_thread_cond_broadcast(db->flushed_cv);
            apr_thread_mutex_unlock(db->bg_mu);
        }
        if (rv != APR_SUCCESS) {
            STAT_ADD(db, bg_errors, 1);
            return;
        }
    }
}

static void *APR_THREAD_FUNC bg_main(apr_thread_t *t, void *data)
{
    kv_db_t *db = data;
    apr_interval_time_t wait = apr_time_from_msec(
        db->opts.sync_mode == KV_SYNC_INTERVAL ? db->opts.sync_interval_ms : 1000);
    apr_thread_mutex_lock(db->bg_mu);
    while (!db->stop) {
        if (!db->kicked)
            apr_thread_cond_timedwait(db->bg_cv, db->bg_mu, wait);
        if (db->stop)
            break;
        db->kicked = 0;
        apr_thread_mutex_unlock(db->bg_mu);
        background_work(db);
        /* A snapshot killed with its process keeps the files it linked
         * until someone sweeps: look now and then, not only at opens. */
        if (apr_time_now() - db->swept > apr_time_from_sec(SWEEP_SECONDS)) {
            db->swept = apr_time_now();
            snapshot_sweep(db->dir);
        }
        apr_thread_mutex_lock(db->state_mu);
        if (catchup_refresh_manifest(db, 0) != APR_SUCCESS)
            STAT_ADD(db, bg_errors, 1);
        apr_thread_mutex_unlock(db->state_mu);
        apr_thread_mutex_lock(db->bg_mu);
    }
    apr_thread_mutex_unlock(db->bg_mu);
    /* Return rather than apr_thread_exit(): pthread_exit trips ASan's
     * sigaltstack check in Debian 12's GCC, and the pool goes with ours. */
    (void)t;
    return NULL;
}

/* KV_SYNC_INTERVAL: every interval, sync the log if this process wrote
 * since the last time.  The flag is taken before the sync reads the end:
 * a write published before its writer set the flag is covered by this
 * sync or the next. */
static void *APR_THREAD_FUNC syncer_main(apr_thread_t *t, void *data)
{
    kv_db_t *db = data;
    apr_interval_time_t wait = apr_time_from_msec(db->opts.sync_interval_ms);
    apr_thread_mutex_lock(db->bg_mu);
    while (!db->stop) {
        apr_thread_cond_timedwait(db->syncer_cv, db->bg_mu, wait);
        if (db->stop)
            break;
        apr_thread_mutex_unlock(db->bg_mu);
        if (__atomic_exchange_n(&db->dirty, 0, __ATOMIC_SEQ_CST))
            commit_sync_dirty(db);
        apr_thread_mutex_lock(db->bg_mu);
    }
    apr_thread_mutex_unlock(db->bg_mu);
    (void)t;
    return NULL;
}

apr_status_t background_start(kv_db_t *db)
{
    db->kicked = 1;   /* first round at once: orphans, leftover sealed logs */
    apr_status_t rv = apr_thread_create(&db->bg, NULL, bg_main, db, db->pool);
    if (rv != APR_SUCCESS) {
        db->bg = NULL;   /* APR may have set a handle to a thread that never ran */
        return rv;
    }
    if (db->opts.sync_mode == KV_SYNC_INTERVAL
        && (rv = apr_thread_create(&db->syncer, NULL, syncer_main, db, db->pool)))
        db->syncer = NULL;
    return rv;   /* on failure kv_db_open closes: background_stop joins what started */
}

void background_stop(kv_db_t *db)
{
    if (!db->bg)
        return;
    apr_thread_mutex_lock(db->bg_mu);
    db->stop = 1;
    apr_thread_cond_broadcast(db->bg_cv);
    apr_thread_cond_broadcast(db->syncer_cv);
    apr_thread_mutex_unlock(db->bg_mu);
    apr_status_t trv;
    apr_thread_join(&trv, db->bg);
    db->bg = NULL;
    if (db->syncer) {
        apr_thread_join(&trv, db->syncer);
        db->syncer = NULL;
    }
}

void background_kick(kv_db_t *db)
{
    if (!db->bg)
        return;
    apr_thread_mutex_lock(db->bg_mu);
    db->kicked = 1;
    apr_thread_cond_signal(db->bg_cv);
    apr_thread_mutex_unlock(db->bg_mu);
}
