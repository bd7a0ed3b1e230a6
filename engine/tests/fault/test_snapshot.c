/* test_snapshot.c (fault build) -- the snapshot's retry, made to happen
 * at an exact instant: fault.c's fault_call runs a real compaction or
 * flush just before the snapshot links a file, so the file it is about to
 * link is gone and the manifest replaced; the snapshot must start over
 * from the new manifest and still be the store.  And a link that fails
 * for another reason fails the snapshot and leaves nothing behind.
 * (test_snapshot.c in the plain build takes snapshots under real
 * concurrency, where these races come by chance.) */
#include <errno.h>
#include "snaputil.h"
#include "fault.h"

static void compact_now(void *arg)
{
    cr_assert_eq(kv_db_compact(arg), APR_SUCCESS);
}

static void flush_now(void *arg)
{
    cr_assert_eq(kv_db_flush(arg), APR_SUCCESS);
}

static void put_keys(kv_db_t *db, int from, int to)
{
    for (int i = from; i < to; i++) {
        char k[32], v[64];
        snprintf(k, sizeof k, "key%04d", i);
        snprintf(v, sizeof v, "value-%d", i);
        cr_assert_eq(kv_put(db, k, strlen(k), v, strlen(v), NULL, NULL), APR_SUCCESS);
    }
}

/* The restored snapshot passes kvlsm-check and holds keys 0..n-1. */
static void expect_restored(const char *out, int n, apr_pool_t *pool)
{
    cr_assert_eq(su_check(out), 0, "kvlsm-check finds the restored snapshot damaged");
    kv_options_t o = tu_opts(1 << 20, 0);
    kv_db_t *r;
    cr_assert_eq(kv_db_open(&r, out, &o, pool), APR_SUCCESS);
    for (int i = 0; i < n; i++) {
        char k[32], v[64];
        snprintf(k, sizeof k, "key%04d", i);
        snprintf(v, sizeof v, "value-%d", i);
        kv_value_t got;
        cr_assert_eq(kv_get(r, k, strlen(k), pool, &got), APR_SUCCESS, "%s lost", k);
        cr_assert_str_eq(got.data, v);
    }
    kv_db_close(r);
}

/* Four L0 files; at the snapshot's first SST link a compaction merges
 * them into L1 and removes them. */
Test(snapshot_fault, retries_when_a_compaction_removes_a_listed_sst, .timeout = 60)
{
    fault_clear();
    su_store_t t;
    su_open(&t, 1);
    kv_db_t *db = t.db;
    apr_pool_t *pool = t.pool;
    for (int f = 0; f < 4; f++) {
        put_keys(db, f * 50, f * 50 + 50);
        cr_assert_eq(kv_db_flush(db), APR_SUCCESS);
    }
    put_keys(db, 200, 220);
    fault_call(FAULT_LINK, ".sst", 1, compact_now, db);
    kv_snapshot_t *s;
    cr_assert_eq(kv_snapshot_open(&s, db, pool), APR_SUCCESS);
    cr_assert_geq(fault_seen(), 1, "setup: no SST was linked");
    fault_clear();
    const kv_snapshot_info_t *info = kv_snapshot_info(s);
    cr_assert_eq(info->attempts, 2, "the snapshot did not start over (%d attempts)", info->attempts);
    kv_stats_t st;
    cr_assert_eq(kv_db_stats(db, &st), APR_SUCCESS);
    cr_assert_eq(st.level_files[0], 0, "setup: the compaction did not empty L0");
    cr_assert_eq(info->nfiles, 2 + (int)st.sst_files, "MANIFEST, the L1 files, the log");
    su_restore(s, t.out);
    cr_assert_eq(kv_snapshot_close(s), APR_SUCCESS);
    expect_restored(t.out, 220, pool);
    su_close(&t);
}

/* At the link of the active log a flush seals it, writes it into an SST
 * and removes it. */
Test(snapshot_fault, retries_when_a_flush_removes_the_log, .timeout = 60)
{
    fault_clear();
    su_store_t t;
    su_open(&t, 1);
    kv_db_t *db = t.db;
    apr_pool_t *pool = t.pool;
    put_keys(db, 0, 100);
    fault_call(FAULT_LINK, ".log", 1, flush_now, db);
    kv_snapshot_t *s;
    cr_assert_eq(kv_snapshot_open(&s, db, pool), APR_SUCCESS);
    fault_clear();
    const kv_snapshot_info_t *info = kv_snapshot_info(s);
    cr_assert_eq(info->attempts, 2, "the snapshot did not start over (%d attempts)", info->attempts);
    cr_assert_eq(info->nfiles, 3, "MANIFEST, the flushed SST, the new empty log");
    cr_assert_str_eq(info->files[2].name, "000002.log");
    cr_assert_eq(info->files[2].bytes, 0);
    su_restore(s, t.out);
    cr_assert_eq(kv_snapshot_close(s), APR_SUCCESS);
    expect_restored(t.out, 100, pool);
    su_close(&t);
}

/* Any other failure (here: no space for the directory entry) is the
 * snapshot's error, and its directory goes. */
Test(snapshot_fault, a_failed_link_fails_it_and_leaves_nothing, .timeout = 30)
{
    fault_clear();
    su_store_t t;
    su_open(&t, 0);
    kv_db_t *db = t.db;
    apr_pool_t *pool = t.pool;
    put_keys(db, 0, 10);
    cr_assert_eq(kv_db_flush(db), APR_SUCCESS);
    fault_fail(FAULT_LINK, ".sst", 1, 1, ENOSPC, 0, 0);
    kv_snapshot_t *s;
    apr_status_t rv = kv_snapshot_open(&s, db, pool);
    fault_clear();
    cr_assert(APR_STATUS_IS_ENOSPC(rv), "rv %d", rv);
    cr_assert_null(s);
    cr_assert_eq(su_private_dirs(t.dir), 0);
    /* And the next one works. */
    cr_assert_eq(kv_snapshot_open(&s, db, pool), APR_SUCCESS);
    cr_assert_eq(kv_snapshot_close(s), APR_SUCCESS);
    su_close(&t);
}
