/* test_powerloss.c -- power loss, simulated by fault.c: a forked writer
 * (two threads, puts and deletes, small memtable so flushes and
 * compactions run all the time) loses power after a random number of file
 * operations -- mid-write, mid-sync, mid-flush, mid-compaction, even
 * mid-recovery -- and everything it did not fsync is dropped.  Then the
 * store must open, every write acknowledged under KVLSMSync always must be
 * there, no value may be one that was never written, and kvlsm-check must
 * find nothing wrong.  Under interval sync, what is lost must be writes
 * acknowledged within the interval (plus scheduling slack) of the cut.
 * Built only into the fault build (make fault-test). */
#include <sys/mman.h>
#include <sys/wait.h>
#include <pthread.h>
#include "testutil.h"
#include "fault.h"

#define THREADS 2
#define KEYS 97            /* per thread; op i touches key i % KEYS */
#define OPS_PER_CYCLE 4000 /* per thread, a bound if the cut comes late */

typedef struct { uint32_t thread, acked; uint64_t op; int64_t ns; } msg_t;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int is_delete(uint64_t op)
{
    return (op * 2654435761u >> 7) % 5 == 0;
}

static void key_of(char *buf, size_t n, unsigned t, uint64_t op)
{
    snprintf(buf, n, "t%u-%03u", t, (unsigned)(op % KEYS));
}

typedef struct { kv_db_t *db; unsigned t; uint64_t from; int fd; } writer_t;

static void send_msg(int fd, unsigned t, uint64_t op, int acked)
{
    msg_t m = { t, (uint32_t)acked, op, now_ns() };
    if (write(fd, &m, sizeof m) != sizeof m)
        _exit(5);
}

static void *writer(void *arg)
{
    writer_t *w = arg;
    for (uint64_t op = w->from; op < w->from + OPS_PER_CYCLE; op++) {
        char k[32], v[80];
        key_of(k, sizeof k, w->t, op);
        size_t n = tu_val(v, sizeof v, k, op);
        send_msg(w->fd, w->t, op, 0);   /* about to be issued */
        apr_status_t rv = is_delete(op) ? kv_delete(w->db, k, strlen(k), NULL, NULL, NULL)
                                        : kv_put(w->db, k, strlen(k), v, n, NULL, NULL);
        if (rv != APR_SUCCESS && rv != KV_NOTFOUND)
            _exit(4);
        send_msg(w->fd, w->t, op, 1);
    }
    return NULL;
}

static void child(const char *dir, kv_sync_mode_e mode, uint64_t cut_at,
                  const uint64_t *from, int fd, volatile int64_t *longest_sync)
{
    fault_power_arm(dir, cut_at);
    fault_publish_longest_sync(longest_sync);
    apr_pool_t *pool = tu_pool();
    kv_options_t o = tu_opts(16384, 1);
    o.sync_mode = mode;
    o.sync_interval_ms = 100;
    kv_db_t *db;
    if (kv_db_open(&db, dir, &o, pool) != APR_SUCCESS)
        _exit(3);
    pthread_t th[THREADS];
    writer_t w[THREADS];
    for (unsigned t = 0; t < THREADS; t++) {
        w[t] = (writer_t){ db, t, from[t], fd };
        pthread_create(&th[t], NULL, writer, &w[t]);
    }
    for (unsigned t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    fault_power_cut();   /* the cut did not come during the writes */
}

typedef struct {
    int64_t acked[THREADS][KEYS];    /* op that must be visible at least; -1 none */
    int64_t acked_ns[THREADS][KEYS];
    int64_t issued[THREADS];         /* last op issued; -1 none */
} model_t;

/* Run the cycles; returns the longest window (ns before the cut) in which
 * an acknowledged write was lost.  Under interval sync a write acknowledged
 * more than grace_ns before the cut must be there, plus 8 of the slowest
 * fdatasync the writer saw: in the fault build every file operation of a
 * process is one step under the layer's lock, so the interval's sync
 * can queue behind a flush's and a rotation's syncs (an SST, the
 * directory, the manifest, the directory, the sealed log, the directory),
 * and on a slow disk that, not the engine, is what the window measures
 * (seen on CI: more than 2 s lost; reproduced with every fsync delayed
 * by 250 ms). */
static int64_t power_cycles(kv_sync_mode_e mode, int cycles, int64_t grace_ns)
{
    char *dir = tu_tmpdir();
    apr_pool_t *pool = tu_pool();
    static model_t m;
    uint64_t from[THREADS];
    for (unsigned t = 0; t < THREADS; t++) {
        m.issued[t] = -1;
        from[t] = 0;
        for (int k = 0; k < KEYS; k++)
            m.acked[t][k] = -1;
    }
    unsigned seed = getenv("KVLSM_SEED") ? (unsigned)atoi(getenv("KVLSM_SEED")) : (unsigned)time(NULL);
    cr_log_info("power-loss seed %u", seed);
    srand(seed);
    int64_t worst_loss = 0, slowest_sync = 0;
    uint64_t ops_total = 0, writes_acked = 0;
    volatile int64_t *longest_sync = mmap(NULL, sizeof(int64_t), PROT_READ | PROT_WRITE,
                                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq((void *)longest_sync, MAP_FAILED);
    for (int cycle = 0; cycle < cycles; cycle++) {
        int p[2];
        cr_assert_eq(pipe(p), 0);
        uint64_t cut_at = 1 + (uint64_t)(rand() % 3000);
        *longest_sync = 0;
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            close(p[0]);
            child(dir, mode, cut_at, from, p[1], longest_sync);
        }
        close(p[1]);
        msg_t msg;
        int64_t acked_ns[THREADS][KEYS];
        int64_t acked_op[THREADS][KEYS];
        for (unsigned t = 0; t < THREADS; t++)
            for (int k = 0; k < KEYS; k++)
                acked_op[t][k] = -1;
        while (read(p[0], &msg, sizeof msg) == sizeof msg) {
            cr_assert_lt(msg.thread, THREADS);
            if (!msg.acked) {
                m.issued[msg.thread] = (int64_t)msg.op;
                continue;
            }
            acked_op[msg.thread][msg.op % KEYS] = (int64_t)msg.op;
            acked_ns[msg.thread][msg.op % KEYS] = msg.ns;
            writes_acked++;
        }
        int64_t cut_ns = now_ns();
        close(p[0]);
        int status;
        waitpid(pid, &status, 0);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == FAULT_EXIT,
                  "cycle %d: the writer did not end in a power cut (status %d)", cycle, status);
        ops_total += cut_at;
        if (*longest_sync > slowest_sync)
            slowest_sync = *longest_sync;
        int64_t grace = grace_ns ? grace_ns + 8 * *longest_sync : 0;
        /* What must have survived: acknowledged (under interval, long
         * enough before the cut). */
        for (unsigned t = 0; t < THREADS; t++)
            for (int k = 0; k < KEYS; k++)
                if (acked_op[t][k] > m.acked[t][k]
                    && (grace == 0 || cut_ns - acked_ns[t][k] > grace)) {
                    m.acked[t][k] = acked_op[t][k];
                    m.acked_ns[t][k] = acked_ns[t][k];
                }

        apr_pool_t *cp;
        apr_pool_create(&cp, pool);
        kv_options_t o = tu_opts(16384, 0);
        kv_db_t *db;
        apr_status_t rv = kv_db_open(&db, dir, &o, cp);
        cr_assert_eq(rv, APR_SUCCESS, "cycle %d (cut at op %llu): reopen failed: %d",
                     cycle, (unsigned long long)cut_at, rv);
        for (unsigned t = 0; t < THREADS; t++) {
            for (int k = 0; k < KEYS; k++) {
                char key[32], want[80];
                key_of(key, sizeof key, t, (uint64_t)k);
                kv_value_t v;
                rv = kv_get(db, key, strlen(key), cp, &v);
                int64_t lo = m.acked[t][k], hi = m.issued[t];
                /* Under interval, a younger acknowledged op may be lost:
                 * measure how young. */
                if (acked_op[t][k] > lo) {
                    int lost = 1;
                    if (rv == APR_SUCCESS) {
                        unsigned long ver = strtoul(v.data + 1, NULL, 10);
                        lost = (int64_t)ver < acked_op[t][k];
                    }
                    if (lost && cut_ns - acked_ns[t][k] > worst_loss)
                        worst_loss = cut_ns - acked_ns[t][k];
                }
                if (rv == KV_NOTFOUND) {
                    /* Absent: fine if nothing was ever due, or a delete
                     * in [lo, hi] may have been the last to land. */
                    int ok = lo < 0;   /* never acknowledged: may never have landed */
                    for (int64_t j = lo; !ok && j <= hi; j++)
                        if (j % KEYS == k && is_delete((uint64_t)j))
                            ok = 1;
                    cr_assert(ok, "cycle %d (cut at op %llu): key %s lost (acked op %lld)",
                              cycle, (unsigned long long)cut_at, key, (long long)lo);
                    continue;
                }
                cr_assert_eq(rv, APR_SUCCESS, "cycle %d key %s: read failed", cycle, key);
                cr_assert(v.len > 1 && v.data[0] == 'v', "cycle %d key %s: garbage", cycle, key);
                unsigned long ver = strtoul(v.data + 1, NULL, 10);
                size_t wn = tu_val(want, sizeof want, key, ver);
                cr_assert(v.len == wn && memcmp(v.data, want, wn) == 0,
                          "cycle %d key %s: value never written: %.*s", cycle, key, (int)v.len, v.data);
                cr_assert((int64_t)ver % KEYS == k && !is_delete(ver) && (int64_t)ver <= hi,
                          "cycle %d key %s: version %lu was never issued", cycle, key, ver);
                cr_assert((int64_t)ver >= lo,
                          "cycle %d (cut at op %llu) key %s: acked op %lld lost, found %lu",
                          cycle, (unsigned long long)cut_at, key, (long long)lo, ver);
                /* It survived a power cut: from now on it must stay. */
                m.acked[t][k] = (int64_t)ver;
            }
        }
        kv_db_close(db);
        apr_pool_destroy(cp);
        char cmd[512];
        snprintf(cmd, sizeof cmd, "%s %s > /dev/null 2>&1", KVLSM_CHECK, dir);
        cr_assert_eq(system(cmd), 0, "cycle %d: kvlsm-check found damage in %s", cycle, dir);
        for (unsigned t = 0; t < THREADS; t++)
            from[t] = (uint64_t)(m.issued[t] + 1);
    }
    cr_log_info("power loss (%s): %d cuts, %llu file operations, %llu writes acknowledged, "
                "longest loss window %lld ms, slowest fdatasync %lld ms",
                mode == KV_SYNC_ALWAYS ? "always" : "interval",
                cycles, (unsigned long long)ops_total, (unsigned long long)writes_acked,
                (long long)(worst_loss / 1000000), (long long)(slowest_sync / 1000000));
    munmap((void *)longest_sync, sizeof(int64_t));
    apr_pool_destroy(pool);
    tu_rmrf(dir);
    free(dir);
    return worst_loss;
}

static int cycles_wanted(void)
{
    const char *e = getenv("KVLSM_POWER_CYCLES");
    return e ? atoi(e) : 40;
}

/* Every acknowledged write is checked inside power_cycles. */
Test(powerloss, sync_always_loses_no_acknowledged_write, .timeout = 600)
{
    power_cycles(KV_SYNC_ALWAYS, cycles_wanted(), 0);
}

/* 100 ms interval: a write acknowledged more than 2 s (plus 8 of the
 * slowest fdatasync seen, power_cycles) before the cut must be there (the
 * slack absorbs a loaded machine's scheduling delays); the window
 * actually seen is logged.  That the interval sync is not held back by
 * background work is interval/sync_is_not_held_back_by_a_flush_in_progress. */
Test(powerloss, sync_interval_loss_is_bounded, .timeout = 600)
{
    power_cycles(KV_SYNC_INTERVAL, cycles_wanted(), 2000000000LL);
}
