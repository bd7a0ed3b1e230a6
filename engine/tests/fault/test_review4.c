/* test_review4.c -- fourth review: a writer now catches up before it takes
 * the log lock (lock_and_catch_up -> catchup_if_behind, state_mu only,
 * error ignored), and applied_to stores visible_seq before applied.  Each
 * test puts the lock-free catch-up of a writer at an instant where the
 * log holds bytes past the published end that will be cut back (a failed
 * append whose cut-back failed, a dead holder's whole record, a failed
 * rotation), or makes it fail part-way (ENOMEM), and checks that nothing
 * cut back is ever applied, nothing acknowledged is lost, sequence numbers
 * stay unique, and the write under the lock still answers correctly.
 * Two handles on one directory behave as two processes; the dead holder is
 * a forked process. */
#include <errno.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include "testutil.h"
#include "versioned.h"
#include "fault.h"
#include "db_impl.h"

#define NKEYS 512

typedef struct {
    char *dir;
    apr_pool_t *pool;
    kv_db_t *a, *b;
    unsigned long acked_ver[NKEYS];
    int absent[NKEYS];
} fx_t;

/* What db answers for key: its version (0: absent), -1 on any error or a
 * value that is not one we wrote. */
static long version_of(kv_db_t *db, apr_pool_t *pool, unsigned long key)
{
    char k[32], v[4096];
    snprintf(k, sizeof k, "key%05lu", key);
    kv_value_t got;
    apr_status_t rv = kv_get(db, k, strlen(k), pool, &got);
    if (rv == KV_NOTFOUND)
        return 0;
    if (rv)
        return -1;
    unsigned long gk, gv;
    if (sscanf(got.data, "k%lu-v%lu:", &gk, &gv) != 2 || gk != key)
        return -1;
    size_t n = val(v, sizeof v, key, gv);
    if (got.len != n || memcmp(got.data, v, n))
        return -1;
    return (long)gv;
}

static void expect(kv_db_t *db, apr_pool_t *pool, unsigned long key, unsigned long ver, const char *who)
{
    long got = version_of(db, pool, key);
    if (ver == 0)
        cr_assert_eq(got, 0, "%s: key %lu: a write that was cut back is visible (answer %ld)", who, key, got);
    else
        cr_assert_eq(got, (long)ver, "%s: key %lu: acknowledged v%lu, read %ld", who, key, ver, got);
}

static fx_t *fx_new(size_t memtable)
{
    fx_t *f = calloc(1, sizeof *f);
    cr_assert_not_null(f);
    f->dir = tu_tmpdir();
    f->pool = tu_pool();
    fault_clear();
    kv_options_t o = tu_opts(memtable, 0);
    cr_assert_eq(kv_db_open(&f->a, f->dir, &o, f->pool), APR_SUCCESS);
    cr_assert_eq(kv_db_open(&f->b, f->dir, &o, f->pool), APR_SUCCESS);
    return f;
}

static void put_ok(fx_t *f, kv_db_t *db, unsigned long key)
{
    unsigned long ver = f->acked_ver[key] + 1;
    apr_status_t rv = put(db, key, ver);
    cr_assert_eq(rv, APR_SUCCESS, "put key %lu: %d", key, rv);
    f->acked_ver[key] = ver;
}

static void fx_verify_and_free(fx_t *f)
{
    fault_clear();
    for (unsigned long k = 0; k < NKEYS; k++) {
        if (f->absent[k] || f->acked_ver[k]) {
            expect(f->a, f->pool, k, f->acked_ver[k], "handle a");
            expect(f->b, f->pool, k, f->acked_ver[k], "handle b");
        }
    }
    kv_db_close(f->a);
    kv_db_close(f->b);
    kv_options_t o = tu_opts(1 << 20, 0);
    kv_db_t *db;
    cr_assert_eq(kv_db_open(&db, f->dir, &o, f->pool), APR_SUCCESS);
    for (unsigned long k = 0; k < NKEYS; k++)
        if (f->absent[k] || f->acked_ver[k])
            expect(db, f->pool, k, f->acked_ver[k], "after reopen");
    kv_db_close(db);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "%s %s > /dev/null", KVLSM_CHECK, f->dir);
    cr_assert_eq(system(cmd), 0, "kvlsm-check finds the store damaged");
    apr_pool_destroy(f->pool);
    tu_rmrf(f->dir);
    free(f->dir);
    free(f);
}

/* ---- the instant of the cut-back ---------------------------------------- */

/* Called by the fault layer inside b's cut-back (its ftruncate), i.e.
 * after b's writer did its lock-free catch-up with the orphan bytes in
 * the file, and before they are gone.  What b holds then is exactly what
 * that catch-up applied. */
static struct {
    kv_db_t *db;
    apr_pool_t *pool;
    unsigned long key;
    int ran;
    long seen;
    uint64_t last_seq, visible, applied, end;
    long long file_size;   /* the log of the published end, at the probe */
} probe;

static void probe_at_cut_back(void *arg)
{
    (void)arg;
    probe.ran = 1;
    probe.last_seq = probe.db->last_seq;   /* b's writer thread holds no state_mu here */
    probe.visible = __atomic_load_n(&probe.db->visible_seq, __ATOMIC_ACQUIRE);
    probe.applied = __atomic_load_n(&probe.db->applied, __ATOMIC_ACQUIRE);
    probe.end = shm_end(&probe.db->shm);
    char path[4200];
    snprintf(path, sizeof path, "%s/%06llu.log", probe.db->dir, (unsigned long long)logpos_log(probe.end));
    struct stat st;
    probe.file_size = stat(path, &st) == 0 ? (long long)st.st_size : -1;
    probe.seen = version_of(probe.db, probe.pool, probe.key);
}

/* a's append writes its whole record, then fails (ENOSPC), and its
 * cut-back fails (EIO): a whole, checksummed record lies past the
 * published end, the repair flag is up.  b then writes: its writer
 * catches up without the lock with that record in the file, then takes
 * the lock and cuts it back.  Neither that catch-up nor anything later
 * may apply it, and b's write takes the sequence number the orphan had. */
Test(review4, writers_lockfree_catch_up_beside_a_whole_orphan_record_applies_nothing, .timeout = 60)
{
    fx_t *f = fx_new(1 << 20);
    for (unsigned long k = 0; k < 20; k++)
        put_ok(f, k % 2 ? f->a : f->b, k);
    apr_uint64_t s_before;
    cr_assert_eq(put_seq(f->a, 20, 1, &s_before), APR_SUCCESS);
    f->acked_ver[20] = 1;
    fault_fail(FAULT_WRITE, ".log", 1, 1, ENOSPC, 1 << 20, 0);   /* whole record, then ENOSPC */
    fault_fail(FAULT_TRUNCATE, ".log", 1, 1, EIO, 0, 0);         /* the cut-back fails */
    cr_assert_neq(put(f->a, 100, 1), APR_SUCCESS, "the failed write was acknowledged");
    f->absent[100] = 1;
    fault_clear();
    cr_assert(__atomic_load_n(&f->b->shm.m->repair, __ATOMIC_ACQUIRE), "the repair is owed");
    memset(&probe, 0, sizeof probe);
    probe.db = f->b;
    probe.pool = f->pool;
    probe.key = 100;
    fault_call(FAULT_TRUNCATE, ".log", 1, probe_at_cut_back, NULL);
    apr_uint64_t s;
    cr_assert_eq(put_seq(f->b, 101, 1, &s), APR_SUCCESS);
    f->acked_ver[101] = 1;
    fault_clear();
    cr_assert(probe.ran, "b's write did not cut the log back");
    cr_assert_gt(probe.file_size, (long long)logpos_off(probe.end),
                 "no orphan bytes past the end at the probe: the test proves nothing");
    cr_assert_eq(probe.seen, 0, "at b's cut-back, b (after its lock-free catch-up) answers v%ld of the "
                 "orphan record's key", probe.seen);
    cr_assert_eq(probe.last_seq, s_before, "b's lock-free catch-up applied up to seq %llu, past the "
                 "published end's %llu", (unsigned long long)probe.last_seq, (unsigned long long)s_before);
    cr_assert_eq(s, s_before + 1, "b's write got seq %llu, want %llu", (unsigned long long)s,
                 (unsigned long long)(s_before + 1));
    for (unsigned long k = 102; k < 140; k++)
        put_ok(f, k % 2 ? f->a : f->b, k);
    fx_verify_and_free(f);
}

/* The same with a dead holder: a forked process writes its whole record
 * and dies inside the write, holding the log lock.  b's writer catches up
 * without the lock (the record is in the file, unpublished), then takes
 * the lock (EOWNERDEAD) and cuts it back. */
Test(review4, writers_lockfree_catch_up_beside_a_dead_holders_whole_record_applies_nothing, .timeout = 60)
{
    fx_t *f = fx_new(1 << 20);
    for (unsigned long k = 0; k < 10; k++)
        put_ok(f, f->a, k);
    apr_uint64_t s_before;
    cr_assert_eq(put_seq(f->a, 10, 1, &s_before), APR_SUCCESS);
    f->acked_ver[10] = 1;
    expect(f->b, f->pool, 10, 1, "b level");
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        apr_pool_t *p = tu_pool();
        kv_options_t o = tu_opts(1 << 20, 0);
        kv_db_t *db;
        if (kv_db_open(&db, f->dir, &o, p) != APR_SUCCESS)
            _exit(3);
        fault_fail(FAULT_WRITE, ".log", 1, 1, 0, 1 << 20, 1);   /* whole record, then die */
        put(db, 300, 1);
        _exit(5);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == FAULT_EXIT, "child status %d", status);
    f->absent[300] = 1;
    memset(&probe, 0, sizeof probe);
    probe.db = f->b;
    probe.pool = f->pool;
    probe.key = 300;
    fault_call(FAULT_TRUNCATE, ".log", 1, probe_at_cut_back, NULL);
    apr_uint64_t s;
    cr_assert_eq(put_seq(f->b, 301, 1, &s), APR_SUCCESS);
    f->acked_ver[301] = 1;
    fault_clear();
    cr_assert(probe.ran, "b's write did not cut the dead holder's record back");
    cr_assert_gt(probe.file_size, (long long)logpos_off(probe.end),
                 "no orphan bytes past the end at the probe: the test proves nothing");
    cr_assert_eq(probe.seen, 0, "b applied the dead holder's unpublished record (v%ld)", probe.seen);
    cr_assert_eq(probe.last_seq, s_before, "b's lock-free catch-up reached seq %llu past %llu",
                 (unsigned long long)probe.last_seq, (unsigned long long)s_before);
    cr_assert_eq(s, s_before + 1);
    expect(f->a, f->pool, 300, 0, "a");
    for (unsigned long k = 20; k < 60; k++)
        put_ok(f, k % 2 ? f->a : f->b, k);
    fx_verify_and_free(f);
}

/* a's rotation writes and syncs its rotation record, then creating the
 * next log fails, and so does the cut-back: an unpublished rotation
 * record lies past the end.  b's writer catches up without the lock,
 * then cuts it back and appends in the same log; nobody follows the
 * rotation that never happened. */
Test(review4, writers_lockfree_catch_up_beside_an_unpublished_rotation_follows_nothing, .timeout = 60)
{
    fx_t *f = fx_new(1 << 20);
    for (unsigned long k = 0; k < 20; k++)
        put_ok(f, k % 2 ? f->a : f->b, k);
    uint64_t end0 = shm_end(&f->a->shm);
    fault_fail(FAULT_OPEN, ".log", 1, 1, EMFILE, 0, 0);
    fault_fail(FAULT_TRUNCATE, ".log", 1, 1, EIO, 0, 0);
    apr_status_t rv = kv_db_flush(f->a);
    fault_clear();
    cr_assert_neq(rv, APR_SUCCESS, "the failed rotation succeeded");
    cr_assert_eq(shm_end(&f->a->shm), end0, "a failed rotation moved the published end");
    for (unsigned long k = 20; k < 60; k++)
        put_ok(f, k % 2 ? f->b : f->a, k);
    cr_assert_eq(logpos_log(shm_end(&f->a->shm)), logpos_log(end0), "writes left the log");
    fx_verify_and_free(f);
}

/* ---- ENOMEM part-way through the lock-free catch-up --------------------- */

/* a writes a batch of 40; b's writer's lock-free catch-up fails with
 * ENOMEM at the k-th entry (ignored), then the catch-up under the lock
 * finishes it.  b's write is the next sequence number after the batch,
 * b reads the whole batch and its own write, and nothing is applied
 * twice (every key at its one version, the count of entries right). */
static void enomem_in_prelock(uint64_t nth, uint64_t count, int expect_ok)
{
    fx_t *f = fx_new(1 << 20);
    for (unsigned long k = 0; k < 10; k++)
        put_ok(f, k % 2 ? f->a : f->b, k);
    kv_batch_t *batch;
    apr_pool_t *p;
    apr_pool_create(&p, f->pool);
    cr_assert_eq(kv_batch_create(&batch, p), APR_SUCCESS);
    char k[32], v[4096];
    for (unsigned long i = 200; i < 240; i++) {
        snprintf(k, sizeof k, "key%05lu", i);
        size_t n = val(v, sizeof v, i, 1);
        cr_assert_eq(kv_batch_put(batch, k, strlen(k), v, n, 0), APR_SUCCESS);
    }
    apr_uint64_t first;
    cr_assert_eq(kv_write_batch(f->a, batch, &first), APR_SUCCESS);
    for (unsigned long i = 200; i < 240; i++)
        f->acked_ver[i] = 1;
    fault_fail(FAULT_APPLY, NULL, nth, count, ENOMEM, 0, 0);
    apr_uint64_t s = 0;
    apr_status_t rv = put_seq(f->b, 300, 1, &s);
    fault_clear();
    if (expect_ok) {
        cr_assert_eq(rv, APR_SUCCESS, "b's write failed (rv %d) though its catch-up under the lock "
                     "could finish", rv);
        cr_assert_eq(s, first + 40, "b's write got seq %llu, want %llu", (unsigned long long)s,
                     (unsigned long long)(first + 40));
        f->acked_ver[300] = 1;
    }
    else {
        cr_assert_neq(rv, APR_SUCCESS, "b wrote without being level");
        f->absent[300] = 1;
        expect(f->a, f->pool, 300, 0, "a after b's failed write");
    }
    kv_stats_t st;
    cr_assert_eq(kv_db_stats(f->b, &st), APR_SUCCESS);
    uint64_t want_seq = expect_ok ? s : first + 39;
    cr_assert_eq(st.last_seq, want_seq, "b's visible seq %llu, want %llu",
                 (unsigned long long)st.last_seq, (unsigned long long)want_seq);
    for (unsigned long i = 200; i < 240; i++)
        expect(f->b, f->pool, i, 1, "b, the batch");
    /* The memtable holds every entry once. */
    version_t *ver = version_acquire(f->b, NULL);
    uint64_t cnt = mt_count(ver->mem);
    version_unref(ver);
    cr_assert_eq(cnt, 10 + 40 + (expect_ok ? 1 : 0), "b's memtable holds %llu entries",
                 (unsigned long long)cnt);
    for (unsigned long i = 10; i < 30; i++)
        put_ok(f, i % 2 ? f->b : f->a, i);
    apr_pool_destroy(p);
    fx_verify_and_free(f);
}

Test(review4, enomem_in_the_middle_of_a_writers_lockfree_catch_up, .timeout = 60)
{
    enomem_in_prelock(17, 1, 1);
}

Test(review4, enomem_at_the_first_entry_of_a_writers_lockfree_catch_up, .timeout = 60)
{
    enomem_in_prelock(1, 1, 1);
}

Test(review4, enomem_at_the_last_entry_of_a_writers_lockfree_catch_up, .timeout = 60)
{
    enomem_in_prelock(41, 1, 1);   /* 1: a's last put, 2..41: the batch */
}

/* Both catch-ups fail (the first at entry 5, the one under the lock at
 * its first entry after that): the write must fail, unappended. */
Test(review4, enomem_in_both_catch_ups_fails_the_write_unappended, .timeout = 60)
{
    enomem_in_prelock(5, 2, 0);
}
