/* test_model.c -- randomized model test: thousands of random puts,
 * deletes, gets and scans checked against a plain in-memory map, with
 * flushes, compactions and close/reopen at random points and a tiny
 * memtable.  The seed is printed; KV_SEED=<n> replays a run. */
#include "testutil.h"

#define NKEYS 600
#define VMAX 300

typedef struct {
    int present;
    size_t len;
    char val[VMAX];
} slot_t;

static unsigned long long rng_state;
static unsigned rnd(unsigned n)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (unsigned)((rng_state >> 33) % n);
}

static void keyname(char *k, size_t n, unsigned i)
{
    /* Varying lengths and a shared prefix exercise the ordering. */
    snprintf(k, n, "m%0*u", (int)(1 + i % 5), i);
}

static int cmp_idx(const void *a, const void *b, void *ctx)
{
    (void)ctx;
    char ka[32], kb[32];
    keyname(ka, sizeof ka, *(const unsigned *)a);
    keyname(kb, sizeof kb, *(const unsigned *)b);
    return strcmp(ka, kb);
}

static void run_model(unsigned long long seed, int ops, int background)
{
    apr_pool_t *pool = tu_pool();
    char *dir = tu_tmpdir();
    slot_t *model = calloc(NKEYS, sizeof(slot_t));
    unsigned order[NKEYS];
    for (unsigned i = 0; i < NKEYS; i++)
        order[i] = i;
    qsort_r(order, NKEYS, sizeof(unsigned), cmp_idx, NULL);
    rng_state = seed;
    kv_options_t o = tu_opts(4096, background);
    kv_db_t *db;
    apr_pool_t *dbpool;
    apr_pool_create(&dbpool, pool);
    cr_assert_eq(kv_db_open(&db, dir, &o, dbpool), APR_SUCCESS);
    for (int op = 0; op < ops; op++) {
        apr_pool_t *p;
        apr_pool_create(&p, pool);
        unsigned i = rnd(NKEYS), what = rnd(100);
        char k[32];
        keyname(k, sizeof k, i);
        if (what < 45) {
            char v[VMAX];
            size_t len = rnd(VMAX);
            for (size_t j = 0; j < len; j++)
                v[j] = (char)rnd(256);
            cr_assert_eq(kv_put(db, k, strlen(k), v, len, NULL, NULL), APR_SUCCESS, "seed %llu op %d", seed, op);
            model[i].present = 1;
            model[i].len = len;
            memcpy(model[i].val, v, len);
        }
        else if (what < 60) {
            kv_value_t old;
            apr_status_t rv = kv_delete(db, k, strlen(k), NULL, p, &old);
            if (model[i].present) {
                cr_assert_eq(rv, APR_SUCCESS, "seed %llu op %d", seed, op);
                cr_assert_eq(old.len, model[i].len);
                cr_assert_eq(memcmp(old.data, model[i].val, old.len), 0);
            }
            else
                cr_assert_eq(rv, KV_NOTFOUND, "seed %llu op %d", seed, op);
            model[i].present = 0;
        }
        else if (what < 90) {
            kv_value_t v;
            apr_status_t rv = kv_get(db, k, strlen(k), p, &v);
            if (model[i].present) {
                cr_assert_eq(rv, APR_SUCCESS, "seed %llu op %d key %s", seed, op, k);
                cr_assert_eq(v.len, model[i].len, "seed %llu op %d key %s", seed, op, k);
                cr_assert_eq(memcmp(v.data, model[i].val, v.len), 0, "seed %llu op %d", seed, op);
            }
            else
                cr_assert_eq(rv, KV_NOTFOUND, "seed %llu op %d key %s", seed, op, k);
        }
        else if (what < 94) {
            /* Scan a random range and compare with the model's order. */
            unsigned start = rnd(NKEYS);
            char sk[32];
            keyname(sk, sizeof sk, order[start]);
            kv_iter_t *it;
            cr_assert_eq(kv_iter_open(&it, db, p), APR_SUCCESS);
            cr_assert_eq(kv_iter_seek(it, sk, strlen(sk)), APR_SUCCESS);
            unsigned pos = start;
            for (int n = 0; n < 50; n++) {
                while (pos < NKEYS && !model[order[pos]].present)
                    pos++;
                if (pos == NKEYS) {
                    cr_assert(!kv_iter_valid(it), "seed %llu op %d: scan past the end", seed, op);
                    break;
                }
                cr_assert(kv_iter_valid(it), "seed %llu op %d: scan ended early", seed, op);
                const char *key;
                apr_size_t klen;
                kv_value_t v;
                kv_iter_key(it, &key, &klen);
                kv_iter_value(it, &v);
                char want[32];
                keyname(want, sizeof want, order[pos]);
                cr_assert_eq(klen, strlen(want), "seed %llu op %d", seed, op);
                cr_assert_eq(memcmp(key, want, klen), 0, "seed %llu op %d: %.*s vs %s", seed, op, (int)klen, key, want);
                cr_assert_eq(v.len, model[order[pos]].len);
                cr_assert_eq(memcmp(v.data, model[order[pos]].val, v.len), 0);
                kv_iter_next(it);
                pos++;
            }
            kv_iter_close(it);
        }
        else if (what < 96) {
            cr_assert_eq(kv_db_flush(db), APR_SUCCESS);
        }
        else if (what < 98) {
            cr_assert_eq(kv_db_compact(db), APR_SUCCESS);
        }
        else {
            cr_assert_eq(kv_db_close(db), APR_SUCCESS);
            apr_pool_destroy(dbpool);
            apr_pool_create(&dbpool, pool);
            cr_assert_eq(kv_db_open(&db, dir, &o, dbpool), APR_SUCCESS, "seed %llu op %d reopen", seed, op);
        }
        apr_pool_destroy(p);
    }
    kv_stats_t st;
    cr_assert_eq(kv_db_stats(db, &st), APR_SUCCESS);
    cr_assert_eq(st.bg_errors, 0);
    kv_db_close(db);
    apr_pool_destroy(pool);
    free(model);
    tu_rmrf(dir);
    free(dir);
}

static unsigned long long seed_for(unsigned long long dflt)
{
    const char *s = getenv("KV_SEED");
    unsigned long long seed = s ? strtoull(s, NULL, 10) : dflt;
    cr_log_info("model seed %llu (KV_SEED=%llu replays it)", seed, seed);
    return seed;
}

Test(model, random_ops_match_map_foreground)
{
    run_model(seed_for((unsigned long long)time(NULL)), 20000, 0);
}

Test(model, random_ops_match_map_with_background_thread)
{
    run_model(seed_for((unsigned long long)time(NULL) + 1), 20000, 1);
}
