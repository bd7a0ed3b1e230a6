/* commit.c -- durability: waiting until a record is on stable storage,
 * against the synced end every process shares (shm.h).  Writers of a
 * process share one fdatasync (group commit); a sync by any process, or a
 * rotation (which syncs the log it seals), covers every record before the
 * end it published.  A failed fdatasync is never retried into a success:
 * log_sync records it store-wide and every waiter not yet covered fails. */
#include <sched.h>
#include "db_impl.h"

/* Before it syncs, the leader gives the writers of this process that are
 * still appending (they hold or wait for the log lock, microseconds from
 * joining) a bounded moment to join: one fdatasync costs far more than
 * the wait.  Bounded twice: by yields, and by a quarter of what the last
 * fdatasync took (GATHER_MIN_US at least), so a writer that is slow to
 * join costs the others a fraction of a sync, never a second one.  With
 * 8 writers, 64 yields let a sync cover 4.6 of them on average (the
 * writers just woken by the sync before had not appended again yet);
 * 512 let it cover 7.8.  Waiters sit in a list (sync_mu) from which the
 * leader takes every one the synced end covers, so the count it gathers
 * against is of writers still waiting, not of covered ones that have not
 * yet woken. */
#define GATHER_YIELDS 512
#define GATHER_MIN_US 50

typedef struct sync_waiter {
    uint64_t pos;
    int covered;
    struct sync_waiter *next;
} sync_waiter_t;

/* Take the waiters the synced end covers out of the list.  sync_mu held. */
static void sync_release(kv_db_t *db)
{
    uint64_t synced = shm_synced(&db->shm);
    for (sync_waiter_t **pp = &db->sync_list; *pp;) {
        sync_waiter_t *x = *pp;
        if (x->pos <= synced) {
            x->covered = 1;
            *pp = x->next;
            db->sync_waiting--;
        }
        else
            pp = &x->next;
    }
}

/* fdatasync this process's current log and raise the synced end to the
 * published end read before it (every byte before that end had reached
 * the kernel when it was published).  A current log behind the end's is
 * sealed, hence synced by its rotation: nothing to do. */
static apr_status_t sync_current(kv_db_t *db)
{
    apr_thread_rwlock_rdlock(db->rw);
    wal_file_t *w = db->current->log;
    wal_file_ref(w);
    apr_thread_rwlock_unlock(db->rw);
    uint64_t end = shm_end(&db->shm);
    apr_status_t rv = APR_SUCCESS;
    if (logpos_log(end) == w->number) {
        if ((rv = log_sync(db, w)) == APR_SUCCESS)
            shm_raise_synced(&db->shm, end);
    }
    else if (shm_sync_failed(&db->shm))
        rv = KV_SYNCFAIL;
    wal_file_unref(w);
    return rv;
}

apr_status_t commit_wait_durable(kv_db_t *db, uint64_t log, uint64_t end)
{
    apr_status_t rv = APR_SUCCESS;
    sync_waiter_t me = { logpos(log, end), 0, NULL };
    apr_thread_mutex_lock(db->sync_mu);
    me.next = db->sync_list;
    db->sync_list = &me;
    db->sync_waiting++;
    sync_release(db);
    while (!me.covered) {
        if (shm_sync_failed(&db->shm)) {
            rv = KV_SYNCFAIL;
            break;
        }
        if (db->syncing) {
            apr_thread_cond_wait(db->sync_cv, db->sync_mu);
            sync_release(db);
            continue;
        }
        db->syncing = 1;
        apr_time_t t0 = apr_time_now();
        apr_interval_time_t budget = db->sync_us / 4 > GATHER_MIN_US ? db->sync_us / 4 : GATHER_MIN_US;
        for (int i = 0; i < GATHER_YIELDS
                        && db->sync_waiting < __atomic_load_n(&db->sync_inflight, __ATOMIC_ACQUIRE)
                        && apr_time_now() - t0 < budget; i++) {
            apr_thread_mutex_unlock(db->sync_mu);
            sched_yield();
            apr_thread_mutex_lock(db->sync_mu);
        }
        apr_thread_mutex_unlock(db->sync_mu);
        apr_time_t t1 = apr_time_now();
        rv = sync_current(db);
        apr_interval_time_t took = apr_time_now() - t1;
        apr_thread_mutex_lock(db->sync_mu);
        db->sync_us = took;
        db->syncing = 0;
        sync_release(db);
        apr_thread_cond_broadcast(db->sync_cv);
        if (rv)
            break;
    }
    if (!me.covered) {
        for (sync_waiter_t **pp = &db->sync_list; *pp; pp = &(*pp)->next)
            if (*pp == &me) {
                *pp = me.next;
                db->sync_waiting--;
                break;
            }
    }
    else
        rv = APR_SUCCESS;
    apr_thread_mutex_unlock(db->sync_mu);
    return rv;
}

void commit_sync_dirty(kv_db_t *db)
{
    if (sync_current(db) != APR_SUCCESS)
        STAT_ADD(db, bg_errors, 1);
}
