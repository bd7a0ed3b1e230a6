/* test_db.c -- the public API through a real data directory: reads see
 * writes, deletes hand back the old value exactly once, conditions and
 * batches are atomic, data survives close/reopen, flushes and compaction,
 * and iterators return one ordered snapshot. */
#include <apr_thread_proc.h>
#include <dirent.h>
#include <time.h>
#include <sys/stat.h>
#include "testutil.h"
#include "sst.h"

static char *dir;
static apr_pool_t *pool;

static void setup(void)
{
    pool = tu_pool();
    dir = tu_tmpdir();
}

static void teardown(void)
{
    apr_pool_destroy(pool);
    tu_rmrf(dir);
    free(dir);
}

TestSuite(db, .init = setup, .fini = teardown);

static kv_db_t *open_db(apr_size_t memtable, int background)
{
    kv_db_t *db;
    kv_options_t o = tu_opts(memtable, background);
    cr_assert_eq(kv_db_open(&db, dir, &o, pool), APR_SUCCESS);
    return db;
}

static void expect(kv_db_t *db, const char *key, const char *want)
{
    kv_value_t v;
    apr_status_t rv = kv_get(db, key, strlen(key), pool, &v);
    if (!want) {
        cr_assert_eq(rv, KV_NOTFOUND, "%s: expected missing", key);
        return;
    }
    cr_assert_eq(rv, APR_SUCCESS, "%s: expected %s", key, want);
    cr_assert_eq(v.len, strlen(want));
    cr_assert_eq(memcmp(v.data, want, v.len), 0, "%s: got %.*s", key, (int)v.len, v.data);
}

Test(db, put_get_delete_roundtrip)
{
    kv_db_t *db = open_db(1 << 20, 1);
    apr_uint64_t s1, s2;
    expect(db, "a", NULL);
    cr_assert_eq(kv_put(db, TU_STR("a"), TU_STR("one"), NULL, &s1), APR_SUCCESS);
    expect(db, "a", "one");
    cr_assert_eq(kv_put(db, TU_STR("a"), TU_STR("two"), NULL, &s2), APR_SUCCESS);
    cr_assert_gt(s2, s1, "versions increase");
    expect(db, "a", "two");
    kv_value_t old;
    cr_assert_eq(kv_delete(db, TU_STR("a"), NULL, pool, &old), APR_SUCCESS);
    cr_assert_eq(old.len, 3);
    cr_assert_eq(memcmp(old.data, "two", 3), 0);
    cr_assert_eq(old.seq, s2);
    expect(db, "a", NULL);
    cr_assert_eq(kv_delete(db, TU_STR("a"), NULL, pool, &old), KV_NOTFOUND);
}

Test(db, binary_keys_and_values_are_exact)
{
    kv_db_t *db = open_db(8192, 0);
    char key[256], val[256];
    for (int i = 0; i < 256; i++) {
        key[i] = (char)i;
        val[i] = (char)(255 - i);
    }
    for (int n = 1; n <= 256; n += 15)
        cr_assert_eq(kv_put(db, key, (apr_size_t)n, val, (apr_size_t)n, NULL, NULL), APR_SUCCESS);
    cr_assert_eq(kv_put(db, TU_STR("empty-value"), "", 0, NULL, NULL), APR_SUCCESS);
    for (int pass = 0; pass < 2; pass++) {
        for (int n = 1; n <= 256; n += 15) {
            kv_value_t v;
            cr_assert_eq(kv_get(db, key, (apr_size_t)n, pool, &v), APR_SUCCESS);
            cr_assert_eq(v.len, (apr_size_t)n);
            cr_assert_eq(memcmp(v.data, val, (size_t)n), 0);
        }
        kv_value_t v;
        cr_assert_eq(kv_get(db, TU_STR("empty-value"), pool, &v), APR_SUCCESS);
        cr_assert_eq(v.len, 0);
        cr_assert_eq(kv_db_flush(db), APR_SUCCESS);   /* second pass reads the SST */
    }
}

Test(db, limits_and_bad_arguments_are_refused)
{
    kv_options_t o = tu_opts(1 << 20, 0);
    o.max_key_bytes = 10;
    o.max_value_bytes = 20;
    kv_db_t *db;
    cr_assert_eq(kv_db_open(&db, dir, &o, pool), APR_SUCCESS);
    cr_assert_eq(kv_put(db, "", 0, "v", 1, NULL, NULL), KV_INVALID);
    cr_assert_eq(kv_put(db, TU_STR("01234567890"), "v", 1, NULL, NULL), KV_TOOLARGE);
    cr_assert_eq(kv_put(db, TU_STR("k"), TU_STR("012345678901234567890"), NULL, NULL), KV_TOOLARGE);
    cr_assert_eq(kv_put(db, TU_STR("0123456789"), TU_STR("01234567890123456789"), NULL, NULL), APR_SUCCESS);
    kv_stats_t st;
    cr_assert_eq(kv_db_stats(db, &st), APR_SUCCESS);
    cr_assert_eq(st.sets, 1);
    char buf[128];
    cr_assert_str_eq(kv_strerror(KV_TOOLARGE, buf, sizeof buf), "key or value too large");
}

Test(db, reopen_keeps_every_write)
{
    kv_db_t *db = open_db(16384, 0);
    char k[32], v[64];
    for (unsigned long i = 0; i < 3000; i++) {
        tu_key(k, sizeof k, "k", i);
        size_t n = tu_val(v, sizeof v, k, 1);
        cr_assert_eq(kv_put(db, k, strlen(k), v, n, NULL, NULL), APR_SUCCESS);
    }
    for (unsigned long i = 0; i < 3000; i += 3) {
        tu_key(k, sizeof k, "k", i);
        cr_assert_eq(kv_delete(db, k, strlen(k), NULL, pool, NULL), APR_SUCCESS);
    }
    cr_assert_eq(kv_db_close(db), APR_SUCCESS);
    db = open_db(16384, 0);
    for (unsigned long i = 0; i < 3000; i++) {
        tu_key(k, sizeof k, "k", i);
        if (i % 3 == 0) {
            expect(db, k, NULL);
        }
        else {
            tu_val(v, sizeof v, k, 1);
            expect(db, k, v);
        }
    }
}

Test(db, flush_and_compaction_keep_newest_versions)
{
    kv_db_t *db = open_db(4096, 0);
    char k[32], v[64];
    for (unsigned long ver = 1; ver <= 6; ver++) {
        for (unsigned long i = 0; i < 400; i++) {
            tu_key(k, sizeof k, "k", i);
            size_t n = tu_val(v, sizeof v, k, ver);
            cr_assert_eq(kv_put(db, k, strlen(k), v, n, NULL, NULL), APR_SUCCESS);
        }
        cr_assert_eq(kv_db_flush(db), APR_SUCCESS);
    }
    for (unsigned long i = 0; i < 400; i += 2) {
        tu_key(k, sizeof k, "k", i);
        cr_assert_eq(kv_delete(db, k, strlen(k), NULL, pool, NULL), APR_SUCCESS);
    }
    cr_assert_eq(kv_db_flush(db), APR_SUCCESS);
    cr_assert_eq(kv_db_compact(db), APR_SUCCESS);
    kv_stats_t st;
    cr_assert_eq(kv_db_stats(db, &st), APR_SUCCESS);
    cr_assert_gt(st.compactions, 0);
    cr_assert_lt(st.level_files[0], 4, "L0 was compacted");
    /* Space: overwritten versions and dropped tombstones are gone. */
    cr_assert_lt(st.sst_bytes, 200 * 64 * 3, "sst bytes %lu", (unsigned long)st.sst_bytes);
    for (int pass = 0; pass < 2; pass++) {
        for (unsigned long i = 0; i < 400; i++) {
            tu_key(k, sizeof k, "k", i);
            if (i % 2 == 0)
                expect(db, k, NULL);
            else {
                tu_val(v, sizeof v, k, 6);
                expect(db, k, v);
            }
        }
        kv_db_close(db);
        db = open_db(4096, 0);
    }
}

Test(db, writes_flow_through_background_flushes)
{
    kv_db_t *db = open_db(8192, 1);
    char k[32], v[128];
    for (unsigned long i = 0; i < 20000; i++) {
        tu_key(k, sizeof k, "bg", i % 5000);
        size_t n = tu_val(v, sizeof v, k, i / 5000);
        cr_assert_eq(kv_put(db, k, strlen(k), v, n, NULL, NULL), APR_SUCCESS);
    }
    for (unsigned long i = 0; i < 5000; i++) {
        tu_key(k, sizeof k, "bg", i);
        tu_val(v, sizeof v, k, 3);
        expect(db, k, v);
    }
    kv_stats_t st;
    cr_assert_eq(kv_db_stats(db, &st), APR_SUCCESS);
    cr_assert_gt(st.flushes, 0, "the background thread flushed");
    cr_assert_eq(st.bg_errors, 0);
}

Test(db, iterator_is_ordered_snapshot)
{
    kv_db_t *db = open_db(4096, 0);
    char k[32];
    for (unsigned long i = 0; i < 1000; i++) {
        tu_key(k, sizeof k, "it", (i * 7919) % 1000);
        cr_assert_eq(kv_put(db, k, strlen(k), k, strlen(k), NULL, NULL), APR_SUCCESS);
        if (i == 500)
            cr_assert_eq(kv_db_flush(db), APR_SUCCESS);
    }
    for (unsigned long i = 0; i < 1000; i += 10) {
        tu_key(k, sizeof k, "it", i);
        cr_assert_eq(kv_delete(db, k, strlen(k), NULL, pool, NULL), APR_SUCCESS);
    }
    kv_iter_t *it;
    cr_assert_eq(kv_iter_open(&it, db, pool), APR_SUCCESS);
    /* Writes after the snapshot are not seen by it. */
    cr_assert_eq(kv_put(db, TU_STR("it00000005x"), TU_STR("late"), NULL, NULL), APR_SUCCESS);
    cr_assert_eq(kv_delete(db, TU_STR("it00000001"), NULL, pool, NULL), APR_SUCCESS);
    cr_assert_eq(kv_iter_seek(it, TU_STR("it00000000")), APR_SUCCESS);
    unsigned long want = 1, n = 0;
    for (; kv_iter_valid(it); kv_iter_next(it)) {
        const char *key;
        apr_size_t klen;
        kv_value_t v;
        kv_iter_key(it, &key, &klen);
        kv_iter_value(it, &v);
        if (want % 10 == 0)
            want++;
        tu_key(k, sizeof k, "it", want);
        cr_assert_eq(klen, strlen(k));
        cr_assert_eq(memcmp(key, k, klen), 0, "got %.*s want %s", (int)klen, key, k);
        cr_assert_eq(v.len, klen);
        want++;
        n++;
    }
    cr_assert_eq(kv_iter_status(it), APR_SUCCESS);
    cr_assert_eq(n, 900);
    kv_iter_close(it);
    /* Seek between keys lands on the next one. */
    cr_assert_eq(kv_iter_open(&it, db, pool), APR_SUCCESS);
    cr_assert_eq(kv_iter_seek(it, TU_STR("it00000005!")), APR_SUCCESS);
    cr_assert(kv_iter_valid(it));
    const char *key;
    apr_size_t klen;
    kv_iter_key(it, &key, &klen);
    cr_assert_eq(memcmp(key, "it00000005x", klen), 0);
}

/* With a budget, a run of deleted keys no longer costs one move without
 * bound: the move stops after max_keys keys and names the last one, and
 * seeking just after it resumes (tombstones in the memtable and in an SST
 * alike).  Live keys count too; each seek starts a fresh count. */
Test(db, iterator_budget_stops_in_a_deleted_run_and_resumes)
{
    kv_db_t *db = open_db(1 << 20, 0);
    char k[32];
    for (unsigned long i = 0; i < 300; i++) {
        tu_key(k, sizeof k, "b", i);
        cr_assert_eq(kv_put(db, k, strlen(k), TU_STR("v"), NULL, NULL), APR_SUCCESS);
    }
    cr_assert_eq(kv_db_flush(db), APR_SUCCESS);
    /* b0..b149 deleted in the SST, b150..b289 in the memtable: b290..b299 live. */
    for (unsigned long i = 0; i < 290; i++) {
        tu_key(k, sizeof k, "b", i);
        cr_assert_eq(kv_delete(db, k, strlen(k), NULL, pool, NULL), APR_SUCCESS);
        if (i == 149)
            cr_assert_eq(kv_db_flush(db), APR_SUCCESS);
    }
    kv_iter_t *it;
    cr_assert_eq(kv_iter_open(&it, db, pool), APR_SUCCESS);
    kv_iter_set_budget(it, 40);
    cr_assert_eq(kv_iter_seek(it, NULL, 0), APR_SUCCESS);
    int stops = 0;
    const char *key;
    apr_size_t klen;
    while (!kv_iter_valid(it) && kv_iter_exhausted(it) && stops < 100) {
        kv_iter_key(it, &key, &klen);
        tu_key(k, sizeof k, "b", (unsigned long)(stops + 1) * 40 - 1);
        cr_assert_eq(klen, strlen(k));
        cr_assert_eq(memcmp(key, k, klen), 0, "stop %d at %.*s, want %s", stops, (int)klen, key, k);
        /* Just after it: the key with a NUL byte appended. */
        char after[40];
        memcpy(after, key, klen);
        after[klen] = '\0';
        cr_assert_eq(kv_iter_seek(it, after, klen + 1), APR_SUCCESS);
        stops++;
    }
    cr_assert_eq(stops, 7, "290 deleted keys in steps of 40");
    unsigned long want = 290, n = 0;
    for (; kv_iter_valid(it); kv_iter_next(it), want++, n++) {
        kv_iter_key(it, &key, &klen);
        tu_key(k, sizeof k, "b", want);
        cr_assert_eq(memcmp(key, k, klen), 0);
    }
    cr_assert_eq(n, 10, "the live keys follow");
    cr_assert(!kv_iter_exhausted(it), "the end is not a stop");
    cr_assert_eq(kv_iter_status(it), APR_SUCCESS);
    /* Live keys count: a budget of 4 from b292 yields four of them, then stops. */
    tu_key(k, sizeof k, "b", 292);
    kv_iter_set_budget(it, 4);
    cr_assert_eq(kv_iter_seek(it, k, strlen(k)), APR_SUCCESS);
    for (n = 0; kv_iter_valid(it) && n < 10; kv_iter_next(it))
        n++;
    cr_assert_eq(n, 4);
    cr_assert(kv_iter_exhausted(it));
    kv_iter_key(it, &key, &klen);
    tu_key(k, sizeof k, "b", 295);
    cr_assert_eq(memcmp(key, k, klen), 0, "the last key passed");
    /* No budget: one move walks the whole deleted run. */
    kv_iter_set_budget(it, 0);
    cr_assert_eq(kv_iter_seek(it, NULL, 0), APR_SUCCESS);
    cr_assert(kv_iter_valid(it));
    kv_iter_key(it, &key, &klen);
    tu_key(k, sizeof k, "b", 290);
    cr_assert_eq(memcmp(key, k, klen), 0);
    kv_iter_close(it);
}

Test(db, conditional_writes_check_version)
{
    kv_db_t *db = open_db(1 << 20, 0);
    apr_uint64_t s1, s2;
    kv_write_opts_t absent = { KV_IF_ABSENT, 0, 0 };
    cr_assert_eq(kv_put(db, TU_STR("c"), TU_STR("1"), &absent, &s1), APR_SUCCESS);
    cr_assert_eq(kv_put(db, TU_STR("c"), TU_STR("2"), &absent, NULL), KV_CONFLICT);
    kv_write_opts_t match = { KV_IF_SEQ, s1 + 100, 0 };
    cr_assert_eq(kv_put(db, TU_STR("c"), TU_STR("2"), &match, NULL), KV_CONFLICT);
    expect(db, "c", "1");
    match.if_seq = s1;
    cr_assert_eq(kv_put(db, TU_STR("c"), TU_STR("2"), &match, &s2), APR_SUCCESS);
    cr_assert_eq(kv_delete(db, TU_STR("c"), &match, pool, NULL), KV_CONFLICT);
    match.if_seq = s2;
    cr_assert_eq(kv_delete(db, TU_STR("c"), &match, pool, NULL), APR_SUCCESS);
    cr_assert_eq(kv_put(db, TU_STR("c"), TU_STR("3"), &match, NULL), KV_CONFLICT, "missing key never matches");
    expect(db, "c", NULL);
}

Test(db, batch_applies_all_operations_atomically)
{
    kv_db_t *db = open_db(1 << 20, 0);
    cr_assert_eq(kv_put(db, TU_STR("gone"), TU_STR("x"), NULL, NULL), APR_SUCCESS);
    kv_batch_t *b;
    cr_assert_eq(kv_batch_create(&b, pool), APR_SUCCESS);
    cr_assert_eq(kv_batch_put(b, TU_STR("b1"), TU_STR("one"), 0), APR_SUCCESS);
    cr_assert_eq(kv_batch_put(b, TU_STR("b2"), TU_STR("two"), 0), APR_SUCCESS);
    cr_assert_eq(kv_batch_delete(b, TU_STR("gone")), APR_SUCCESS);
    cr_assert_eq(kv_batch_put(b, TU_STR("b1"), TU_STR("uno"), 0), APR_SUCCESS);
    cr_assert_eq(kv_batch_count(b), 4);
    apr_uint64_t first;
    cr_assert_eq(kv_write_batch(db, b, &first), APR_SUCCESS);
    expect(db, "b1", "uno");
    expect(db, "b2", "two");
    expect(db, "gone", NULL);
    kv_value_t v;
    cr_assert_eq(kv_get(db, TU_STR("b2"), pool, &v), APR_SUCCESS);
    cr_assert_eq(v.seq, first + 1);
}

Test(db, expired_values_read_as_missing)
{
    kv_db_t *db = open_db(4096, 0);
    kv_write_opts_t past = { KV_IF_ANY, 0, (apr_int64_t)time(NULL) - 1 };
    kv_write_opts_t future = { KV_IF_ANY, 0, (apr_int64_t)time(NULL) + 3600 };
    cr_assert_eq(kv_put(db, TU_STR("old"), TU_STR("v"), &past, NULL), APR_SUCCESS);
    cr_assert_eq(kv_put(db, TU_STR("new"), TU_STR("v"), &future, NULL), APR_SUCCESS);
    expect(db, "old", NULL);
    kv_value_t v;
    cr_assert_eq(kv_get(db, TU_STR("new"), pool, &v), APR_SUCCESS);
    cr_assert_eq(v.expire_at, future.expire_at);
    cr_assert_eq(kv_db_flush(db), APR_SUCCESS);
    expect(db, "old", NULL);
    cr_assert_eq(kv_delete(db, TU_STR("old"), NULL, pool, NULL), KV_NOTFOUND);
}

/* Two threads race to delete each key: exactly one wins each time. */
typedef struct {
    kv_db_t *db;
    int wins;
} racer_t;

static void *APR_THREAD_FUNC race_deletes(apr_thread_t *t, void *data)
{
    racer_t *r = data;
    apr_pool_t *p;
    apr_pool_create(&p, NULL);
    for (unsigned long i = 0; i < 2000; i++) {
        char k[32];
        kv_value_t old;
        tu_key(k, sizeof k, "race", i);
        apr_status_t rv = kv_delete(r->db, k, strlen(k), NULL, p, &old);
        if (rv == APR_SUCCESS)
            r->wins++;
        else if (rv != KV_NOTFOUND)
            r->wins = -1000000;
    }
    apr_pool_destroy(p);
    /* Return rather than apr_thread_exit(): pthread_exit trips ASan's
     * sigaltstack check in Debian 12's GCC, and the pool goes with ours. */
    (void)t;
    return NULL;
}

Test(db, delete_returns_old_value_once)
{
    kv_db_t *db = open_db(16384, 1);
    char k[32];
    for (unsigned long i = 0; i < 2000; i++) {
        tu_key(k, sizeof k, "race", i);
        cr_assert_eq(kv_put(db, k, strlen(k), TU_STR("v"), NULL, NULL), APR_SUCCESS);
    }
    racer_t r[4];
    apr_thread_t *t[4];
    for (int i = 0; i < 4; i++) {
        r[i].db = db;
        r[i].wins = 0;
        cr_assert_eq(apr_thread_create(&t[i], NULL, race_deletes, &r[i], pool), APR_SUCCESS);
    }
    int total = 0;
    for (int i = 0; i < 4; i++) {
        apr_status_t trv;
        apr_thread_join(&trv, t[i]);
        cr_assert_geq(r[i].wins, 0);
        total += r[i].wins;
    }
    cr_assert_eq(total, 2000);
}

Test(db, orphans_are_removed_and_store_reopens)
{
    kv_db_t *db = open_db(4096, 0);
    char k[32];
    for (unsigned long i = 0; i < 500; i++) {
        tu_key(k, sizeof k, "o", i);
        cr_assert_eq(kv_put(db, k, strlen(k), k, strlen(k), NULL, NULL), APR_SUCCESS);
    }
    cr_assert_eq(kv_db_flush(db), APR_SUCCESS);
    kv_db_close(db);
    /* A crashed flush leaves these behind. */
    char path[4096];
    snprintf(path, sizeof path, "%s/000999.sst", dir);
    FILE *f = fopen(path, "w");
    fputs("junk", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/000998.sst.tmp", dir);
    f = fopen(path, "w");
    fclose(f);
    db = open_db(4096, 0);
    for (unsigned long i = 0; i < 500; i++) {
        tu_key(k, sizeof k, "o", i);
        expect(db, k, k);
    }
    cr_assert_eq(kv_db_compact(db), APR_SUCCESS);  /* takes the flush lock */
    snprintf(path, sizeof path, "%s/000999.sst", dir);
    cr_assert_neq(access(path, F_OK), 0, "orphan SST removed");
    snprintf(path, sizeof path, "%s/000998.sst.tmp", dir);
    cr_assert_neq(access(path, F_OK), 0, "temporary file removed");
}

/* A writer killed mid-append leaves a torn record at the end of the log.
 * Readers stop before it; the next writer cuts it off before appending,
 * so its own write is not stranded behind garbage. */
Test(db, torn_tail_is_cut_by_next_writer)
{
    kv_db_t *db = open_db(1 << 20, 0);
    cr_assert_eq(kv_put(db, TU_STR("before"), TU_STR("1"), NULL, NULL), APR_SUCCESS);
    kv_db_close(db);
    char path[4096];
    snprintf(path, sizeof path, "%s/000001.log", dir);
    FILE *f = fopen(path, "ab");
    cr_assert_not_null(f);
    /* A header promising 1000 payload bytes, and only 300 of them. */
    char torn[309] = { 1, 2, 3, 4, (char)0xe8, 3, 0, 0, 1 };
    memset(torn + 9, 'x', 300);
    fwrite(torn, 1, sizeof torn, f);
    fclose(f);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    off_t with_torn = st.st_size;
    db = open_db(1 << 20, 0);
    expect(db, "before", "1");
    cr_assert_eq(kv_put(db, TU_STR("after"), TU_STR("2"), NULL, NULL), APR_SUCCESS);
    kv_db_close(db);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_lt(st.st_size, with_torn, "the torn tail was cut, not left behind the new record");
    db = open_db(1 << 20, 0);
    expect(db, "before", "1");
    expect(db, "after", "2");
}

/* A damaged SST is reported as corruption, never served as data. */
Test(db, damaged_sst_is_corruption_not_wrong_data)
{
    kv_db_t *db = open_db(1 << 20, 0);
    char k[32];
    for (unsigned long i = 0; i < 200; i++) {
        tu_key(k, sizeof k, "d", i);
        cr_assert_eq(kv_put(db, k, strlen(k), k, strlen(k), NULL, NULL), APR_SUCCESS);
    }
    cr_assert_eq(kv_db_flush(db), APR_SUCCESS);
    kv_db_close(db);
    char path[4096];
    snprintf(path, sizeof path, "%s/000001.sst", dir);
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f, "flush wrote 000001.sst");
    fseek(f, 100, SEEK_SET);     /* inside the first data block */
    int c = fgetc(f);
    fseek(f, 100, SEEK_SET);
    fputc(c ^ 0x20, f);
    fclose(f);
    db = open_db(1 << 20, 0);
    kv_value_t v;
    int corrupt = 0;
    for (unsigned long i = 0; i < 200; i++) {
        tu_key(k, sizeof k, "d", i);
        apr_status_t rv = kv_get(db, k, strlen(k), pool, &v);
        if (rv == KV_CORRUPT)
            corrupt++;
        else {
            cr_assert_eq(rv, APR_SUCCESS);
            cr_assert_eq(v.len, strlen(k), "wrong data served for %s", k);
            cr_assert_eq(memcmp(v.data, k, v.len), 0, "wrong data served for %s", k);
        }
    }
    cr_assert_gt(corrupt, 0, "the damaged block was detected");
}

static int reported;
static char reported_path[4096];
static void on_corruption(void *baton, const char *path, apr_uint64_t offset)
{
    (void)baton;
    (void)offset;
    reported++;
    snprintf(reported_path, sizeof reported_path, "%s", path);
}

/* A whole log record that fails its checksum, with records after it, is
 * damage, not a torn tail: writers refuse (rather than cut the log and
 * lose what follows), and the damaged file is reported. */
Test(db, damaged_log_record_is_refused_not_cut)
{
    kv_db_t *db = open_db(1 << 20, 0);
    cr_assert_eq(kv_put(db, TU_STR("first"), TU_STR("1"), NULL, NULL), APR_SUCCESS);
    cr_assert_eq(kv_put(db, TU_STR("second"), TU_STR("2"), NULL, NULL), APR_SUCCESS);
    cr_assert_eq(kv_put(db, TU_STR("third"), TU_STR("3"), NULL, NULL), APR_SUCCESS);
    kv_db_close(db);
    char path[4096];
    snprintf(path, sizeof path, "%s/000001.log", dir);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    /* Records are equal-sized here: damage the second one's payload. */
    long rec = st.st_size / 3;
    FILE *f = fopen(path, "r+b");
    fseek(f, rec + 20, SEEK_SET);
    int c = fgetc(f);
    fseek(f, rec + 20, SEEK_SET);
    fputc(c ^ 0x01, f);
    fclose(f);
    kv_options_t o = tu_opts(1 << 20, 0);
    o.on_corruption = on_corruption;
    reported = 0;
    cr_assert_eq(kv_db_open(&db, dir, &o, pool), KV_CORRUPT, "open refuses a damaged log");
    cr_assert_gt(reported, 0);
    cr_assert(strstr(reported_path, "000001.log"), "reported %s", reported_path);
    struct stat st2;
    cr_assert_eq(stat(path, &st2), 0);
    cr_assert_eq(st2.st_size, st.st_size, "the log was not cut");
}

/* Compressed SSTs through flushes and compactions: everything reads back,
 * and a store reopened without compression still reads the old files. */
Test(db, compressed_store_reads_back_across_reopen)
{
    char *dir = tu_tmpdir();
    apr_pool_t *pool = tu_pool();
    int codecs[] = { KV_COMPRESS_LZ4, KV_COMPRESS_ZSTD, KV_COMPRESS_NONE };
    for (int round = 0; round < 3; round++) {
        kv_options_t o = tu_opts(16384, 0);
        o.compression = (kv_compression_e)codecs[round];
        kv_db_t *db;
        cr_assert_eq(kv_db_open(&db, dir, &o, pool), APR_SUCCESS);
        for (unsigned long i = 0; i < 3000; i++) {
            char k[32], v[80];
            tu_key(k, sizeof k, "z", i);
            size_t n = tu_val(v, sizeof v, k, i + 10000 * (unsigned long)round);
            cr_assert_eq(kv_put(db, TU_STR(k), v, n, NULL, NULL), APR_SUCCESS);
        }
        cr_assert_eq(kv_db_flush(db), APR_SUCCESS);
        cr_assert_eq(kv_db_compact(db), APR_SUCCESS);
        for (unsigned long i = 0; i < 3000; i += 3) {
            char k[32], v[80];
            kv_value_t got;
            tu_key(k, sizeof k, "z", i);
            size_t n = tu_val(v, sizeof v, k, i + 10000 * (unsigned long)round);
            cr_assert_eq(kv_get(db, TU_STR(k), pool, &got), APR_SUCCESS);
            cr_assert(got.len == n && memcmp(got.data, v, n) == 0, "round %d %s", round, k);
        }
        kv_db_close(db);
    }
    apr_pool_destroy(pool);
    tu_rmrf(dir);
    free(dir);
}

/* A blind delete writes a tombstone without reading: no old value, and a
 * missing key is no error. */
Test(db, blind_delete)
{
    char *dir = tu_tmpdir();
    apr_pool_t *pool = tu_pool();
    kv_options_t o = tu_opts(65536, 0);
    kv_db_t *db;
    cr_assert_eq(kv_db_open(&db, dir, &o, pool), APR_SUCCESS);
    kv_write_opts_t blind = { KV_BLIND, 0, 0 };
    kv_value_t v;
    cr_assert_eq(kv_put(db, TU_STR("here"), TU_STR("x"), NULL, NULL), APR_SUCCESS);
    cr_assert_eq(kv_delete(db, TU_STR("here"), &blind, NULL, NULL), APR_SUCCESS);
    cr_assert_eq(kv_get(db, TU_STR("here"), pool, &v), KV_NOTFOUND);
    cr_assert_eq(kv_delete(db, TU_STR("never"), &blind, NULL, NULL), APR_SUCCESS);
    cr_assert_eq(kv_delete(db, TU_STR("never"), NULL, pool, &v), KV_NOTFOUND, "a plain delete still reads");
    kv_db_close(db);
    apr_pool_destroy(pool);
    tu_rmrf(dir);
    free(dir);
}

/* Compaction drops what has expired: the space comes back. */
Test(db, compaction_drops_expired_values)
{
    kv_db_t *db = open_db(65536, 0);
    kv_write_opts_t past = { KV_IF_ANY, 0, (apr_int64_t)time(NULL) - 1 };
    char v[200];
    memset(v, 'e', sizeof v);
    for (unsigned long i = 0; i < 2000; i++) {
        char k[32];
        tu_key(k, sizeof k, "gone", i);
        cr_assert_eq(kv_put(db, TU_STR(k), v, sizeof v, &past, NULL), APR_SUCCESS);
    }
    cr_assert_eq(kv_put(db, TU_STR("kept"), TU_STR("v"), NULL, NULL), APR_SUCCESS);
    cr_assert_eq(kv_db_flush(db), APR_SUCCESS);
    kv_stats_t before, after;
    cr_assert_eq(kv_db_stats(db, &before), APR_SUCCESS);
    cr_assert_gt(before.sst_bytes, 2000 * sizeof v, "the expired values were flushed");
    cr_assert_eq(kv_db_compact(db), APR_SUCCESS);
    cr_assert_eq(kv_db_stats(db, &after), APR_SUCCESS);
    cr_assert_lt(after.sst_bytes, before.sst_bytes / 20, "%llu bytes left of %llu",
                 (unsigned long long)after.sst_bytes, (unsigned long long)before.sst_bytes);
    expect(db, "kept", "v");
    expect(db, "gone00000001", NULL);
}

/* Writers wait while L0 is full, and compaction works on the most
 * oversized level first, so neither L0 nor L1 grows without bound however
 * fast the writes come.  Without a background thread the writer compacts
 * itself, which makes the shape deterministic. */
Test(db, compaction_debt_stays_bounded)
{
    kv_db_t *db = open_db(16384, 0);
    char k[32], v[512];
    memset(v, 'c', sizeof v);
    int max_l0 = 0;
    apr_uint64_t max_l1 = 0;
    kv_stats_t st;
    unsigned long x = 7;
    for (unsigned long i = 0; i < 20000; i++) {
        x = x * 6364136223846793005UL + 1442695040888963407UL;
        tu_key(k, sizeof k, "debt", (x >> 33) % 50000);
        cr_assert_eq(kv_put(db, k, strlen(k), v, 400, NULL, NULL), APR_SUCCESS);
        if (i % 200 == 0) {
            cr_assert_eq(kv_db_stats(db, &st), APR_SUCCESS);
            if ((int)st.level_files[0] > max_l0)
                max_l0 = (int)st.level_files[0];
            if (st.level_bytes[1] > max_l1)
                max_l1 = st.level_bytes[1];
        }
    }
    cr_assert_eq(kv_db_stats(db, &st), APR_SUCCESS);
    /* L0 stops at 12 files (one more may land between a check and the
     * flush); L1's size is 10 files of 64 KiB here: a few times that at
     * most, while 8 MB were written. */
    cr_assert_leq(max_l0, 13, "L0 reached %d files", max_l0);
    cr_assert_leq(max_l1, (apr_uint64_t)4 * 10 * (64 << 10), "L1 reached %lu bytes", (unsigned long)max_l1);
    cr_assert_gt(st.level_files[2], 0, "compaction went deeper than L1");
    kv_db_close(db);
}

/* The memtable size bounds memory, not just the log: with small entries
 * a memtable's nodes take more room than their log records, and the
 * table is sealed when either reaches the size. */
Test(db, memtable_size_bounds_its_memory)
{
    kv_db_t *db = open_db(65536, 1);
    char k[32];
    apr_uint64_t most = 0;
    kv_stats_t st;
    for (unsigned long i = 0; i < 20000; i++) {
        tu_key(k, sizeof k, "small", (i * 7919) % 20000);
        cr_assert_eq(kv_put(db, k, strlen(k), "v", 1, NULL, NULL), APR_SUCCESS);
        cr_assert_eq(kv_db_stats(db, &st), APR_SUCCESS);
        if (st.memtable_bytes > most)
            most = st.memtable_bytes;
    }
    /* The active table and at most one sealed one waiting for its flush
     * (the figure counts both); one entry may go in after the check. */
    cr_assert_leq(most, 2 * (65536 + 256), "64 KiB memtables grew to %lu bytes", (unsigned long)most);
    kv_db_close(db);
}

/* With a mapping budget the store reads its SSTs through mappings, within
 * the budget, and answers as it does with pread across flushes,
 * compactions (which retire mapped files) and a reopen; closing gives the
 * budget back. */
Test(db, mapped_reads_stay_within_budget_and_answer_alike)
{
    kv_options_t o = tu_opts(16384, 0);
    o.map_bytes = 64 << 10;
    kv_db_t *db;
    cr_assert_eq(kv_db_open(&db, dir, &o, pool), APR_SUCCESS);
    char k[32], v[200];
    for (unsigned long ver = 1; ver <= 3; ver++) {
        for (unsigned long i = 0; i < 1500; i++) {
            tu_key(k, sizeof k, "k", i);
            size_t n = tu_val(v, sizeof v, k, ver * 10000 + i);
            cr_assert_eq(kv_put(db, k, strlen(k), v, n, NULL, NULL), APR_SUCCESS);
        }
        cr_assert_eq(kv_db_flush(db), APR_SUCCESS);
    }
    for (int pass = 0; pass < 3; pass++) {
        if (pass == 1)
            cr_assert_eq(kv_db_compact(db), APR_SUCCESS);
        for (unsigned long i = 0; i < 1500; i++) {
            tu_key(k, sizeof k, "k", i);
            tu_val(v, sizeof v, k, 3 * 10000 + i);
            expect(db, k, v);
        }
        kv_stats_t st;
        cr_assert_eq(kv_db_stats(db, &st), APR_SUCCESS);
        cr_assert_gt(st.sst_mapped_bytes, 0, "pass %d: some files are mapped", pass);
        cr_assert_leq(st.sst_mapped_bytes, o.map_bytes, "pass %d: mapped %lu", pass,
                      (unsigned long)st.sst_mapped_bytes);
        cr_assert_gt(st.sst_bytes, o.map_bytes, "pass %d: more data than the budget", pass);
        if (pass == 1) {
            kv_db_close(db);
            cr_assert_eq(sst_mapped_bytes(), 0, "close unmaps every file");
            cr_assert_eq(kv_db_open(&db, dir, &o, pool), APR_SUCCESS);
        }
    }
    kv_db_close(db);
}

/* Writers of one process share appends: 6 threads mix plain puts (which
 * may go out together), create-only puts and deletes that hand back the
 * old value (which append alone) under sync always.  Every sequence
 * number is handed out once, every create-only key is won by one writer,
 * every deleted value comes back once, and all of it is there after a
 * reopen. */
typedef struct {
    kv_db_t *db;
    int id;
    uint64_t seqs[600];
    int nseq, creates, deletes, errors;
} mixer_t;

static void *mix_writes(apr_thread_t *t, void *arg)
{
    mixer_t *m = arg;
    apr_pool_t *p;
    apr_pool_create(&p, NULL);
    for (int i = 0; i < 200; i++) {
        char k[32], v[64];
        apr_uint64_t seq;
        snprintf(k, sizeof k, "plain-%d-%03d", m->id, i);
        size_t n = tu_val(v, sizeof v, k, 1);
        if (kv_put(m->db, k, strlen(k), v, n, NULL, &seq) == APR_SUCCESS)
            m->seqs[m->nseq++] = seq;
        else
            m->errors++;
        snprintf(k, sizeof k, "once-%03d", i);
        kv_write_opts_t absent = { .cond = KV_IF_ABSENT };
        apr_status_t rv = kv_put(m->db, k, strlen(k), &m->id, sizeof m->id, &absent, &seq);
        if (rv == APR_SUCCESS) {
            m->creates++;
            m->seqs[m->nseq++] = seq;
        }
        else if (rv != KV_CONFLICT)
            m->errors++;
        snprintf(k, sizeof k, "gone-%03d", i);
        kv_value_t old;
        rv = kv_delete(m->db, k, strlen(k), NULL, p, &old);
        if (rv == APR_SUCCESS && old.len == 1 && old.data[0] == 'x')
            m->deletes++;
        else if (rv != KV_NOTFOUND)
            m->errors++;
        apr_pool_clear(p);
    }
    apr_pool_destroy(p);
    (void)t;
    return NULL;
}

Test(db, queued_writers_share_appends_and_keep_one_history)
{
    kv_options_t o = tu_opts(32768, 1);
    o.sync_mode = KV_SYNC_ALWAYS;
    kv_db_t *db;
    cr_assert_eq(kv_db_open(&db, dir, &o, pool), APR_SUCCESS);
    char k[32];
    for (int i = 0; i < 200; i++) {
        snprintf(k, sizeof k, "gone-%03d", i);
        cr_assert_eq(kv_put(db, k, strlen(k), TU_STR("x"), NULL, NULL), APR_SUCCESS);
    }
    static mixer_t m[6];
    apr_thread_t *t[6];
    for (int i = 0; i < 6; i++) {
        memset(&m[i], 0, sizeof m[i]);
        m[i].db = db;
        m[i].id = i;
        cr_assert_eq(apr_thread_create(&t[i], NULL, mix_writes, &m[i], pool), APR_SUCCESS);
    }
    int creates = 0, deletes = 0, nseq = 0;
    static uint64_t all[6 * 600];
    for (int i = 0; i < 6; i++) {
        apr_status_t trv;
        apr_thread_join(&trv, t[i]);
        cr_assert_eq(m[i].errors, 0, "writer %d", i);
        creates += m[i].creates;
        deletes += m[i].deletes;
        for (int j = 0; j < m[i].nseq; j++)
            all[nseq++] = m[i].seqs[j];
    }
    cr_assert_eq(creates, 200, "each create-only key won once");
    cr_assert_eq(deletes, 200, "each deleted value handed back once");
    for (int i = 1; i < nseq; i++)
        for (int j = i; j > 0 && all[j - 1] > all[j]; j--) {
            uint64_t x = all[j];
            all[j] = all[j - 1];
            all[j - 1] = x;
        }
    for (int i = 1; i < nseq; i++)
        cr_assert_neq(all[i - 1], all[i], "sequence number %lu given twice", (unsigned long)all[i]);
    kv_db_close(db);
    cr_assert_eq(kv_db_open(&db, dir, &o, pool), APR_SUCCESS);
    for (int w = 0; w < 6; w++)
        for (int i = 0; i < 200; i++) {
            char v[64];
            snprintf(k, sizeof k, "plain-%d-%03d", w, i);
            tu_val(v, sizeof v, k, 1);
            expect(db, k, v);
        }
    for (int i = 0; i < 200; i++) {
        kv_value_t v;
        snprintf(k, sizeof k, "once-%03d", i);
        cr_assert_eq(kv_get(db, k, strlen(k), pool, &v), APR_SUCCESS, "%s", k);
        snprintf(k, sizeof k, "gone-%03d", i);
        cr_assert_eq(kv_get(db, k, strlen(k), pool, &v), KV_NOTFOUND, "%s", k);
    }
    kv_db_close(db);
}
