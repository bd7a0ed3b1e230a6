/* test_review_snap.c -- found while reviewing online snapshots (fault
 * build); not caused by snapshots, but an acknowledged write lost.
 *
 * owe_repair (write.c) writes REPAIR (fio_write_file_atomic: ... rename,
 * fsync(dir)) and only then sets the repair flag.  A writer killed in
 * between leaves REPAIR in place with the flag clear.  Its successor
 * takes the lock with EOWNERDEAD, cut_back succeeds, so it neither sets
 * the flag nor calls repaired(): REPAIR stays, recording an end that
 * writes now pass.  When every process has closed, recover_end trusts
 * REPAIR and cuts the log back to it, under acknowledged writes.
 *
 *   1. P opens the store (keeps the mapping alive), forks W.
 *   2. W: put k0 (acknowledged).  put x: its pwrite is short (ENOSPC),
 *      the cut-back's ftruncate fails (EIO): owe_repair writes REPAIR =
 *      end after k0; W dies inside the directory fsync after the rename
 *      (before the flag store), holding the log lock.
 *   3. P: put k1: EOWNERDEAD, cut_back succeeds, flag clear: REPAIR is
 *      left; k1 appended past REPAIR's end and acknowledged.
 *   4. P closes (nobody has the store open), reopens: recovery stops log
 *      1 at REPAIR's end: k1 is gone. */
#include <errno.h>
#include <sys/wait.h>
#include "testutil.h"
#include "fault.h"
#include "db_impl.h"

static void die_now(void *arg)
{
    (void)arg;
    _exit(FAULT_EXIT);
}

Test(review_snap, stale_repair_file_from_a_killed_writer_cuts_an_acknowledged_write, .timeout = 60)
{
    char *dir = tu_tmpdir();
    apr_pool_t *pool = tu_pool();
    kv_db_t *db = tu_open_mode(dir, pool, KV_SYNC_OFF);
    cr_assert_not_null(db);
    pid_t q = fork();
    cr_assert_geq(q, 0);
    if (q == 0) {
        fault_clear();
        apr_pool_t *p = tu_pool();
        kv_db_t *d = tu_open_mode(dir, p, KV_SYNC_OFF);
        if (!d || kv_put(d, TU_STR("k0"), TU_STR("v0"), NULL, NULL) != APR_SUCCESS)
            _exit(10);
        fault_fail(FAULT_WRITE, ".log", 1, 1, ENOSPC, 7, 0);
        fault_fail(FAULT_TRUNCATE, ".log", 1, 1, EIO, 0, 0);
        fault_call(FAULT_SYNC_DIR, NULL, 1, die_now, NULL);
        kv_put(d, TU_STR("x"), TU_STR("failed"), NULL, NULL);
        _exit(11);   /* did not die where expected */
    }
    int status;
    cr_assert_eq(waitpid(q, &status, 0), q);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == FAULT_EXIT,
              "setup failed: child status %d", WEXITSTATUS(status));
    char rp[4200];
    snprintf(rp, sizeof rp, "%s/REPAIR", dir);
    cr_assert_eq(access(rp, F_OK), 0, "setup: REPAIR was not written");
    cr_assert_eq(kv_put(db, TU_STR("k1"), TU_STR("acked"), NULL, NULL), APR_SUCCESS);
    kv_value_t v;
    cr_assert_eq(kv_get(db, TU_STR("k1"), pool, &v), APR_SUCCESS);
    int stale = access(rp, F_OK) == 0;
    kv_db_close(db);
    db = tu_open_mode(dir, pool, KV_SYNC_OFF);
    cr_assert_not_null(db, "the store does not open");
    cr_expect_eq(kv_get(db, TU_STR("k0"), pool, &v), APR_SUCCESS);
    cr_expect_eq(kv_get(db, TU_STR("k1"), pool, &v), APR_SUCCESS,
                 "k1, acknowledged, is lost after a reopen (REPAIR %s after the write)",
                 stale ? "was still there" : "was gone");
    kv_db_close(db);
    apr_pool_destroy(pool);
    tu_rmrf(dir);
    free(dir);
}
