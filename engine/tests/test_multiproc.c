/* test_multiproc.c -- several forked processes open one directory and
 * write and read at once, as Apache's children do: each sees the others'
 * acknowledged writes immediately, a key deleted by several processes is
 * handed out exactly once, and flushes and compactions by whichever
 * process holds the flush lock lose nothing. */
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include "testutil.h"

#define NPROC 4
#define WRITES 3000
#define SHARED 1500

typedef struct {
    unsigned long acked[NPROC];   /* writes each process has acknowledged */
    int wins[SHARED];             /* deletes that returned the value */
    int ready;
} board_t;

static int check_peer(kv_db_t *db, board_t *b, int me, apr_pool_t *p, unsigned long step)
{
    int q = (int)((me + 1 + step) % NPROC);
    if (q == me)
        return 0;
    unsigned long n = __atomic_load_n(&b->acked[q], __ATOMIC_ACQUIRE);
    if (n == 0)
        return 0;
    char k[32], want[64];
    snprintf(k, sizeof k, "p%d-%06lu", q, n - 1);
    size_t wn = tu_val(want, sizeof want, k, 1);
    kv_value_t v;
    apr_status_t rv = kv_get(db, k, strlen(k), p, &v);
    if (rv != APR_SUCCESS || v.len != wn || memcmp(v.data, want, wn) != 0) {
        fprintf(stderr, "process %d: peer %d's acknowledged key %s: rv %d\n", me, q, k, rv);
        return 1;
    }
    return 0;
}

static void child(const char *dir, board_t *b, int me)
{
    apr_pool_t *pool = tu_pool();
    kv_options_t o = tu_opts(8192, 1);
    kv_db_t *db;
    if (kv_db_open(&db, dir, &o, pool) != APR_SUCCESS)
        _exit(3);
    __atomic_fetch_add(&b->ready, 1, __ATOMIC_ACQ_REL);
    while (__atomic_load_n(&b->ready, __ATOMIC_ACQUIRE) < NPROC)
        sched_yield();
    int bad = 0;
    for (unsigned long i = 0; i < WRITES && !bad; i++) {
        apr_pool_t *p;
        apr_pool_create(&p, pool);
        char k[32], v[64];
        snprintf(k, sizeof k, "p%d-%06lu", me, i);
        size_t n = tu_val(v, sizeof v, k, 1);
        if (kv_put(db, k, strlen(k), v, n, NULL, NULL) != APR_SUCCESS)
            bad = 4;
        __atomic_store_n(&b->acked[me], i + 1, __ATOMIC_RELEASE);
        if (!bad)
            bad = check_peer(db, b, me, p, i);
        /* Everyone races for the shared keys. */
        if (!bad && i % 2 == 0) {
            unsigned long s = (i / 2 + (unsigned long)me * 97) % SHARED;
            snprintf(k, sizeof k, "shared-%05lu", s);
            kv_value_t old;
            apr_status_t rv = kv_delete(db, k, strlen(k), NULL, p, &old);
            if (rv == APR_SUCCESS)
                __atomic_fetch_add(&b->wins[s], 1, __ATOMIC_ACQ_REL);
            else if (rv != KV_NOTFOUND)
                bad = 6;
        }
        apr_pool_destroy(p);
    }
    kv_db_close(db);
    _exit(bad);
}

/* Static, so the forked workers (which _exit holding it) still reach it
 * under valgrind's leak check. */
static char *dir_kept;

Test(multiproc, processes_share_one_history, .timeout = 180)
{
    dir_kept = tu_tmpdir();
    apr_pool_t *pool = tu_pool();
    board_t *b = mmap(NULL, sizeof(board_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(b, MAP_FAILED);
    memset(b, 0, sizeof *b);
    {
        kv_db_t *db;
        apr_pool_t *p;
        apr_pool_create(&p, pool);
        kv_options_t o = tu_opts(8192, 0);
        cr_assert_eq(kv_db_open(&db, dir_kept, &o, p), APR_SUCCESS);
        for (int s = 0; s < SHARED; s++) {
            char k[32];
            snprintf(k, sizeof k, "shared-%05d", s);
            cr_assert_eq(kv_put(db, k, strlen(k), TU_STR("prize"), NULL, NULL), APR_SUCCESS);
        }
        kv_db_close(db);
        apr_pool_destroy(p);
    }
    pid_t pids[NPROC];
    for (int i = 0; i < NPROC; i++) {
        pids[i] = fork();
        cr_assert_geq(pids[i], 0);
        if (pids[i] == 0)
            child(dir_kept, b, i);
    }
    for (int i = 0; i < NPROC; i++) {
        int status;
        waitpid(pids[i], &status, 0);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "process %d failed: status %d", i, status);
    }
    /* Each shared key that anybody reached went to exactly one process. */
    kv_db_t *db;
    kv_options_t o = tu_opts(8192, 0);
    cr_assert_eq(kv_db_open(&db, dir_kept, &o, pool), APR_SUCCESS);
    for (int s = 0; s < SHARED; s++) {
        char k[32];
        snprintf(k, sizeof k, "shared-%05d", s);
        kv_value_t v;
        apr_status_t rv = kv_get(db, k, strlen(k), pool, &v);
        cr_assert_leq(b->wins[s], 1, "key %s deleted %d times", k, b->wins[s]);
        cr_assert_eq(b->wins[s] == 0, rv == APR_SUCCESS, "key %s: wins %d rv %d", k, b->wins[s], rv);
    }
    for (int q = 0; q < NPROC; q++) {
        for (unsigned long i = 0; i < WRITES; i++) {
            char k[32], want[64];
            snprintf(k, sizeof k, "p%d-%06lu", q, i);
            size_t wn = tu_val(want, sizeof want, k, 1);
            kv_value_t v;
            cr_assert_eq(kv_get(db, k, strlen(k), pool, &v), APR_SUCCESS, "%s lost", k);
            cr_assert_eq(v.len, wn);
            cr_assert_eq(memcmp(v.data, want, wn), 0);
        }
    }
    kv_stats_t st;
    cr_assert_eq(kv_db_stats(db, &st), APR_SUCCESS);
    cr_assert_gt(st.sst_files, 0, "flushes happened");
    kv_db_close(db);
    munmap(b, sizeof *b);
    apr_pool_destroy(pool);
    tu_rmrf(dir_kept);
    free(dir_kept);
}
