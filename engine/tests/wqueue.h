/* wqueue.h -- for tests that line writers up in a handle's write queue
 * (write.c) in a chosen order: its length, and a bounded wait for it.
 * Reads engine internals (db_impl.h). */
#ifndef KV_TEST_WQUEUE_H
#define KV_TEST_WQUEUE_H

#include <pthread.h>
#include "testutil.h"
#include "db_impl.h"

static inline int tu_queue_len(kv_db_t *db)
{
    int n = 0;
    pthread_mutex_lock(&db->wq_mu);
    for (kv_writer_t *x = db->wq_head; x; x = x->next)
        n++;
    pthread_mutex_unlock(&db->wq_mu);
    return n;
}

/* Until n writers are queued, at most 10 s. */
static inline void tu_wait_queue(kv_db_t *db, int n)
{
    apr_time_t t0 = apr_time_now();
    while (tu_queue_len(db) < n) {
        cr_assert_lt(apr_time_now() - t0, apr_time_from_sec(10), "writer %d never queued", n);
        sched_yield();
    }
}

#endif
