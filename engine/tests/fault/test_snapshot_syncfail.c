/* test_snapshot_syncfail.c (fault build) -- a snapshot after a failed
 * fdatasync of the shared log.  Once a log sync has failed, the page
 * cache may hold bytes the disk never took (DESIGN.md, invariant 9), so
 * a snapshot read from it could hold writes that are not durable:
 * kv_snapshot_open refuses with KV_SYNCFAIL, from every handle, until the
 * store is reopened, and leaves no private directory behind.  Also when
 * the sync fails while the snapshot is being taken. */
#include <errno.h>
#include "snaputil.h"
#include "fault.h"

static apr_status_t put_key(kv_db_t *db, int i)
{
    char k[32], v[64];
    snprintf(k, sizeof k, "key%04d", i);
    snprintf(v, sizeof v, "value-%d", i);
    return kv_put(db, k, strlen(k), v, strlen(v), NULL, NULL);
}

/* A store with two handles, a (sync always) and b (sync off), and 20
 * keys written through a. */
static void two_handles(char **dir, apr_pool_t **pool, kv_db_t **a, kv_db_t **b)
{
    *dir = tu_tmpdir();
    *pool = tu_pool();
    fault_clear();
    *a = tu_open_mode(*dir, *pool, KV_SYNC_ALWAYS);
    *b = tu_open_mode(*dir, *pool, KV_SYNC_OFF);
    cr_assert(*a && *b);
    for (int i = 0; i < 20; i++)
        cr_assert_eq(put_key(*a, i), APR_SUCCESS);
}

Test(snapshot_syncfail, refused_after_a_failed_log_sync_until_reopen, .timeout = 60)
{
    char *dir;
    apr_pool_t *pool;
    kv_db_t *a, *b;
    two_handles(&dir, &pool, &a, &b);
    kv_snapshot_t *s;
    cr_assert_eq(kv_snapshot_open(&s, b, pool), APR_SUCCESS, "setup: a snapshot before the failure");
    cr_assert_eq(kv_snapshot_close(s), APR_SUCCESS);

    fault_fail(FAULT_SYNC, ".log", 1, 1, EIO, 0, 0);
    cr_assert_neq(put_key(a, 100), APR_SUCCESS, "setup: the write that met the failed sync was acknowledged");
    fault_clear();
    cr_assert_eq(put_key(b, 101), KV_SYNCFAIL, "setup: writes are not refused");

    /* The disk syncs again, but what it lost is lost: no snapshot from
     * either handle. */
    apr_status_t rv = kv_snapshot_open(&s, b, pool);
    cr_expect_eq(rv, KV_SYNCFAIL, "a snapshot after a failed sync: rv %d", rv);
    cr_expect_null(s);
    rv = kv_snapshot_open(&s, a, pool);
    cr_expect_eq(rv, KV_SYNCFAIL, "a snapshot after a failed sync (the failing handle): rv %d", rv);
    cr_expect_null(s);
    cr_expect_eq(su_private_dirs(dir), 0, "a refused snapshot left its directory");

    /* Reopened (every handle closed): snapshots work again. */
    kv_db_close(a);
    kv_db_close(b);
    a = tu_open_mode(dir, pool, KV_SYNC_OFF);
    cr_assert_not_null(a);
    cr_assert_eq(kv_snapshot_open(&s, a, pool), APR_SUCCESS, "no snapshot after a reopen");
    cr_assert_eq(kv_snapshot_close(s), APR_SUCCESS);
    kv_db_close(a);
    apr_pool_destroy(pool);
    tu_rmrf(dir);
    free(dir);
}

/* The sync fails while the snapshot is linking (another handle's always
 * write, run at the snapshot's link of the log): the snapshot, whose
 * bytes come from the same page cache, is refused too. */
static void failing_write(void *arg)
{
    cr_assert_neq(put_key(arg, 200), APR_SUCCESS, "setup: the write that met the failed sync was acknowledged");
}

Test(snapshot_syncfail, refused_when_the_sync_fails_while_it_is_taken, .timeout = 60)
{
    char *dir;
    apr_pool_t *pool;
    kv_db_t *a, *b;
    two_handles(&dir, &pool, &a, &b);
    fault_fail(FAULT_SYNC, ".log", 1, 1, EIO, 0, 0);
    fault_call(FAULT_LINK, ".log", 1, failing_write, a);
    kv_snapshot_t *s;
    apr_status_t rv = kv_snapshot_open(&s, b, pool);
    uint64_t seen = fault_seen();
    fault_clear();
    cr_assert_geq(seen, 1, "setup: the log was not linked");
    cr_assert_eq(put_key(b, 201), KV_SYNCFAIL, "setup: writes are not refused");
    cr_expect_eq(rv, KV_SYNCFAIL, "a snapshot taken across a failed sync: rv %d", rv);
    cr_expect_null(s);
    cr_expect_eq(su_private_dirs(dir), 0, "a refused snapshot left its directory");
    kv_db_close(a);
    kv_db_close(b);
    apr_pool_destroy(pool);
    tu_rmrf(dir);
    free(dir);
}
