/* test_sharedlog.c -- the shared log's protocol under load: several
 * processes, each with several writer threads (values of mixed sizes, so
 * one append carries several records) and reader threads beside them, a
 * tiny memtable (a rotation and a flush every few writes).  Every
 * acknowledged write is recorded in shared memory; readers check during
 * the run that every acknowledged write of any thread of any process is
 * readable, and after the run a fresh open must hold all of them.
 * KVLSM_SHAREDLOG_WRITES sets the writes per thread. */
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <valgrind/valgrind.h>
#include "testutil.h"

#define NPROC 3
#define NWRITERS 8
#define NREADERS 4
#define MAX_WRITES 20000
#define RUN_SECONDS 25

typedef struct {
    unsigned long acked[NPROC][NWRITERS];   /* writes acknowledged so far */
    unsigned long violations;               /* reads that missed an acked write */
    unsigned long reads;
    int ready, done[NPROC];
} board_t;

static board_t *board;
static unsigned long writes_per_thread;
static char *dir_kept;

/* Sizes from a few bytes to 6 KB, a function of the write's number. */
static size_t value_of(char *buf, size_t cap, int p, int t, unsigned long i)
{
    /* Process 0 writes mostly large values (its groups take long to
     * write), the others small ones often. */
    static const size_t sizes[] = { 8, 40, 300, 1200, 6000, 90 };
    size_t n = p == 0 && i % 4 ? 6000 : sizes[(i * 7 + (unsigned long)t * 3 + (unsigned long)p) % 6];
    int h = snprintf(buf, cap, "p%d-t%d-%lu:", p, t, i);
    for (size_t k = (size_t)h; k < n && k < cap; k++)
        buf[k] = (char)('a' + (k + i) % 26);
    return n > (size_t)h ? n : (size_t)h;
}

static void key_of(char *buf, size_t cap, int p, int t, unsigned long i)
{
    snprintf(buf, cap, "k-p%d-t%d-%06lu", p, t, i);
}

typedef struct {
    kv_db_t *db;
    int p, t;
    int bad;
} worker_t;

static int expect(kv_db_t *db, apr_pool_t *pool, int p, int t, unsigned long i, const char *who)
{
    char k[64], want[8192];
    key_of(k, sizeof k, p, t, i);
    size_t wn = value_of(want, sizeof want, p, t, i);
    kv_value_t v;
    apr_status_t rv = kv_get(db, k, strlen(k), pool, &v);
    if (rv != APR_SUCCESS || v.len != wn || memcmp(v.data, want, wn) != 0) {
        fprintf(stderr, "%s: acknowledged %s not read back (rv %d)\n", who, k, rv);
        __atomic_fetch_add(&board->violations, 1, __ATOMIC_RELAXED);
        return 1;
    }
    return 0;
}

static int time_up(time_t t0)
{
    return time(NULL) - t0 > RUN_SECONDS;
}

static void *writer(void *arg)
{
    worker_t *w = arg;
    apr_pool_t *pool;
    apr_pool_create_unmanaged_ex(&pool, NULL, NULL);
    char k[64], v[8192];
    time_t t0 = time(NULL);
    for (unsigned long i = 0; i < writes_per_thread && !w->bad && !time_up(t0); i++) {
        key_of(k, sizeof k, w->p, w->t, i);
        size_t n = value_of(v, sizeof v, w->p, w->t, i);
        apr_status_t rv;
        if (i % 5 == 4) {
            /* A conditional write appends alone, between the groups. */
            kv_write_opts_t o = { .cond = KV_IF_ABSENT };
            rv = kv_put(w->db, k, strlen(k), v, n, &o, NULL);
        }
        else
            rv = kv_put(w->db, k, strlen(k), v, n, NULL, NULL);
        if (rv != APR_SUCCESS) {
            fprintf(stderr, "p%d t%d: put %s: %d\n", w->p, w->t, k, rv);
            w->bad = 1;
            break;
        }
        __atomic_store_n(&board->acked[w->p][w->t], i + 1, __ATOMIC_RELEASE);
        /* Read your own write, at once, in the same thread. */
        if (expect(w->db, pool, w->p, w->t, i, "read-your-write"))
            w->bad = 1;
        apr_pool_clear(pool);
    }
    apr_pool_destroy(pool);
    return NULL;
}

static void *reader(void *arg)
{
    worker_t *w = arg;
    apr_pool_t *pool;
    apr_pool_create_unmanaged_ex(&pool, NULL, NULL);
    unsigned int seed = (unsigned int)(w->p * 131 + w->t);
    time_t t0 = time(NULL);
    for (unsigned long n = 0; n < 200000 && !time_up(t0) && !w->bad; n++) {
        int all_done = 1;
        for (int q = 0; q < NPROC; q++)
            all_done &= __atomic_load_n(&board->done[q], __ATOMIC_ACQUIRE);
        if (all_done)
            break;
        int q = rand_r(&seed) % NPROC, t = rand_r(&seed) % NWRITERS;
        unsigned long a = __atomic_load_n(&board->acked[q][t], __ATOMIC_ACQUIRE);
        if (a == 0)
            continue;
        /* The newest acknowledged write, or one from a while ago. */
        unsigned long i = (n & 1) ? a - 1 : (unsigned long)rand_r(&seed) % a;
        if (expect(w->db, pool, q, t, i, "reader"))
            w->bad = 1;
        __atomic_fetch_add(&board->reads, 1, __ATOMIC_RELAXED);
        apr_pool_clear(pool);
    }
    apr_pool_destroy(pool);
    return NULL;
}

static void process_main(int p)
{
    apr_pool_t *pool = tu_pool();
    kv_options_t o = tu_opts(262144, 1);
    kv_db_t *db;
    if (kv_db_open(&db, dir_kept, &o, pool) != APR_SUCCESS)
        _exit(3);
    __atomic_fetch_add(&board->ready, 1, __ATOMIC_ACQ_REL);
    for (int spins = 0; __atomic_load_n(&board->ready, __ATOMIC_ACQUIRE) < NPROC && spins < 100000000; spins++)
        sched_yield();
    pthread_t th[NWRITERS + NREADERS];
    worker_t ws[NWRITERS + NREADERS];
    for (int i = 0; i < NWRITERS + NREADERS; i++) {
        ws[i] = (worker_t){ db, p, i < NWRITERS ? i : i - NWRITERS, 0 };
        pthread_create(&th[i], NULL, i < NWRITERS ? writer : reader, &ws[i]);
    }
    int bad = 0;
    for (int i = 0; i < NWRITERS; i++) {
        pthread_join(th[i], NULL);
        bad |= ws[i].bad;
    }
    __atomic_store_n(&board->done[p], 1, __ATOMIC_RELEASE);
    for (int i = NWRITERS; i < NWRITERS + NREADERS; i++) {
        pthread_join(th[i], NULL);
        bad |= ws[i].bad;
    }
    kv_db_close(db);
    _exit(bad ? 1 : 0);
}

Test(sharedlog, acknowledged_writes_survive_group_appends_beside_readers, .timeout = 240)
{
    const char *e = getenv("KVLSM_SHAREDLOG_WRITES");
    /* Under valgrind (make valgrind) a short run: it checks memory, the
     * plain and ASan runs check the protocol. */
    writes_per_thread = e ? strtoul(e, NULL, 10) : RUNNING_ON_VALGRIND ? 60 : 1500;
    if (writes_per_thread > MAX_WRITES)
        writes_per_thread = MAX_WRITES;
    dir_kept = tu_tmpdir();
    board = mmap(NULL, sizeof *board, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(board, MAP_FAILED);
    memset(board, 0, sizeof *board);
    pid_t pids[NPROC];
    for (int p = 0; p < NPROC; p++) {
        pids[p] = fork();
        cr_assert_geq(pids[p], 0);
        if (pids[p] == 0)
            process_main(p);
    }
    int failed = 0;
    for (int p = 0; p < NPROC; p++) {
        int status;
        waitpid(pids[p], &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            failed++;
    }
    cr_expect_eq(board->violations, 0, "%lu reads missed an acknowledged write (of %lu)",
                 board->violations, board->reads);
    cr_expect_eq(failed, 0, "%d processes failed", failed);

    /* After everyone is gone: every acknowledged write is there. */
    apr_pool_t *pool = tu_pool();
    kv_options_t o = tu_opts(16384, 0);
    kv_db_t *db;
    cr_assert_eq(kv_db_open(&db, dir_kept, &o, pool), APR_SUCCESS);
    unsigned long lost = 0, total = 0;
    board->violations = 0;
    for (int p = 0; p < NPROC; p++)
        for (int t = 0; t < NWRITERS; t++)
            for (unsigned long i = 0; i < board->acked[p][t]; i++, total++)
                lost += (unsigned long)expect(db, pool, p, t, i, "after reopen");
    kv_db_close(db);
    cr_assert_eq(lost, 0, "%lu of %lu acknowledged writes lost after reopen", lost, total);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "%s %s > /dev/null", KVLSM_CHECK, dir_kept);
    cr_assert_eq(system(cmd), 0, "kvlsm-check finds the store damaged");
    munmap(board, sizeof *board);
    apr_pool_destroy(pool);
    tu_rmrf(dir_kept);
    free(dir_kept);
}
