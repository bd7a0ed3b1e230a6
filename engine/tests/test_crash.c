/* test_crash.c -- a forked writer is SIGKILLed at random moments, over
 * and over (mid-write, mid-flush, mid-compaction); after each kill the
 * store reopens with every acknowledged write present and nothing
 * corrupted.  The writer acknowledges each put through a pipe only after
 * kv_put returned. */
#include <signal.h>
#include <sys/wait.h>
#include "testutil.h"

#define CKEYS 300
#define CYCLES 12

static void child_writer(const char *dir, unsigned long from, int fd)
{
    apr_pool_t *pool = tu_pool();
    kv_options_t o = tu_opts(8192, 1);
    kv_db_t *db;
    if (kv_db_open(&db, dir, &o, pool) != APR_SUCCESS)
        _exit(3);
    for (unsigned long op = from; op < from + 1000000; op++) {
        char k[32], v[64];
        tu_key(k, sizeof k, "c", op % CKEYS);
        size_t n = tu_val(v, sizeof v, k, op);
        if (kv_put(db, k, strlen(k), v, n, NULL, NULL) != APR_SUCCESS)
            _exit(4);
        if (write(fd, &op, sizeof op) != sizeof op)
            _exit(5);
    }
    _exit(0);
}

Test(crash, kill9_loses_no_acknowledged_write, .timeout = 120)
{
    char *dir = tu_tmpdir();
    apr_pool_t *pool = tu_pool();
    long acked[CKEYS], maybe[CKEYS];   /* op numbers, -1 = none */
    for (int k = 0; k < CKEYS; k++)
        acked[k] = maybe[k] = -1;
    unsigned long next = 0;
    unsigned seed = (unsigned)time(NULL);
    cr_log_info("crash seed %u", seed);
    srand(seed);
    for (int cycle = 0; cycle < CYCLES; cycle++) {
        int p[2];
        cr_assert_eq(pipe(p), 0);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            close(p[0]);
            child_writer(dir, next, p[1]);
        }
        close(p[1]);
        /* Kill after a random number of acknowledgements. */
        unsigned long target = 100 + (unsigned long)(rand() % 4000), got = 0, op, last = next;
        int killed = 0;
        while (read(p[0], &op, sizeof op) == sizeof op) {
            acked[op % CKEYS] = (long)op;
            last = op;
            got++;
            if (!killed && got >= target) {
                kill(pid, SIGKILL);
                killed = 1;
            }
        }
        close(p[0]);
        int status;
        waitpid(pid, &status, 0);
        cr_assert(WIFSIGNALED(status), "writer exited on its own: %d", WEXITSTATUS(status));
        cr_assert_gt(got, 0);
        /* The op after the last acknowledged one may or may not be there. */
        maybe[(last + 1) % CKEYS] = (long)(last + 1);
        kv_db_t *db;
        apr_pool_t *cp;
        apr_pool_create(&cp, pool);
        kv_options_t o = tu_opts(8192, 0);
        cr_assert_eq(kv_db_open(&db, dir, &o, cp), APR_SUCCESS, "cycle %d: reopen", cycle);
        for (int k = 0; k < CKEYS; k++) {
            char key[32], want[64], alt[64];
            tu_key(key, sizeof key, "c", (unsigned long)k);
            kv_value_t v;
            apr_status_t rv = kv_get(db, key, strlen(key), cp, &v);
            int alt_ok = maybe[k] > acked[k];
            size_t an = alt_ok ? tu_val(alt, sizeof alt, key, (unsigned long)maybe[k]) : 0;
            if (acked[k] < 0) {
                cr_assert(rv == KV_NOTFOUND || (alt_ok && rv == APR_SUCCESS && v.len == an
                                                 && memcmp(v.data, alt, an) == 0),
                          "cycle %d key %s: unexpected state", cycle, key);
                continue;
            }
            size_t wn = tu_val(want, sizeof want, key, (unsigned long)acked[k]);
            cr_assert_eq(rv, APR_SUCCESS, "cycle %d key %s missing (acked op %ld)", cycle, key, acked[k]);
            int ok = (v.len == wn && memcmp(v.data, want, wn) == 0)
                  || (alt_ok && v.len == an && memcmp(v.data, alt, an) == 0);
            cr_assert(ok, "cycle %d key %s: got %.*s want %s", cycle, key, (int)v.len, v.data, want);
            if (alt_ok && v.len == an && memcmp(v.data, alt, an) == 0)
                acked[k] = maybe[k];   /* it landed: now it is the state */
        }
        kv_db_close(db);
        apr_pool_destroy(cp);
        next = last + 2;
    }
    apr_pool_destroy(pool);
    tu_rmrf(dir);
    free(dir);
}
