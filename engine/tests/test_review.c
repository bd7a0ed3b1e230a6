/* test_review.c -- reproductions found by the adversarial review of the
 * published-end protocol (normal build).  The tests reach into the
 * engine's internals (db_impl.h) only to hold the log lock and to watch
 * the write queue, so an interleaving can be forced without sleeps.
 * Each test's comment describes the defect as found (the code it was
 * written against); DESIGN.md says how it was fixed. */
#include <pthread.h>
#include "testutil.h"
#include "wqueue.h"

typedef struct {
    kv_db_t *db;
    const char *key;
    kv_batch_t *batch;
    apr_status_t rv;
    int done;
} wr_t;

static void *wr_main(void *arg)
{
    wr_t *w = arg;
    if (w->batch)
        w->rv = kv_write_batch(w->db, w->batch, NULL);
    else
        w->rv = kv_put(w->db, w->key, strlen(w->key), TU_STR("v"), NULL, NULL);
    __atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* A writer's own readers see its records before the published end covers
 * them.  append_group (write.c) applies the group under state_mu with
 * catchup_apply_own, whose applied_to moves `applied` and `visible_seq`
 * record by record, and only after the last record calls shm_publish.  A
 * reader of the same process loads the end, finds `applied` >= it (it is
 * past it), takes no lock and answers from visible_seq: it reads records
 * no other process can see yet.  Interleaving forced here:
 *   - the log lock is held (by the test) so that the writers of handle a
 *     line up: L alone, then P (a put of "probe") and B (a batch of 6000
 *     entries) behind it;
 *   - the lock is released: L appends, then P, at the front, appends P
 *     and B as one group and applies P, then B (milliseconds);
 *   - meanwhile a reader of a gets "probe", and then (strictly after) a
 *     reader of b does not: a read going back in time across processes.
 * Had the writer died during B's apply (fault build: FAULT_APPLY with
 * die), the successor would cut the group back: a value a process
 * answered with that nobody will ever see again. */
Test(review, writer_process_reads_its_group_before_it_is_published, .timeout = 60)
{
    char *dir = tu_tmpdir();
    apr_pool_t *pool = tu_pool();
    kv_options_t o = tu_opts(8 << 20, 0);
    kv_db_t *a, *b;
    cr_assert_eq(kv_db_open(&a, dir, &o, pool), APR_SUCCESS);
    cr_assert_eq(kv_db_open(&b, dir, &o, pool), APR_SUCCESS);
    kv_batch_t *batch;
    cr_assert_eq(kv_batch_create(&batch, pool), APR_SUCCESS);
    for (unsigned long i = 0; i < 6000; i++) {
        char k[32];
        tu_key(k, sizeof k, "b", i);
        cr_assert_eq(kv_batch_put(batch, k, strlen(k), TU_STR("x"), 0), APR_SUCCESS);
    }
    int seen_a = 0, missed_b = 0, tries = 0;
    for (int round = 0; round < 20 && !missed_b; round++) {
        char lead[32], probe[32];
        snprintf(lead, sizeof lead, "lead%d", round);
        snprintf(probe, sizeof probe, "probe%d", round);
        cr_assert_eq(pthread_mutex_lock(&a->shm.m->log_mu), 0);
        wr_t wl = { a, lead, NULL, 0, 0 }, wp = { a, probe, NULL, 0, 0 }, wb = { a, NULL, batch, 0, 0 };
        pthread_t tl, tp, tb;
        pthread_create(&tl, NULL, wr_main, &wl);
        tu_wait_queue(a, 1);
        pthread_create(&tp, NULL, wr_main, &wp);
        tu_wait_queue(a, 2);
        pthread_create(&tb, NULL, wr_main, &wb);
        tu_wait_queue(a, 3);
        pthread_mutex_unlock(&a->shm.m->log_mu);
        /* Bounded: until the group is done (or 10 s). */
        apr_time_t t0 = apr_time_now();
        while (!__atomic_load_n(&wb.done, __ATOMIC_ACQUIRE)
               && apr_time_now() - t0 < apr_time_from_sec(10)) {
            kv_value_t v;
            tries++;
            if (kv_get(a, probe, strlen(probe), pool, &v) != APR_SUCCESS)
                continue;
            seen_a = 1;
            /* a answered "probe": a read that starts now must see it. */
            apr_status_t rb = kv_get(b, probe, strlen(probe), pool, &v);
            if (rb == KV_NOTFOUND && !__atomic_load_n(&wp.done, __ATOMIC_ACQUIRE))
                missed_b = 1;
            break;
        }
        pthread_join(tl, NULL);
        pthread_join(tp, NULL);
        pthread_join(tb, NULL);
        cr_assert_eq(wl.rv, APR_SUCCESS);
        cr_assert_eq(wp.rv, APR_SUCCESS);
        cr_assert_eq(wb.rv, APR_SUCCESS);
    }
    cr_log_info("seen by a: %d, reads: %d", seen_a, tries);
    cr_expect_not(missed_b, "handle a answered \"probe\" before it was published; "
                  "a later read through handle b did not find it");
    kv_db_close(a);
    kv_db_close(b);
    apr_pool_destroy(pool);
    tu_rmrf(dir);
    free(dir);
}
