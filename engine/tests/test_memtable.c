/* test_memtable.c -- the skiplist memtable: internal order, versions,
 * binary keys, and one writer racing lock-free readers. */
#include <apr_thread_proc.h>
#include "testutil.h"
#include "memtable.h"

Test(memtable, versions_by_sequence_and_tombstones)
{
    memtable_t *mt = mt_create();
    kv_ent_t e = { "k", 1, "v1", 2, 10, 0, ENT_PUT };
    cr_assert_eq(mt_add(mt, &e), APR_SUCCESS);
    e.val = "v2";
    e.seq = 20;
    cr_assert_eq(mt_add(mt, &e), APR_SUCCESS);
    kv_ent_t d = { "k", 1, NULL, 0, 30, 0, ENT_DEL };
    cr_assert_eq(mt_add(mt, &d), APR_SUCCESS);
    kv_ent_t out;
    cr_assert(mt_get(mt, "k", 1, 100, &out));
    cr_assert_eq(out.type, ENT_DEL);
    cr_assert(mt_get(mt, "k", 1, 25, &out));
    cr_assert_eq(out.seq, 20);
    cr_assert_eq(memcmp(out.val, "v2", 2), 0);
    cr_assert(mt_get(mt, "k", 1, 10, &out));
    cr_assert_eq(out.seq, 10);
    cr_assert(!mt_get(mt, "k", 1, 9, &out));
    cr_assert(!mt_get(mt, "j", 1, 100, &out));
    cr_assert_eq(mt_count(mt), 3);
    mt_unref(mt);
}

Test(memtable, iterates_in_internal_order_with_binary_keys)
{
    memtable_t *mt = mt_create();
    const char *keys[] = { "ab", "a", "a\0", "\xff", "", "b" };
    size_t lens[] = { 2, 1, 2, 1, 0, 1 };
    for (int i = 0; i < 6; i++) {
        kv_ent_t e = { keys[i], lens[i], "x", 1, (uint64_t)i + 1, 0, ENT_PUT };
        cr_assert_eq(mt_add(mt, &e), APR_SUCCESS);
    }
    /* "" < "a" < "a\0" < "ab" < "b" < "\xff" */
    const int want[] = { 4, 1, 2, 0, 5, 3 };
    mt_iter_t it;
    mt_iter_init(&it, mt);
    int n = 0;
    for (mt_iter_seek_first(&it); mt_iter_valid(&it); mt_iter_next(&it)) {
        kv_ent_t e;
        mt_iter_entry(&it, &e);
        cr_assert_eq(e.klen, lens[want[n]]);
        cr_assert_eq(memcmp(e.key, keys[want[n]], e.klen), 0, "position %d", n);
        n++;
    }
    cr_assert_eq(n, 6);
    mt_iter_seek(&it, "a\0", 2);
    kv_ent_t e;
    mt_iter_entry(&it, &e);
    cr_assert_eq(e.klen, 2);
    cr_assert_eq(e.key[1], '\0');
    mt_unref(mt);
}

Test(memtable, random_inserts_match_sorted_model)
{
    memtable_t *mt = mt_create();
    enum { N = 20000 };
    unsigned seed = (unsigned)time(NULL);
    cr_log_info("memtable seed %u", seed);
    srand(seed);
    static char present[N];
    memset(present, 0, sizeof present);
    for (int i = 0; i < N; i++) {
        unsigned k = (unsigned)rand() % N;
        char key[16];
        snprintf(key, sizeof key, "%07u", k);
        kv_ent_t e = { key, 7, key, 7, (uint64_t)i + 1, 0, ENT_PUT };
        cr_assert_eq(mt_add(mt, &e), APR_SUCCESS);
        present[k] = 1;
    }
    mt_iter_t it;
    mt_iter_init(&it, mt);
    char prev[16] = "";
    uint64_t prevseq = 0;
    uint64_t n = 0;
    for (mt_iter_seek_first(&it); mt_iter_valid(&it); mt_iter_next(&it)) {
        kv_ent_t e;
        mt_iter_entry(&it, &e);
        int c = n ? key_cmp(prev, 7, e.key, e.klen) : -1;
        cr_assert(c < 0 || (c == 0 && prevseq > e.seq), "out of order at %lu", (unsigned long)n);
        memcpy(prev, e.key, 7);
        prevseq = e.seq;
        n++;
    }
    cr_assert_eq(n, N);
    for (unsigned k = 0; k < N; k++) {
        char key[16];
        kv_ent_t e;
        snprintf(key, sizeof key, "%07u", k);
        cr_assert_eq(mt_get(mt, key, 7, UINT64_MAX, &e), present[k]);
    }
    cr_assert_gt(mt_bytes(mt), (size_t)N * 14);
    mt_unref(mt);
}

typedef struct {
    memtable_t *mt;
    volatile int *done;
    int errors;
} reader_t;

static void *APR_THREAD_FUNC reader(apr_thread_t *t, void *data)
{
    (void)t;
    reader_t *r = data;
    while (!__atomic_load_n(r->done, __ATOMIC_ACQUIRE)) {
        mt_iter_t it;
        mt_iter_init(&it, r->mt);
        char prev[16];
        int have = 0;
        for (mt_iter_seek_first(&it); mt_iter_valid(&it); mt_iter_next(&it)) {
            kv_ent_t e;
            mt_iter_entry(&it, &e);
            /* Complete entries only: the value is the key reversed. */
            if (e.klen != 8 || e.vlen != 8)
                r->errors++;
            for (int i = 0; i < 8 && e.vlen == 8; i++)
                if (e.val[i] != e.key[7 - i])
                    r->errors++;
            if (have && key_cmp(prev, 8, e.key, e.klen) >= 0)
                r->errors++;
            memcpy(prev, e.key, 8);
            have = 1;
        }
    }
    return NULL;
}

Test(memtable, one_writer_many_lockfree_readers, .timeout = 60)
{
    apr_pool_t *pool = tu_pool();
    memtable_t *mt = mt_create();
    volatile int done = 0;
    reader_t r[3];
    apr_thread_t *th[3];
    for (int i = 0; i < 3; i++) {
        r[i].mt = mt;
        r[i].done = &done;
        r[i].errors = 0;
        cr_assert_eq(apr_thread_create(&th[i], NULL, reader, &r[i], pool), APR_SUCCESS);
    }
    for (unsigned i = 0; i < 200000; i++) {
        char k[16], v[8];
        snprintf(k, sizeof k, "%08u", (i * 2654435761u) % 100000000u);
        for (int j = 0; j < 8; j++)
            v[j] = k[7 - j];
        kv_ent_t e = { k, 8, v, 8, i + 1, 0, ENT_PUT };
        if (mt_get(mt, k, 8, UINT64_MAX, &(kv_ent_t){ 0 }))
            continue;   /* keep one version per key for the order check */
        cr_assert_eq(mt_add(mt, &e), APR_SUCCESS);
    }
    __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 3; i++) {
        apr_status_t trv;
        apr_thread_join(&trv, th[i]);
        cr_assert_eq(r[i].errors, 0, "reader %d saw %d bad entries", i, r[i].errors);
    }
    mt_unref(mt);
    apr_pool_destroy(pool);
}
