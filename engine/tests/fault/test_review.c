/* test_review.c -- reproductions found by the adversarial review of the
 * published-end protocol (fault build).  Each test fails on the code it
 * was written against; see the comment of each for the interleaving. */
#include <errno.h>
#include <sys/wait.h>
#include "testutil.h"
#include "fault.h"

static kv_db_t *open_db(const char *dir, apr_pool_t *pool, kv_sync_mode_e mode)
{
    kv_options_t o = tu_opts(1 << 20, 0);
    o.sync_mode = mode;
    kv_db_t *db = NULL;
    if (kv_db_open(&db, dir, &o, pool) != APR_SUCCESS)
        return NULL;
    return db;
}

/* recover_end (write.c) publishes a rotation record nobody published and
 * nobody synced, creates the next log, and raises the synced end past the
 * sealed log without an fdatasync of it.
 *
 *   1. P (sync off) holds the log lock and rotates log 1: the rotation
 *      record is written (write.c: rotate, pwrite), and P is killed
 *      before its fdatasync of log 1 (kill -9, OOM killer, a crash).  No
 *      other process is alive (an Apache restart follows).
 *   2. Q opens: the mapping is new, recover_end scans log 1 to the
 *      rotation record, finds 000002.log missing, creates it
 *      (wal_file_open create: the directory is synced, log 1 is not),
 *      publishes (2, 0) and raises the synced end to (2, 0).
 *   3. Q puts k2 under KV_SYNC_ALWAYS: appended at (2, 0), fdatasync of
 *      log 2 only, acknowledged as durable.
 *   4. Power is lost before anyone flushed log 1 into an SST (a handle
 *      without a background thread; with one, until its first round).
 *      Log 1 comes back as it was last synced: without the rotation
 *      record.  The next open's recover_end stops in log 1 (no rotation
 *      record), publishes (1, x) and cut_back unlinks 000002.log:
 *      the acknowledged, "durable" k2 is gone.
 * The power-loss model lives in Q (it tracks log 1 from Q's first write,
 * when it was empty; P never synced anything before it died). */
Test(review, recovery_trusts_an_unsynced_rotation_and_loses_a_synced_write, .timeout = 60)
{
    char *dir = tu_tmpdir();
    apr_pool_t *pool = tu_pool();
    kv_db_t *db = open_db(dir, pool, KV_SYNC_OFF);
    cr_assert_not_null(db);
    kv_db_close(db);
    pid_t q = fork();
    cr_assert_geq(q, 0);
    if (q == 0) {
        fault_power_arm(dir, 0);   /* track only; cut by hand below */
        apr_pool_t *p = tu_pool();
        kv_db_t *d = open_db(dir, p, KV_SYNC_OFF);
        if (!d || kv_put(d, TU_STR("k0"), TU_STR("v0"), NULL, NULL) != APR_SUCCESS)
            _exit(10);
        kv_db_close(d);
        pid_t pp = fork();
        if (pp < 0)
            _exit(11);
        if (pp == 0) {
            kv_db_t *e = open_db(dir, p, KV_SYNC_OFF);
            if (!e || kv_put(e, TU_STR("k1"), TU_STR("v1"), NULL, NULL) != APR_SUCCESS)
                _exit(12);
            /* Die inside the rotation's fdatasync, log lock held. */
            fault_fail(FAULT_SYNC, ".log", 1, 1, 0, 0, 1);
            kv_db_flush(e);
            _exit(13);
        }
        int st;
        if (waitpid(pp, &st, 0) != pp || !WIFEXITED(st) || WEXITSTATUS(st) != FAULT_EXIT)
            _exit(14);
        kv_db_t *f = open_db(dir, p, KV_SYNC_ALWAYS);
        if (!f)
            _exit(15);
        if (kv_put(f, TU_STR("k2"), TU_STR("durable"), NULL, NULL) != APR_SUCCESS)
            _exit(16);
        /* k2 is acknowledged under KV_SYNC_ALWAYS: the power may go. */
        fault_power_cut();
    }
    int status;
    cr_assert_eq(waitpid(q, &status, 0), q);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == FAULT_EXIT,
              "setup failed: child status %d", status);
    db = open_db(dir, pool, KV_SYNC_OFF);
    cr_assert_not_null(db, "the store does not open after the power loss");
    kv_value_t v;
    apr_status_t rv = kv_get(db, TU_STR("k2"), pool, &v);
    cr_expect_eq(rv, APR_SUCCESS,
                 "k2, acknowledged under KV_SYNC_ALWAYS, is lost after a power loss (rv %d)", rv);
    kv_db_close(db);
    apr_pool_destroy(pool);
    tu_rmrf(dir);
    free(dir);
}
