/* test_snapshot_review2.c (fault build) -- the second adversarial review
 * of engine/snapshot.c.  Owns: writes, rotations, flushes and compactions
 * run at each exact instant of kv_snapshot_open (fault_call on its links),
 * the restored snapshot checked against what was acknowledged (this found
 * nothing: a regression guard); and the defects the review found, each
 * named for what it proves. */
#include <errno.h>
#include "snaputil.h"
#include "fault.h"

typedef struct {
    kv_db_t *w;        /* another handle: the store's other writers */
    int action;
    int next;          /* next key index to write */
} probe_t;

static apr_status_t put_i(kv_db_t *db, int i)
{
    char k[32], v[128];
    snprintf(k, sizeof k, "key%05d", i);
    snprintf(v, sizeof v, "value-%d-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", i);
    return kv_put(db, k, strlen(k), v, strlen(v), NULL, NULL);
}

static void act(void *arg)
{
    probe_t *p = arg;
    if (p->action & 1)
        for (int i = 0; i < 150; i++)
            cr_assert_eq(put_i(p->w, p->next++), APR_SUCCESS);
    if (p->action & 2)
        cr_assert_eq(kv_db_flush(p->w), APR_SUCCESS);
    if (p->action & 4)
        cr_assert_eq(kv_db_compact(p->w), APR_SUCCESS);
}

static void probe(int nth, int action)
{
    char *dir = tu_tmpdir(), *out = tu_tmpdir();
    apr_pool_t *pool = tu_pool();
    fault_clear();
    kv_options_t o = tu_opts(8192, 0);
    kv_db_t *db, *w;
    cr_assert_eq(kv_db_open(&db, dir, &o, pool), APR_SUCCESS);
    cr_assert_eq(kv_db_open(&w, dir, &o, pool), APR_SUCCESS);
    int acked = 0;
    for (int f = 0; f < 5; f++) {
        for (int i = 0; i < 60; i++)
            cr_assert_eq(put_i(db, acked++), APR_SUCCESS);
        if (f < 3)
            cr_assert_eq(kv_db_flush(db), APR_SUCCESS);
    }
    probe_t p = { w, action, 100000 };
    fault_call(FAULT_LINK, NULL, (uint64_t)nth, act, &p);
    kv_snapshot_t *s;
    apr_status_t rv = kv_snapshot_open(&s, db, pool);
    fault_clear();
    cr_assert_eq(rv, APR_SUCCESS, "nth %d action %d: rv %d", nth, action, rv);
    su_restore(s, out);
    cr_assert_eq(kv_snapshot_close(s), APR_SUCCESS);
    cr_assert_eq(su_check(out), 0, "nth %d action %d: kvlsm-check fails on the restored snapshot", nth, action);
    kv_options_t ro = tu_opts(1 << 20, 0);
    kv_db_t *r;
    cr_assert_eq(kv_db_open(&r, out, &ro, pool), APR_SUCCESS);
    for (int i = 0; i < acked; i++) {
        char k[32];
        snprintf(k, sizeof k, "key%05d", i);
        kv_value_t got;
        cr_assert_eq(kv_get(r, k, strlen(k), pool, &got), APR_SUCCESS, "nth %d action %d: %s lost", nth, action, k);
    }
    kv_db_close(r);
    kv_db_close(w);
    kv_db_close(db);
    cr_assert_eq(su_private_dirs(dir), 0);
    apr_pool_destroy(pool);
    tu_rmrf(out);
    tu_rmrf(dir);
    free(out);
    free(dir);
}

Test(snapshot_review2, is_whole_whatever_runs_at_any_of_its_links, .timeout = 120)
{
    for (int action = 1; action < 8; action++)
        for (int nth = 1; nth <= 12; nth++)
            probe(nth, action);
}

/* D1.  A snapshot trusted bytes no fdatasync had covered.  An `always`
 * writer publishes its record, then syncs; a snapshot taken in between
 * (here: inside that fdatasync, just before it fails) holds the record,
 * and the writer is then told its write failed.  The archive holds a
 * write that was never acknowledged and that the disk may not have.  A
 * snapshot must hold only what is durable: once it is handed out, a
 * write in it is acknowledged, and a write not acknowledged is not in it. */
typedef struct {
    kv_db_t *b;
    apr_pool_t *pool;
    kv_snapshot_t *s;
    apr_status_t rv;
} inside_t;

static void snapshot_inside(void *arg)
{
    inside_t *in = arg;
    in->rv = kv_snapshot_open(&in->s, in->b, in->pool);
}

Test(snapshot_review2, holds_no_write_whose_sync_then_fails, .timeout = 60)
{
    char *dir = tu_tmpdir(), *out = tu_tmpdir();
    apr_pool_t *pool = tu_pool();
    fault_clear();
    kv_db_t *a = tu_open_mode(dir, pool, KV_SYNC_ALWAYS);
    kv_db_t *b = tu_open_mode(dir, pool, KV_SYNC_OFF);
    cr_assert(a && b);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(put_i(a, i), APR_SUCCESS);
    inside_t in = { b, pool, NULL, -1 };
    fault_call_fail(FAULT_SYNC, ".log", 1, snapshot_inside, &in, EIO);
    apr_status_t wrv = put_i(a, 10);
    fault_clear();
    cr_assert_eq(in.rv == APR_SUCCESS || in.rv == KV_SYNCFAIL, 1, "setup: the snapshot failed otherwise: %d", in.rv);
    int in_snapshot = 0;
    if (in.rv == APR_SUCCESS) {
        su_restore(in.s, out);
        cr_assert_eq(kv_snapshot_close(in.s), APR_SUCCESS);
        kv_options_t ro = tu_opts(1 << 20, 0);
        kv_db_t *r;
        cr_assert_eq(kv_db_open(&r, out, &ro, pool), APR_SUCCESS);
        kv_value_t got;
        in_snapshot = kv_get(r, TU_STR("key00010"), pool, &got) == APR_SUCCESS;
        kv_db_close(r);
    }
    cr_expect(in_snapshot == (wrv == APR_SUCCESS),
              "the snapshot %s key00010, whose write %s (write rv %d, snapshot rv %d)",
              in_snapshot ? "holds" : "lacks", wrv == APR_SUCCESS ? "was acknowledged" : "failed",
              wrv, in.rv);
    kv_db_close(a);
    kv_db_close(b);
    apr_pool_destroy(pool);
    tu_rmrf(out);
    tu_rmrf(dir);
    free(out);
    free(dir);
}

/* A snapshot taken inside a rotation: the rotation record is written past
 * the published end and is being synced, the next log does not exist
 * yet.  The snapshot counts the log to the end (not the record), and the
 * restored store holds every write acknowledged before it.  (Passes: a
 * regression guard.) */
Test(snapshot_review2, taken_inside_a_rotation_is_the_store_before_it, .timeout = 60)
{
    char *dir = tu_tmpdir(), *out = tu_tmpdir();
    apr_pool_t *pool = tu_pool();
    fault_clear();
    kv_options_t o = tu_opts(8192, 0);
    kv_db_t *a, *b;
    cr_assert_eq(kv_db_open(&a, dir, &o, pool), APR_SUCCESS);
    cr_assert_eq(kv_db_open(&b, dir, &o, pool), APR_SUCCESS);
    inside_t in = { b, pool, NULL, -1 };
    fault_call(FAULT_SYNC, ".log", 1, snapshot_inside, &in);
    int n = 0;
    while (in.rv == -1 && n < 2000)
        cr_assert_eq(put_i(a, n++), APR_SUCCESS);
    fault_clear();
    cr_assert_eq(in.rv, APR_SUCCESS, "no snapshot inside the rotation's sync (rv %d, %d writes)", in.rv, n);
    su_restore(in.s, out);
    cr_assert_eq(kv_snapshot_close(in.s), APR_SUCCESS);
    cr_assert_eq(su_check(out), 0, "kvlsm-check fails on the restored snapshot");
    kv_options_t ro = tu_opts(1 << 20, 0);
    kv_db_t *r;
    cr_assert_eq(kv_db_open(&r, out, &ro, pool), APR_SUCCESS);
    /* The write that rotated was not acknowledged when the snapshot was
     * taken; every one before it was. */
    for (int i = 0; i < n - 1; i++) {
        char k[32];
        snprintf(k, sizeof k, "key%05d", i);
        kv_value_t got;
        cr_assert_eq(kv_get(r, k, strlen(k), pool, &got), APR_SUCCESS, "%s lost", k);
    }
    kv_db_close(r);
    kv_db_close(a);
    kv_db_close(b);
    apr_pool_destroy(pool);
    tu_rmrf(out);
    tu_rmrf(dir);
    free(out);
    free(dir);
}
