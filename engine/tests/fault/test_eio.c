/* test_eio.c -- read errors (fault.c's FAULT-EIO flag: every pread of an
 * SST fails with EIO) never turn into wrong answers: a handle that falls
 * behind while another flushes the logs it has not read, and then cannot
 * open the new SSTs, answers every key with the right value or an error,
 * never "not found" for a key that exists; once the disk reads again it
 * answers right; writes go on meanwhile and none is lost.  Two
 * handles on one directory behave as two processes do. */
#include "testutil.h"
#include "fault.h"

#define EKEYS 600

static void flag(const char *dir, int on)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, FAULT_EIO_FLAG);
    if (on) {
        FILE *f = fopen(p, "w");
        cr_assert_not_null(f);
        fclose(f);
    }
    else
        cr_assert_eq(unlink(p), 0);
}

Test(eio, a_handle_behind_never_answers_not_found, .timeout = 60)
{
    char *dir = tu_tmpdir();
    apr_pool_t *pool = tu_pool();
    kv_options_t o = tu_opts(8192, 0);
    kv_db_t *a, *b;
    cr_assert_eq(kv_db_open(&a, dir, &o, pool), APR_SUCCESS);
    cr_assert_eq(kv_db_open(&b, dir, &o, pool), APR_SUCCESS);
    char k[32], v[64];
    kv_value_t got;
    tu_key(k, sizeof k, "e", 0);
    cr_assert_eq(kv_put(a, TU_STR(k), TU_STR("first"), NULL, NULL), APR_SUCCESS);
    cr_assert_eq(kv_get(b, TU_STR(k), pool, &got), APR_SUCCESS);   /* b is level */
    /* a writes many logs' worth and flushes them all; b reads nothing. */
    for (unsigned long i = 1; i < EKEYS; i++) {
        tu_key(k, sizeof k, "e", i);
        size_t n = tu_val(v, sizeof v, k, i);
        cr_assert_eq(kv_put(a, TU_STR(k), v, n, NULL, NULL), APR_SUCCESS);
    }
    cr_assert_eq(kv_db_flush(a), APR_SUCCESS);
    flag(dir, 1);
    int errors = 0;
    for (unsigned long i = 1; i < EKEYS; i++) {
        tu_key(k, sizeof k, "e", i);
        size_t n = tu_val(v, sizeof v, k, i);
        apr_status_t rv = kv_get(b, TU_STR(k), pool, &got);
        cr_assert_neq(rv, KV_NOTFOUND, "%s: not found while reads fail", k);
        if (rv == APR_SUCCESS)
            cr_assert(got.len == n && memcmp(got.data, v, n) == 0, "%s: wrong value", k);
        else
            errors++;
    }
    cr_assert_gt(errors, 0, "no read failed: the flag did not reach the SSTs");
    /* Writes through the lagging handle go on: taking the new files into
     * its view needs none of their contents. */
    cr_assert_eq(kv_put(b, TU_STR("during"), TU_STR("eio"), NULL, NULL), APR_SUCCESS,
                 "a write failed while reads fail");
    flag(dir, 0);
    for (unsigned long i = 1; i < EKEYS; i++) {
        tu_key(k, sizeof k, "e", i);
        size_t n = tu_val(v, sizeof v, k, i);
        cr_assert_eq(kv_get(b, TU_STR(k), pool, &got), APR_SUCCESS, "%s after the fault", k);
        cr_assert(got.len == n && memcmp(got.data, v, n) == 0);
    }
    cr_assert_eq(kv_get(a, TU_STR("during"), pool, &got), APR_SUCCESS);
    cr_assert_eq(kv_db_flush(a), APR_SUCCESS);
    cr_assert_eq(kv_get(b, TU_STR("during"), pool, &got), APR_SUCCESS);
    cr_assert_str_eq(got.data, "eio");
    kv_db_close(b);
    kv_db_close(a);
    apr_pool_destroy(pool);
    tu_rmrf(dir);
    free(dir);
}
