/* test_review2.c -- reproductions from the second adversarial review of
 * the published-end protocol (fault build): the REPAIR file.  Each test
 * fails on the code it was written against; each comment gives the
 * interleaving as found, DESIGN.md the fix. */
#include <errno.h>
#include <sys/wait.h>
#include "testutil.h"
#include "fault.h"
#include "db_impl.h"

static int exists_in(const char *dir, const char *name)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

/* repaired() (write.c) syncs the directory after unlinking REPAIR only
 * when it finds REPAIR there.  If the unlink succeeded and the directory
 * sync failed, it returns the error with the repair flag still set; the
 * next lock holder finds REPAIR gone, clears the flag without any
 * directory sync and appends.  The unlink is not durable, so a power cut
 * brings REPAIR back, and recovery cuts the log back to the end it
 * records, under records acknowledged as durable since.
 *
 *   1. put k0 (always): acknowledged.
 *   2. put failed: its pwrite lands whole and reports ENOSPC, the cut-back
 *      fails (EIO): REPAIR = the end after k0 (written, synced), flag set.
 *   3. put k1: log_lock repairs: cut_back succeeds, unlink(REPAIR)
 *      succeeds, fsync(dir) fails (EIO): k1 fails, flag stays.
 *   4. put k2 (always): log_lock: flag set, cut_back has nothing to do,
 *      repaired() finds no REPAIR, clears the flag; k2 is appended,
 *      fdatasync'd, acknowledged as durable.
 *   5. power cut: REPAIR's removal was never made durable, it is back.
 *   6. reopen: recover_end stops log 1 at REPAIR's end: k2 is gone. */
Test(review2, repair_file_whose_removal_was_not_synced_cuts_a_synced_write, .timeout = 60)
{
    char *dir = tu_tmpdir();
    apr_pool_t *pool = tu_pool();
    kv_db_t *db = tu_open_mode(dir, pool, KV_SYNC_OFF);
    cr_assert_not_null(db);
    kv_db_close(db);
    pid_t q = fork();
    cr_assert_geq(q, 0);
    if (q == 0) {
        fault_clear();
        fault_power_arm(dir, 0);
        apr_pool_t *p = tu_pool();
        kv_db_t *d = tu_open_mode(dir, p, KV_SYNC_ALWAYS);
        if (!d || kv_put(d, TU_STR("k0"), TU_STR("v0"), NULL, NULL) != APR_SUCCESS)
            _exit(10);
        fault_fail(FAULT_WRITE, ".log", 1, 1, ENOSPC, 4096, 0);
        fault_fail(FAULT_TRUNCATE, ".log", 1, 1, EIO, 0, 0);
        if (kv_put(d, TU_STR("failed"), TU_STR("x"), NULL, NULL) == APR_SUCCESS)
            _exit(11);
        fault_clear();
        if (!__atomic_load_n(&d->shm.m->repair, __ATOMIC_ACQUIRE) || !exists_in(dir, "REPAIR"))
            _exit(12);
        fault_fail(FAULT_SYNC_DIR, NULL, 1, 1, EIO, 0, 0);
        if (kv_put(d, TU_STR("k1"), TU_STR("v1"), NULL, NULL) == APR_SUCCESS)
            _exit(13);   /* the directory sync was not where we thought */
        fault_clear();
        if (exists_in(dir, "REPAIR"))
            _exit(14);
        if (kv_put(d, TU_STR("k2"), TU_STR("durable"), NULL, NULL) != APR_SUCCESS)
            _exit(15);
        /* k2 is acknowledged under KV_SYNC_ALWAYS: the power may go. */
        fault_power_cut();
    }
    int status;
    cr_assert_eq(waitpid(q, &status, 0), q);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == FAULT_EXIT,
              "setup failed: child status %d", WEXITSTATUS(status));
    db = tu_open_mode(dir, pool, KV_SYNC_OFF);
    cr_assert_not_null(db, "the store does not open after the power loss");
    kv_value_t v;
    cr_expect_eq(kv_get(db, TU_STR("k0"), pool, &v), APR_SUCCESS);
    apr_status_t rv = kv_get(db, TU_STR("k2"), pool, &v);
    cr_expect_eq(rv, APR_SUCCESS,
                 "k2, acknowledged under KV_SYNC_ALWAYS, is lost after a power loss: the "
                 "REPAIR whose removal was never synced came back (rv %d)", rv);
    cr_expect_neq(kv_get(db, TU_STR("failed"), pool, &v), APR_SUCCESS);
    kv_db_close(db);
    apr_pool_destroy(pool);
    tu_rmrf(dir);
    free(dir);
}

/* The flusher's orphan sweep (flush.c: flush_remove_orphans, run by the
 * first flush_lock of every process: any Apache child starting) removes
 * every *.tmp, under FLUSHLOCK only.  owe_repair writes REPAIR.tmp under
 * the log lock, which the sweep does not take: a sweep between its open
 * and its rename removes REPAIR.tmp, the rename fails (ENOENT), and only
 * the repair flag remains, on a healthy disk.  Every process closes
 * before anyone writes again; recovery takes the failed put's whole
 * record as published: the put that failed, which both handles answered
 * NOTFOUND, is there after the reopen (the defect REPAIR was made for). */
static void sweep(void *arg)
{
    kv_db_t *b = arg;
    b->cleaned = 0;   /* as in a process just started */
    if (flush_lock(b, 1) == APR_SUCCESS)
        flush_unlock(b);
}

Test(review2, orphan_sweep_removes_repair_tmp_and_a_failed_put_reappears, .timeout = 60)
{
    char *dir = tu_tmpdir();
    apr_pool_t *pool = tu_pool();
    fault_clear();
    kv_db_t *a = tu_open_mode(dir, pool, KV_SYNC_OFF), *b = tu_open_mode(dir, pool, KV_SYNC_OFF);
    cr_assert(a && b);
    cr_assert_eq(kv_put(b, TU_STR("before"), TU_STR("x"), NULL, NULL), APR_SUCCESS);
    /* The put's record lands whole and the write reports ENOSPC; the
     * cut-back fails; while owe_repair syncs REPAIR.tmp, b sweeps. */
    fault_fail(FAULT_WRITE, ".log", 1, 1, ENOSPC, 4096, 0);
    fault_fail(FAULT_TRUNCATE, ".log", 1, 1, EIO, 0, 0);
    fault_call(FAULT_SYNC, "REPAIR.tmp", 1, sweep, b);
    cr_assert_neq(kv_put(a, TU_STR("p1"), TU_STR("failed"), NULL, NULL), APR_SUCCESS);
    uint64_t seen = fault_seen();
    fault_clear();
    cr_assert_geq(seen, 3, "setup: the REPAIR.tmp sync was not reached");
    kv_value_t v;
    cr_assert_eq(kv_get(a, TU_STR("p1"), pool, &v), KV_NOTFOUND);
    cr_assert_eq(kv_get(b, TU_STR("p1"), pool, &v), KV_NOTFOUND);
    cr_assert_eq(__atomic_load_n(&a->shm.m->repair, __ATOMIC_ACQUIRE), 1u,
                 "setup: the cut-back did not fail");
    cr_expect(exists_in(dir, "REPAIR"), "the sweep removed REPAIR.tmp: no REPAIR records the end");
    kv_db_close(a);
    kv_db_close(b);
    kv_db_t *c = tu_open_mode(dir, pool, KV_SYNC_OFF);
    cr_assert_not_null(c);
    cr_assert_eq(kv_get(c, TU_STR("before"), pool, &v), APR_SUCCESS);
    apr_status_t rv = kv_get(c, TU_STR("p1"), pool, &v);
    cr_expect_eq(rv, KV_NOTFOUND,
                 "p1's failed put (both handles answered NOTFOUND) is there after the reopen");
    kv_db_close(c);
    apr_pool_destroy(pool);
    tu_rmrf(dir);
    free(dir);
}
