/* test_review4.c -- fourth review: a writer catches up before it takes the
 * log lock (lock_and_catch_up -> catchup_if_behind, state_mu only), and a
 * catch-up stores visible_seq before applied.  Here: a writer far behind
 * (the logs it stands in flushed and removed by another process) whose
 * lock-free catch-up starts over from the manifest; and several processes,
 * several threads each, conditional and plain writers, deletes returning
 * the old value, readers, flushes and compactions and background threads
 * at once, checking read-your-writes across processes, compare-and-set
 * atomicity, unique sequence numbers and that nothing deadlocks (every
 * loop bounded; the test's timeout is the deadlock detector). */
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include "testutil.h"
#include "db_impl.h"

static char *dir;
static apr_pool_t *pool;
static void setup(void) { pool = tu_pool(); dir = tu_tmpdir(); }
static void teardown(void) { apr_pool_destroy(pool); tu_rmrf(dir); free(dir); }
TestSuite(review4, .init = setup, .fini = teardown);

static size_t mkval(char *buf, size_t cap, unsigned key, unsigned long ver)
{
    int n = snprintf(buf, cap, "%u:%lu:", key, ver);
    size_t len = 40 + (key * 13 + ver * 7) % 300;
    if (len > cap)
        len = cap;
    for (size_t i = (size_t)n; i < len; i++)
        buf[i] = (char)('a' + (key + ver + i) % 26);
    return len > (size_t)n ? len : (size_t)n;
}

/* Version of key read through db: 0 absent, -1 error or foreign value. */
static long readver(kv_db_t *db, apr_pool_t *p, unsigned key)
{
    char k[32], v[512];
    snprintf(k, sizeof k, "k%06u", key);
    kv_value_t got;
    apr_status_t rv = kv_get(db, k, strlen(k), p, &got);
    if (rv == KV_NOTFOUND)
        return 0;
    if (rv)
        return -1;
    unsigned gk;
    unsigned long gv;
    if (sscanf(got.data, "%u:%lu:", &gk, &gv) != 2 || gk != key)
        return -1;
    size_t n = mkval(v, sizeof v, key, gv);
    if (n != got.len || memcmp(v, got.data, n))
        return -1;
    return (long)gv;
}

static apr_status_t putver(kv_db_t *db, unsigned key, unsigned long ver, apr_uint64_t *seq)
{
    char k[32], v[512];
    snprintf(k, sizeof k, "k%06u", key);
    size_t n = mkval(v, sizeof v, key, ver);
    return kv_put(db, k, strlen(k), v, n, NULL, seq);
}

/* ---- 1. a writer whose logs were flushed away meanwhile --------------- */

/* b is level in log 1, then idles while a writes across many rotations
 * and flushes them (the manifest moves past b's log, which is removed).
 * b's first write catches up before the lock: it meets the missing log,
 * starts over from the manifest, and is then level under the lock.  Its
 * compare-and-set on a key a overwrote must see a's last version, and its
 * write the next sequence number. */
Test(review4, writer_behind_a_removed_log_catches_up_and_cas_sees_the_latest, .timeout = 60)
{
    kv_options_t o = tu_opts(64 << 10, 0);
    kv_db_t *a, *b;
    cr_assert_eq(kv_db_open(&a, dir, &o, pool), APR_SUCCESS);
    cr_assert_eq(kv_db_open(&b, dir, &o, pool), APR_SUCCESS);
    cr_assert_eq(putver(a, 1, 1, NULL), APR_SUCCESS);
    cr_assert_eq(readver(b, pool, 1), 1);
    uint64_t b_log = logpos_log(b->applied);
    unsigned long ver = 1;
    apr_uint64_t last = 0;
    for (int r = 0; r < 6; r++) {
        for (unsigned i = 0; i < 400; i++)
            cr_assert_eq(putver(a, 100 + i, (unsigned long)r + 1, NULL), APR_SUCCESS);
        ver++;
        cr_assert_eq(putver(a, 1, ver, &last), APR_SUCCESS);
        cr_assert_eq(kv_db_flush(a), APR_SUCCESS);
    }
    kv_stats_t st;
    cr_assert_eq(kv_db_stats(a, &st), APR_SUCCESS);
    char path[4200];
    snprintf(path, sizeof path, "%s/%06llu.log", dir, (unsigned long long)b_log);
    cr_assert_neq(access(path, F_OK), 0, "b's log was not flushed away; the test proves nothing");
    /* b: the current version and seq through a compare-and-set. */
    char k[32], v[512];
    snprintf(k, sizeof k, "k%06u", 1);
    size_t n = mkval(v, sizeof v, 1, ver + 1);
    kv_write_opts_t wo = { .cond = KV_IF_SEQ, .if_seq = last };
    apr_uint64_t s = 0;
    apr_status_t rv = kv_put(b, k, strlen(k), v, n, &wo, &s);
    cr_assert_eq(rv, APR_SUCCESS, "b's CAS on a's last version (seq %llu) failed: %d",
                 (unsigned long long)last, rv);
    cr_assert_eq(s, st.last_seq + 1, "b's write seq %llu, store was at %llu",
                 (unsigned long long)s, (unsigned long long)st.last_seq);
    cr_assert_eq(readver(a, pool, 1), (long)ver + 1);
    cr_assert_eq(readver(b, pool, 1), (long)ver + 1);
    for (unsigned i = 0; i < 400; i++)
        cr_assert_eq(readver(b, pool, 100 + i), 6, "b: key %u", 100 + i);
    kv_db_close(a);
    kv_db_close(b);
}

/* ---- 2. processes x threads, everything at once ----------------------- */

#define NPROC 3
#define NWRT 2          /* plain writers per process, each owns its keys */
#define KEYS_PER 200
#define WRITES tu_scaled(20000)
#define CAS_TRIES tu_scaled(8000)
#define READS tu_scaled(150000)
#define NKEY (NPROC * NWRT * KEYS_PER)

typedef struct {
    unsigned long acked[NKEY];    /* acknowledged version per key */
    unsigned long cas_ok;          /* successful increments of "ctr" */
    unsigned long deletes_ok;      /* deletes of "tmp" that returned a value */
    unsigned long tmp_puts;        /* puts of "tmp" acknowledged */
    int fail;
    char why[512];
    int go;
} board_t;

static board_t *bd;

static void bad(const char *fmt, unsigned long a1, unsigned long a2, long a3)
{
    if (__atomic_exchange_n(&bd->fail, 1, __ATOMIC_ACQ_REL) == 0)
        snprintf(bd->why, sizeof bd->why, fmt, a1, a2, a3);
}

typedef struct {
    kv_db_t *db;
    int proc, idx;
} targ_t;

static void *plain_writer(void *arg)
{
    targ_t *t = arg;
    unsigned base = (unsigned)(t->proc * NWRT + t->idx) * KEYS_PER;
    unsigned r = (unsigned)(t->proc * 31 + t->idx + 7);
    for (int i = 0; i < WRITES && !__atomic_load_n(&bd->fail, __ATOMIC_ACQUIRE); i++) {
        r = r * 1103515245u + 12345u;
        unsigned key = base + (r >> 8) % KEYS_PER;
        unsigned long ver = bd->acked[key] + 1;   /* only this thread writes it */
        apr_status_t rv = putver(t->db, key, ver, NULL);
        if (rv) {
            bad("put key %lu v%lu failed: %ld", key, ver, rv);
            break;
        }
        __atomic_store_n(&bd->acked[key], ver, __ATOMIC_RELEASE);
    }
    return NULL;
}

/* Reads any key: never older than what was acknowledged before it began. */
static void *reader(void *arg)
{
    targ_t *t = arg;
    apr_pool_t *p;
    apr_pool_create_unmanaged_ex(&p, NULL, NULL);
    unsigned r = (unsigned)(t->proc * 977 + t->idx + 3);
    for (int i = 0; i < READS && !__atomic_load_n(&bd->fail, __ATOMIC_ACQUIRE); i++) {
        r = r * 1103515245u + 12345u;
        unsigned key = (r >> 8) % NKEY;
        unsigned long before = __atomic_load_n(&bd->acked[key], __ATOMIC_ACQUIRE);
        long got = readver(t->db, p, key);
        if (got < 0 || (unsigned long)got < before) {
            bad("stale read: key %lu acknowledged v%lu before the read began, read %ld", key, before, got);
            break;
        }
        apr_pool_clear(p);
    }
    apr_pool_destroy(p);
    return NULL;
}

/* Increments "ctr" by compare-and-set; a delete-returning-old-value and a
 * put of "tmp" besides (both go through write_group without the queue). */
static void *cas_writer(void *arg)
{
    targ_t *t = arg;
    apr_pool_t *p;
    apr_pool_create_unmanaged_ex(&p, NULL, NULL);
    for (int i = 0; i < CAS_TRIES && !__atomic_load_n(&bd->fail, __ATOMIC_ACQUIRE); i++) {
        kv_value_t cur;
        apr_status_t rv = kv_get(t->db, "ctr", 3, p, &cur);
        unsigned long n = 0;
        kv_write_opts_t wo = { .cond = KV_IF_ABSENT };
        if (rv == APR_SUCCESS) {
            n = strtoul(cur.data, NULL, 10);
            wo.cond = KV_IF_SEQ;
            wo.if_seq = cur.seq;
        }
        else if (rv != KV_NOTFOUND) {
            bad("get ctr: %lu %lu %ld", 0, 0, rv);
            break;
        }
        char buf[32];
        int len = snprintf(buf, sizeof buf, "%lu", n + 1);
        rv = kv_put(t->db, "ctr", 3, buf, (apr_size_t)len, &wo, NULL);
        if (rv == APR_SUCCESS)
            __atomic_fetch_add(&bd->cas_ok, 1, __ATOMIC_ACQ_REL);
        else if (rv != KV_CONFLICT) {
            bad("cas ctr: %lu %lu %ld", n, 0, rv);
            break;
        }
        if (i % 7 == 0) {
            kv_write_opts_t ab = { .cond = KV_IF_ABSENT };
            rv = kv_put(t->db, "tmp", 3, "x", 1, &ab, NULL);
            if (rv == APR_SUCCESS)
                __atomic_fetch_add(&bd->tmp_puts, 1, __ATOMIC_ACQ_REL);
            else if (rv != KV_CONFLICT) {
                bad("put tmp: %lu %lu %ld", 0, 0, rv);
                break;
            }
            kv_value_t old;
            rv = kv_delete(t->db, "tmp", 3, NULL, p, &old);
            if (rv == APR_SUCCESS)
                __atomic_fetch_add(&bd->deletes_ok, 1, __ATOMIC_ACQ_REL);
            else if (rv != KV_NOTFOUND) {
                bad("delete tmp: %lu %lu %ld", 0, 0, rv);
                break;
            }
        }
        apr_pool_clear(p);
    }
    apr_pool_destroy(p);
    return NULL;
}

static volatile int maint_stop;

static void *maintainer(void *arg)
{
    targ_t *t = arg;
    for (int i = 0; i < 400 && !__atomic_load_n(&maint_stop, __ATOMIC_ACQUIRE)
                    && !__atomic_load_n(&bd->fail, __ATOMIC_ACQUIRE); i++) {
        apr_status_t rv = i % 3 == 2 ? kv_db_compact(t->db) : kv_db_flush(t->db);
        if (rv) {
            bad("maintenance %lu: %lu %ld", (unsigned long)i, 0, rv);
            break;
        }
        sched_yield();
    }
    return NULL;
}

static int run_proc(int proc)
{
    apr_pool_t *p = tu_pool();
    kv_options_t o = tu_opts(96 << 10, 1);
    o.sync_interval_ms = 5;
    kv_db_t *db;
    if (kv_db_open(&db, dir, &o, p) != APR_SUCCESS)
        return 3;
    __atomic_add_fetch(&bd->go, 1, __ATOMIC_ACQ_REL);
    for (long spin = 0; __atomic_load_n(&bd->go, __ATOMIC_ACQUIRE) < NPROC && spin < 200000000L; spin++)
        sched_yield();
    pthread_t w[NWRT], rd[2], cas, mt;
    targ_t tw[NWRT], tr[2], tc = { db, proc, 0 }, tm = { db, proc, 0 };
    for (int i = 0; i < NWRT; i++) {
        tw[i] = (targ_t){ db, proc, i };
        pthread_create(&w[i], NULL, plain_writer, &tw[i]);
    }
    for (int i = 0; i < 2; i++) {
        tr[i] = (targ_t){ db, proc, i };
        pthread_create(&rd[i], NULL, reader, &tr[i]);
    }
    pthread_create(&cas, NULL, cas_writer, &tc);
    int has_maint = proc == 0;
    if (has_maint)
        pthread_create(&mt, NULL, maintainer, &tm);
    for (int i = 0; i < NWRT; i++)
        pthread_join(w[i], NULL);
    pthread_join(cas, NULL);
    for (int i = 0; i < 2; i++)
        pthread_join(rd[i], NULL);
    __atomic_store_n(&maint_stop, 1, __ATOMIC_RELEASE);
    if (has_maint)
        pthread_join(mt, NULL);
    kv_db_close(db);
    apr_pool_destroy(p);
    return 0;
}

Test(review4, processes_threads_cas_deletes_readers_flush_compaction_at_once, .timeout = 240)
{
    bd = mmap(NULL, sizeof *bd, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(bd, MAP_FAILED);
    memset(bd, 0, sizeof *bd);
    pid_t pids[NPROC];
    for (int i = 0; i < NPROC; i++) {
        pids[i] = fork();
        cr_assert_geq(pids[i], 0);
        if (pids[i] == 0)
            _exit(run_proc(i));
    }
    for (int i = 0; i < NPROC; i++) {
        int st;
        cr_assert_eq(waitpid(pids[i], &st, 0), pids[i]);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "process %d: status %#x", i, st);
    }
    cr_assert(!bd->fail, "%s", bd->why);
    unsigned long acked = 0;
    for (unsigned k = 0; k < NKEY; k++)
        acked += bd->acked[k];
    fprintf(stderr, "review4 stress: %lu plain writes, %lu compare-and-sets, %lu puts/%lu deletes of tmp\n",
            acked, bd->cas_ok, bd->tmp_puts, bd->deletes_ok);
    kv_options_t o = tu_opts(1 << 20, 0);
    kv_db_t *db;
    cr_assert_eq(kv_db_open(&db, dir, &o, pool), APR_SUCCESS);
    for (unsigned k = 0; k < NKEY; k++)
        if (bd->acked[k])
            cr_assert_eq(readver(db, pool, k), (long)bd->acked[k], "key %u", k);
    kv_value_t v;
    cr_assert_eq(kv_get(db, "ctr", 3, pool, &v), APR_SUCCESS);
    cr_assert_eq(strtoul(v.data, NULL, 10), bd->cas_ok, "ctr %s, %lu compare-and-sets acknowledged",
                 v.data, bd->cas_ok);
    int tmp_now = kv_get(db, "tmp", 3, pool, &v) == APR_SUCCESS;
    cr_assert_eq(bd->tmp_puts, bd->deletes_ok + (unsigned long)tmp_now,
                 "%lu puts of tmp if absent, %lu deletes returned it, present now %d",
                 bd->tmp_puts, bd->deletes_ok, tmp_now);
    kv_db_close(db);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "%s %s > /dev/null", KVLSM_CHECK, dir);
    cr_assert_eq(system(cmd), 0, "kvlsm-check finds the store damaged");
    munmap(bd, sizeof *bd);
}
