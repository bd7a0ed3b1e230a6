/* test_inject.c -- every system call of the write path fails in turn
 * (fault.c's errors on demand) and no acknowledged write is lost, no
 * failed one is seen by one handle and not another, and nothing is ever
 * acknowledged as durable after an fdatasync failed.  Two handles on one
 * directory behave as two processes (each has its own memtables, replay
 * position and descriptors; they share only SHM and the files); the lock
 * holder killed mid-append is a real forked process. */
#include <errno.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include "testutil.h"
#include "versioned.h"
#include "fault.h"

typedef struct {
    char *dir;
    apr_pool_t *pool;
    kv_db_t *a, *b;
    /* acknowledged writes: key i has value version acked_ver[i] (0: none) */
    unsigned long acked_ver[4096];
    int absent[4096];   /* a failed write to a key nobody wrote before */
} fx_t;

/* The key reads as version ver (0: absent) through db. */
static void expect(kv_db_t *db, apr_pool_t *pool, unsigned long key, unsigned long ver, const char *who)
{
    char k[32], v[4096];
    snprintf(k, sizeof k, "key%05lu", key);
    kv_value_t got;
    apr_status_t rv = kv_get(db, k, strlen(k), pool, &got);
    if (ver == 0) {
        cr_assert_eq(rv, KV_NOTFOUND, "%s: %s: a failed write is visible (rv %d)", who, k, rv);
        return;
    }
    cr_assert_eq(rv, APR_SUCCESS, "%s: acknowledged %s v%lu lost (rv %d)", who, k, ver, rv);
    size_t n = val(v, sizeof v, key, ver);
    cr_assert(got.len == n && memcmp(got.data, v, n) == 0,
              "%s: %s: read another version than the acknowledged v%lu", who, k, ver);
}

static void fx_open(fx_t *f, kv_sync_mode_e mode, size_t memtable)
{
    kv_options_t o = tu_opts(memtable, 0);
    o.sync_mode = mode;
    cr_assert_eq(kv_db_open(&f->a, f->dir, &o, f->pool), APR_SUCCESS);
    cr_assert_eq(kv_db_open(&f->b, f->dir, &o, f->pool), APR_SUCCESS);
}

static fx_t *fx_new(kv_sync_mode_e mode, size_t memtable)
{
    fx_t *f = calloc(1, sizeof *f);
    cr_assert_not_null(f);
    f->dir = tu_tmpdir();
    f->pool = tu_pool();
    fault_clear();
    fx_open(f, mode, memtable);
    return f;
}

/* Acknowledged through db, recorded. */
static void put_ok(fx_t *f, kv_db_t *db, unsigned long key)
{
    unsigned long ver = f->acked_ver[key] + 1;
    apr_status_t rv = put(db, key, ver);
    cr_assert_eq(rv, APR_SUCCESS, "put key %lu: %d", key, rv);
    f->acked_ver[key] = ver;
}

/* Every handle, and a fresh open after both close, reads every key as
 * last acknowledged; the directory passes kvlsm-check. */
static void fx_verify_and_free(fx_t *f, unsigned long keys)
{
    for (unsigned long k = 0; k < keys; k++) {
        if (f->absent[k] || f->acked_ver[k]) {
            expect(f->a, f->pool, k, f->acked_ver[k], "handle a");
            expect(f->b, f->pool, k, f->acked_ver[k], "handle b");
        }
    }
    fault_clear();
    kv_db_close(f->a);
    kv_db_close(f->b);
    kv_options_t o = tu_opts(1 << 20, 0);
    kv_db_t *db;
    cr_assert_eq(kv_db_open(&db, f->dir, &o, f->pool), APR_SUCCESS);
    for (unsigned long k = 0; k < keys; k++)
        if (f->acked_ver[k])
            expect(db, f->pool, k, f->acked_ver[k], "after reopen");
    /* Writes work again once everyone had let go. */
    cr_assert_eq(put(db, keys, 1), APR_SUCCESS);
    kv_db_close(db);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "%s %s > /dev/null", KVLSM_CHECK, f->dir);
    cr_assert_eq(system(cmd), 0, "kvlsm-check finds the store damaged");
    apr_pool_destroy(f->pool);
    tu_rmrf(f->dir);
    free(f->dir);
    free(f);
}

static void failed_log_write(int err, size_t partial, int truncate_fails)
{
    fx_t *f = fx_new(KV_SYNC_OFF, 1 << 20);
    for (unsigned long k = 0; k < 20; k++)
        put_ok(f, k % 2 ? f->a : f->b, k);
    expect(f->b, f->pool, 19, f->acked_ver[19], "b before");
    fault_fail(FAULT_WRITE, ".log", 1, 1, err, partial, 0);
    if (truncate_fails)
        fault_fail(FAULT_TRUNCATE, ".log", 1, 1, EIO, 0, 0);
    cr_assert_neq(put(f->a, 100, 1), APR_SUCCESS, "the failed write was acknowledged");
    f->absent[100] = 1;
    /* Nobody sees it, the other handle first (it reads the log's bytes
     * past the published end, if anyone does). */
    expect(f->b, f->pool, 100, 0, "b after the failure");
    expect(f->a, f->pool, 100, 0, "a after the failure");
    /* Both write on, at the published end. */
    for (unsigned long k = 20; k < 40; k++)
        put_ok(f, k % 2 ? f->b : f->a, k);
    fx_verify_and_free(f, 101);
}

Test(inject, failed_log_write_eio_is_never_seen, .timeout = 60)
{
    failed_log_write(EIO, 0, 0);
}

Test(inject, failed_log_write_enospc_is_never_seen, .timeout = 60)
{
    failed_log_write(ENOSPC, 0, 0);
}

Test(inject, short_log_write_is_cut_back, .timeout = 60)
{
    failed_log_write(ENOSPC, 900, 0);
}

/* The cut-back fails too: the bytes stay past the end until the next
 * writer cuts them, and no reader takes them meanwhile. */
Test(inject, short_log_write_whose_cut_back_fails_is_never_seen, .timeout = 60)
{
    failed_log_write(ENOSPC, 1200, 1);
}

/* A group of several records that fails half-way. */
Test(inject, failed_group_append_is_never_seen, .timeout = 60)
{
    fx_t *f = fx_new(KV_SYNC_OFF, 1 << 20);
    kv_batch_t *batch;
    apr_pool_t *p;
    apr_pool_create(&p, f->pool);
    for (unsigned long k = 0; k < 10; k++)
        put_ok(f, f->a, k);
    cr_assert_eq(kv_batch_create(&batch, p), APR_SUCCESS);
    char k[32], v[4096];
    for (unsigned long i = 200; i < 210; i++) {
        snprintf(k, sizeof k, "key%05lu", i);
        size_t n = val(v, sizeof v, i, 1);
        cr_assert_eq(kv_batch_put(batch, k, strlen(k), v, n, 0), APR_SUCCESS);
        f->absent[i] = 1;
    }
    fault_fail(FAULT_WRITE, ".log", 1, 1, ENOSPC, 3000, 0);
    fault_fail(FAULT_TRUNCATE, ".log", 1, 1, EIO, 0, 0);
    cr_assert_neq(kv_write_batch(f->a, batch, NULL), APR_SUCCESS);
    for (unsigned long i = 200; i < 210; i++)
        expect(f->b, f->pool, i, 0, "b after the failed batch");
    for (unsigned long i = 10; i < 30; i++)
        put_ok(f, i % 3 ? f->b : f->a, i);
    apr_pool_destroy(p);
    fx_verify_and_free(f, 210);
}

/* Write until a rotation happens through db (the log number moves). */
static apr_status_t write_until_rotation(fx_t *f, kv_db_t *db, unsigned long *next, unsigned long limit)
{
    apr_status_t rv = APR_SUCCESS;
    uint64_t seen0 = fault_seen();
    for (; *next < limit && rv == APR_SUCCESS && fault_seen() == seen0; (*next)++) {
        unsigned long ver = f->acked_ver[*next] + 1;
        rv = put(db, *next, ver);
        if (rv == APR_SUCCESS)
            f->acked_ver[*next] = ver;
        else
            f->absent[*next] = f->acked_ver[*next] == 0;
    }
    return rv;
}

/* A failed fdatasync at a rotation: the rotation is cut back, the store
 * refuses writes (every handle) until reopened; reads go on. */
Test(inject, failed_sync_at_rotation_refuses_writes_until_reopen, .timeout = 60)
{
    fx_t *f = fx_new(KV_SYNC_OFF, 16384);
    unsigned long next = 0;
    fault_fail(FAULT_SYNC, ".log", 1, 1, EIO, 0, 0);
    apr_status_t rv = write_until_rotation(f, f->a, &next, 400);
    cr_assert_neq(rv, APR_SUCCESS, "the write that hit the failed sync was acknowledged");
    fault_clear();
    /* A failed sync may have lost pages: nobody writes any more. */
    cr_assert_eq(put(f->b, 1000, 1), KV_SYNCFAIL);
    cr_assert_eq(put(f->a, 1001, 1), KV_SYNCFAIL);
    f->absent[1000] = f->absent[1001] = 1;
    cr_assert_eq(kv_db_flush(f->b), KV_SYNCFAIL);
    fx_verify_and_free(f, 1002);
}

/* In always mode: the failed sync fails its writers, and the next sync of
 * the same descriptor (which Linux would report clean) acknowledges
 * nothing. */
Test(inject, failed_sync_in_always_mode_is_never_acknowledged, .timeout = 60)
{
    fx_t *f = fx_new(KV_SYNC_ALWAYS, 1 << 20);
    for (unsigned long k = 0; k < 5; k++)
        put_ok(f, f->a, k);
    fault_fail(FAULT_SYNC, ".log", 1, 1, EIO, 0, 0);
    cr_assert_neq(put(f->a, 10, 1), APR_SUCCESS);
    fault_clear();
    cr_assert_neq(put(f->a, 11, 1), APR_SUCCESS, "acknowledged as durable after a failed fdatasync");
    cr_assert_eq(put(f->b, 12, 1), KV_SYNCFAIL);
    f->absent[12] = 1;
    fx_verify_and_free(f, 13);
}

/* The next log cannot be created (EMFILE, or its directory sync fails):
 * the rotation is cut back whole; the other handle goes on appending to
 * the same log, and a later rotation seals it with all of it. */
static void failed_next_log(int op, const char *ext, int err)
{
    fx_t *f = fx_new(KV_SYNC_OFF, 16384);
    unsigned long next = 0;
    fault_fail(op, ext, 1, 1, err, 0, 0);
    apr_status_t rv = write_until_rotation(f, f->a, &next, 400);
    cr_assert_neq(rv, APR_SUCCESS);
    fault_clear();
    for (unsigned long k = 0; k < 30; k++)
        put_ok(f, f->b, 500 + k);
    for (unsigned long k = 0; k < 60; k++)
        put_ok(f, k % 2 ? f->a : f->b, 600 + k);
    cr_assert_eq(kv_db_flush(f->a), APR_SUCCESS);
    cr_assert_eq(kv_db_flush(f->b), APR_SUCCESS);
    fx_verify_and_free(f, 700);
}

Test(inject, failed_next_log_open_leaves_one_log_for_everyone, .timeout = 60)
{
    failed_next_log(FAULT_OPEN, ".log", EMFILE);
}

Test(inject, failed_directory_sync_at_rotation_leaves_one_log, .timeout = 60)
{
    failed_next_log(FAULT_SYNC_DIR, NULL, EIO);
}

/* Applying a written record fails (ENOMEM): the record is in the log and
 * published, so every handle answers alike -- the writer's, which catches
 * up from the log, and the other's. */
Test(inject, failed_apply_answers_alike_everywhere, .timeout = 60)
{
    fx_t *f = fx_new(KV_SYNC_OFF, 1 << 20);
    for (unsigned long k = 0; k < 10; k++)
        put_ok(f, f->a, k);
    expect(f->b, f->pool, 9, f->acked_ver[9], "b");
    fault_fail(FAULT_APPLY, NULL, 1, 1, ENOMEM, 0, 0);
    apr_status_t rv = put(f->a, 50, 1);
    fault_clear();
    char k[32];
    snprintf(k, sizeof k, "key%05d", 50);
    kv_value_t va, vb;
    apr_status_t ra = kv_get(f->a, k, strlen(k), f->pool, &va);
    apr_status_t rb = kv_get(f->b, k, strlen(k), f->pool, &vb);
    cr_assert_eq(ra, rb, "the handles disagree on a write whose apply failed (%d, %d)", ra, rb);
    if (rv == APR_SUCCESS || ra == APR_SUCCESS)
        f->acked_ver[50] = 1;
    else
        f->absent[50] = 1;
    for (unsigned long i = 10; i < 30; i++)
        put_ok(f, i % 2 ? f->a : f->b, i);
    fx_verify_and_free(f, 51);
}

/* The same, strictly: once its record is published the write has
 * happened (every handle reads it, a reopen keeps it), so its writer
 * must be told so, not given the apply's ENOMEM as if nothing were
 * stored: a client told "failed" would retry or give up on a write the
 * store goes on answering with. */
Test(inject, published_write_whose_apply_fails_is_acknowledged, .timeout = 60)
{
    fx_t *f = fx_new(KV_SYNC_OFF, 1 << 20);
    for (unsigned long k = 0; k < 10; k++)
        put_ok(f, f->a, k);
    fault_fail(FAULT_APPLY, NULL, 1, 1, ENOMEM, 0, 0);
    apr_status_t rv = put(f->a, 50, 1);
    fault_clear();
    cr_assert_eq(rv, APR_SUCCESS, "a published write was reported as failed (rv %d)", rv);
    f->acked_ver[50] = 1;
    expect(f->a, f->pool, 50, 1, "a");
    expect(f->b, f->pool, 50, 1, "b");
    for (unsigned long i = 10; i < 30; i++)
        put_ok(f, i % 2 ? f->a : f->b, i);
    fx_verify_and_free(f, 51);
}

/* A process dies inside its append, holding the log lock, part of its
 * record written.  The next holder cuts the log back to the published
 * end before it marks the lock consistent; nothing acknowledged is lost,
 * the half record is nobody's. */
Test(inject, lock_holder_killed_mid_append_is_cut_back, .timeout = 60)
{
    fx_t *f = fx_new(KV_SYNC_OFF, 1 << 20);
    unsigned long *child_acked = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(child_acked, MAP_FAILED);
    *child_acked = 0;
    for (unsigned long k = 0; k < 10; k++)
        put_ok(f, f->a, k);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        apr_pool_t *p = tu_pool();
        kv_options_t o = tu_opts(1 << 20, 0);
        kv_db_t *db;
        if (kv_db_open(&db, f->dir, &o, p) != APR_SUCCESS)
            _exit(3);
        for (unsigned long k = 10; k < 20; k++) {
            if (put(db, k, 1) != APR_SUCCESS)
                _exit(4);
            *child_acked = k + 1;
        }
        fault_fail(FAULT_WRITE, ".log", 1, 1, 0, 500, 1);
        put(db, 300, 1);
        _exit(5);   /* not reached: the fault layer exits inside the write */
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == FAULT_EXIT, "child status %d", status);
    cr_assert_eq(*child_acked, 20);
    for (unsigned long k = 10; k < 20; k++)
        f->acked_ver[k] = 1;
    f->absent[300] = 1;
    expect(f->b, f->pool, 300, 0, "b after the death");
    for (unsigned long k = 20; k < 40; k++)
        put_ok(f, k % 2 ? f->a : f->b, k);
    munmap(child_acked, 4096);
    fx_verify_and_free(f, 301);
}
