/* test_snapshot.c -- online snapshots (kv_snapshot_open): taken while
 * forked processes write (tiny memtables: a flush every few dozen writes,
 * compactions throughout, and in one test a process doing nothing but
 * flush and compact), each snapshot's files written into an empty
 * directory as an untarred archive would be, then checked by kvlsm-check
 * and opened with kv_db_open.  The model: writer p's op i writes key
 * j = i % K at version i / K + 1 (a put, or every fifth version a delete;
 * keys of the first half as a pair in one batch), so any state of a key
 * names the op that produced it.  Every op acknowledged before the
 * snapshot call must be in it, none begun after it returned may be, and
 * each key must hold what one op between those produced, a pair both
 * halves of the same op.  Also: writes after the call are not in it, the
 * links outlive a flush, a killed snapshot's directory is removed by the
 * next open and a live one by nobody, a missing file is damage. */
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <valgrind/valgrind.h>
#include "snaputil.h"

#define NW 3            /* writer processes, at most */
#define K 120           /* keys per writer; j < K/2 are written as pairs */
#define MAX_SNAPS 40
#define WAIT_SECONDS 120

typedef struct {
    unsigned long acked[NW];     /* ops acknowledged: 0 .. acked-1 returned success */
    unsigned long started[NW];   /* ops begun: none from `started` on was called */
    int ready;
    int stop;                    /* the compactor stops */
    unsigned long compactions;   /* flush + compact rounds the compactor ran */
} board_t;

typedef struct {
    char *dir;                   /* the restored copy */
    unsigned long acked[NW], started[NW];
    int attempts, nfiles;
    apr_uint64_t bytes;
    double ms;                   /* kv_snapshot_open's time */
} taken_t;

static board_t *board;
static unsigned long ops;        /* per writer */

static int is_delete(unsigned long ver)
{
    return ver % 5 == 0;
}

static int is_pair(unsigned long j)
{
    return j < K / 2;
}

static void key_of(char *buf, size_t cap, char kind, int p, unsigned long j)
{
    snprintf(buf, cap, "%c%d-%04lu", kind, p, j);
}

static size_t value_of(char *buf, size_t cap, int p, unsigned long j, unsigned long ver)
{
    int h = snprintf(buf, cap, "w%d-%04lu:v%lu:", p, j, ver);
    size_t n = 24 + (j * 53 + ver * 31) % 400;
    for (size_t k = (size_t)h; k < n && k < cap; k++)
        buf[k] = (char)('a' + (k + ver) % 26);
    return n > (size_t)h ? n : (size_t)h;
}

/* Writer p's op i. */
static apr_status_t write_op(kv_db_t *db, int p, unsigned long i, apr_pool_t *pool)
{
    unsigned long j = i % K, ver = i / K + 1;
    char k[32], m[32], v[512];
    key_of(k, sizeof k, 'w', p, j);
    key_of(m, sizeof m, 'm', p, j);
    size_t n = value_of(v, sizeof v, p, j, ver);
    if (is_pair(j)) {
        kv_batch_t *b;
        apr_status_t rv = kv_batch_create(&b, pool);
        if (rv)
            return rv;
        if (is_delete(ver)) {
            kv_batch_delete(b, k, strlen(k));
            kv_batch_delete(b, m, strlen(m));
        }
        else {
            kv_batch_put(b, k, strlen(k), v, n, 0);
            kv_batch_put(b, m, strlen(m), v, n, 0);
        }
        return kv_write_batch(db, b, NULL);
    }
    if (is_delete(ver)) {
        kv_write_opts_t o = { .cond = KV_BLIND };
        return kv_delete(db, k, strlen(k), &o, pool, NULL);
    }
    return kv_put(db, k, strlen(k), v, n, NULL, NULL);
}

static int deadline_passed(time_t start)
{
    return time(NULL) - start > WAIT_SECONDS;
}

static void wait_ready(int n)
{
    time_t t0 = time(NULL);
    while (__atomic_load_n(&board->ready, __ATOMIC_ACQUIRE) < n && !deadline_passed(t0))
        sched_yield();
}

/* In a forked process: open the store (16 KiB memtable, the background
 * thread if asked), say so on the board and wait until all nproc have.
 * A failed open exits 3. */
static kv_db_t *open_ready(const char *dir, int background, int nproc, apr_pool_t **pool)
{
    *pool = tu_pool();
    kv_options_t o = tu_opts(16384, background);
    kv_db_t *db;
    if (kv_db_open(&db, dir, &o, *pool) != APR_SUCCESS)
        _exit(3);
    __atomic_fetch_add(&board->ready, 1, __ATOMIC_ACQ_REL);
    wait_ready(nproc);
    return db;
}

static void writer(const char *dir, int p, int nproc)
{
    apr_pool_t *pool;
    kv_db_t *db = open_ready(dir, 1, nproc, &pool);
    for (unsigned long i = 0; i < ops; i++) {
        apr_pool_t *p2;
        apr_pool_create(&p2, pool);
        __atomic_store_n(&board->started[p], i + 1, __ATOMIC_RELEASE);
        apr_status_t rv = write_op(db, p, i, p2);
        apr_pool_destroy(p2);
        if (rv != APR_SUCCESS) {
            fprintf(stderr, "writer %d: op %lu: %d\n", p, i, rv);
            _exit(4);
        }
        __atomic_store_n(&board->acked[p], i + 1, __ATOMIC_RELEASE);
    }
    kv_db_close(db);
    _exit(0);
}

/* Flushes and compacts, over and over, until told to stop. */
static void compactor(const char *dir, int nproc)
{
    apr_pool_t *pool;
    kv_db_t *db = open_ready(dir, 0, nproc, &pool);
    time_t t0 = time(NULL);
    for (unsigned long n = 0; n < 100000 && !deadline_passed(t0)
         && !__atomic_load_n(&board->stop, __ATOMIC_ACQUIRE); n++) {
        if (kv_db_flush(db) != APR_SUCCESS || kv_db_compact(db) != APR_SUCCESS)
            _exit(5);
        __atomic_fetch_add(&board->compactions, 1, __ATOMIC_RELAXED);
    }
    kv_db_close(db);
    _exit(0);
}

/* Take a snapshot through db and write it out to a new directory. */
static void take(kv_db_t *db, apr_pool_t *pool, int nw, taken_t *t)
{
    for (int p = 0; p < nw; p++)
        t->acked[p] = __atomic_load_n(&board->acked[p], __ATOMIC_ACQUIRE);
    apr_pool_t *sp;
    apr_pool_create(&sp, pool);
    kv_snapshot_t *s;
    apr_time_t t0 = apr_time_now();
    apr_status_t rv = kv_snapshot_open(&s, db, sp);
    t->ms = (double)(apr_time_now() - t0) / 1000.0;
    for (int p = 0; p < nw; p++)
        t->started[p] = __atomic_load_n(&board->started[p], __ATOMIC_ACQUIRE);
    cr_assert_eq(rv, APR_SUCCESS, "kv_snapshot_open: %d", rv);
    const kv_snapshot_info_t *info = kv_snapshot_info(s);
    t->attempts = info->attempts;
    t->nfiles = info->nfiles;
    t->bytes = info->bytes;
    t->dir = tu_tmpdir();
    su_restore(s, t->dir);
    cr_assert_eq(kv_snapshot_close(s), APR_SUCCESS);
    apr_pool_destroy(sp);
}

/* The last op index < limit on key j (-1: none). */
static long last_op(unsigned long limit, unsigned long j)
{
    if (limit <= j)
        return -1;
    return (long)(j + K * ((limit - 1 - j) / K));
}

/* One key of writer p in the restored store: *ver its version, 0 absent. */
static void read_key(kv_db_t *db, apr_pool_t *pool, char kind, int p, unsigned long j,
                     unsigned long *ver)
{
    char k[32], want[512];
    key_of(k, sizeof k, kind, p, j);
    kv_value_t v;
    apr_status_t rv = kv_get(db, k, strlen(k), pool, &v);
    *ver = 0;
    if (rv == KV_NOTFOUND)
        return;
    cr_assert_eq(rv, APR_SUCCESS, "get %s: %d", k, rv);
    int vp;
    unsigned long vj;
    cr_assert_eq(sscanf(v.data, "w%d-%lu:v%lu:", &vp, &vj, ver), 3, "%s: a value no write produced", k);
    size_t n = value_of(want, sizeof want, p, j, *ver);
    cr_assert(vp == p && vj == j && v.len == n && memcmp(v.data, want, n) == 0,
              "%s: a value no write produced (v%lu)", k, *ver);
}

static void verify(const taken_t *t, int nw, apr_pool_t *pool)
{
    cr_assert_eq(su_check(t->dir), 0, "kvlsm-check finds the restored snapshot %s damaged", t->dir);
    apr_pool_t *vp;
    apr_pool_create(&vp, pool);
    kv_options_t o = tu_opts(1 << 20, 0);
    kv_db_t *db;
    cr_assert_eq(kv_db_open(&db, t->dir, &o, vp), APR_SUCCESS);
    unsigned long expect_keys = 0;
    for (int p = 0; p < nw; p++) {
        for (unsigned long j = 0; j < K; j++) {
            long lo = last_op(t->acked[p], j), hi = last_op(t->started[p], j);
            unsigned long ver, mver;
            read_key(db, vp, 'w', p, j, &ver);
            if (ver) {
                long i = (long)((ver - 1) * K + j);
                cr_assert(!is_delete(ver), "w%d-%04lu: v%lu was a delete", p, j, ver);
                cr_assert_geq(i, lo, "w%d-%04lu: v%lu, but op %ld was acknowledged before the snapshot",
                              p, j, ver, lo);
                cr_assert_leq(i, hi, "w%d-%04lu: v%lu, begun after the snapshot returned", p, j, ver);
                expect_keys++;
            }
            else if (lo >= 0) {
                int deleted = 0;
                for (long i = lo; i <= hi && !deleted; i += K)
                    deleted = is_delete((unsigned long)i / K + 1);
                cr_assert(deleted, "w%d-%04lu: missing, but op %ld (a put) was acknowledged "
                          "before the snapshot and no delete followed it in time", p, j, lo);
            }
            if (is_pair(j)) {
                read_key(db, vp, 'm', p, j, &mver);
                cr_assert_eq(mver, ver, "pair %d-%04lu: halves of different batches (v%lu, v%lu)",
                             p, j, ver, mver);
                expect_keys += ver != 0;
            }
        }
    }
    /* Nothing else in it. */
    kv_iter_t *it;
    unsigned long n = 0;
    cr_assert_eq(kv_iter_open(&it, db, vp), APR_SUCCESS);
    cr_assert_eq(kv_iter_seek(it, NULL, 0), APR_SUCCESS);
    for (; kv_iter_valid(it) && n <= expect_keys; kv_iter_next(it))
        n++;
    cr_assert_eq(kv_iter_status(it), APR_SUCCESS);
    cr_assert_eq(n, expect_keys, "restored store holds %lu keys, the model %lu", n, expect_keys);
    kv_iter_close(it);
    kv_db_close(db);
    apr_pool_destroy(vp);
}

/* Static, so forked processes that _exit (or die) holding it still reach
 * it under valgrind's leak check. */
static char *dir_kept;

/* nw writers (and a compactor if asked) on one directory while this
 * process, with its own handle, takes nsnap snapshots spread over the
 * writers' progress. */
static void run(int nw, int with_compactor, int nsnap)
{
    ops = RUNNING_ON_VALGRIND ? 400 : 3000;
    dir_kept = tu_tmpdir();
    apr_pool_t *pool = tu_pool();
    board = mmap(NULL, sizeof *board, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(board, MAP_FAILED);
    memset(board, 0, sizeof *board);
    int nproc = nw + with_compactor;
    pid_t pids[NW + 1];
    /* Fork before this process has threads of its own (its handle's
     * background thread): a child gets only the forking thread, and
     * whatever locks the others held at that instant stay held. */
    for (int i = 0; i < nproc; i++) {
        pids[i] = fork();
        cr_assert_geq(pids[i], 0);
        if (pids[i] == 0) {
            if (i < nw)
                writer(dir_kept, i, nproc);
            compactor(dir_kept, nproc);
        }
    }
    kv_options_t o = tu_opts(16384, 1);
    kv_db_t *db;
    cr_assert_eq(kv_db_open(&db, dir_kept, &o, pool), APR_SUCCESS);
    static taken_t taken[MAX_SNAPS];
    int nt = 0;
    time_t t0 = time(NULL);
    for (int s = 0; s < nsnap && s < MAX_SNAPS; s++) {
        /* Spread over the run: wait until every writer is this far. */
        unsigned long goal = ops * (unsigned long)(s + 1) / (unsigned long)(nsnap + 1);
        int behind = 1;
        while (behind && !deadline_passed(t0)) {
            behind = 0;
            for (int p = 0; p < nw; p++)
                behind |= __atomic_load_n(&board->acked[p], __ATOMIC_ACQUIRE) < goal;
            if (behind)
                sched_yield();
        }
        cr_assert(!behind, "writers made no progress in %d s", WAIT_SECONDS);
        take(db, pool, nw, &taken[nt++]);
    }
    __atomic_store_n(&board->stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < nproc; i++) {
        int st;
        cr_assert_eq(waitpid(pids[i], &st, 0), pids[i]);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "process %d failed: status %d", i, st);
    }
    int attempts = 0;
    double ms = 0;
    for (int i = 0; i < nt; i++) {
        verify(&taken[i], nw, pool);
        attempts += taken[i].attempts;
        if (taken[i].ms > ms)
            ms = taken[i].ms;
        cr_log_info("snapshot %d: %d files, %llu bytes, %d attempt(s), %.2f ms; acked by writer 0: %lu",
                    i, taken[i].nfiles, (unsigned long long)taken[i].bytes, taken[i].attempts,
                    taken[i].ms, taken[i].acked[0]);
        tu_rmrf(taken[i].dir);
        free(taken[i].dir);
    }
    cr_log_info("%d snapshots, %d attempts in all (retries: %d), slowest %.2f ms, compactor rounds %lu",
                nt, attempts, attempts - nt, ms, board->compactions);
    cr_assert_geq(nt, 2);
    cr_assert_eq(su_private_dirs(dir_kept), 0, "a closed snapshot left its directory");
    cr_assert_eq(kv_db_close(db), APR_SUCCESS);
    cr_assert_eq(su_check(dir_kept), 0);
    munmap(board, sizeof *board);
    apr_pool_destroy(pool);
    tu_rmrf(dir_kept);
    free(dir_kept);
}

Test(snapshot, holds_every_write_acknowledged_before_it_across_processes, .timeout = 300)
{
    run(NW, 0, 5);
}

Test(snapshot, taken_again_and_again_while_another_process_compacts, .timeout = 300)
{
    run(2, 1, 30);
}

/* The snapshot is the published end at the call: a write after it is not
 * in it, though it lands in the very log file the snapshot links; and the
 * links keep the files after a flush and a compaction removed them. */
Test(snapshot, is_the_point_of_the_call_and_outlives_flush_and_compaction, .timeout = 60)
{
    su_store_t t;
    su_open(&t, 1);
    kv_db_t *db = t.db;
    apr_pool_t *pool = t.pool;
    for (int f = 0; f < 4; f++) {
        char k[16];
        snprintf(k, sizeof k, "old%d", f);
        cr_assert_eq(kv_put(db, k, strlen(k), TU_STR("flushed"), NULL, NULL), APR_SUCCESS);
        cr_assert_eq(kv_db_flush(db), APR_SUCCESS);
    }
    cr_assert_eq(kv_put(db, TU_STR("a"), TU_STR("1"), NULL, NULL), APR_SUCCESS);
    apr_pool_t *sp;
    apr_pool_create(&sp, pool);
    kv_snapshot_t *s;
    cr_assert_eq(kv_snapshot_open(&s, db, sp), APR_SUCCESS);
    const kv_snapshot_info_t *info = kv_snapshot_info(s);
    cr_assert_eq(info->attempts, 1);
    cr_assert_eq(info->nfiles, 6, "MANIFEST, 4 SSTs, the active log");
    cr_assert_eq(su_private_dirs(t.dir), 1);
    cr_assert_eq(kv_put(db, TU_STR("b"), TU_STR("2"), NULL, NULL), APR_SUCCESS);
    cr_assert_eq(kv_put(db, TU_STR("a"), TU_STR("3"), NULL, NULL), APR_SUCCESS);
    /* The log grew past the snapshot's bytes, then went, with the SSTs. */
    const kv_snapshot_file_t *log = &info->files[info->nfiles - 1];
    struct stat st;
    cr_assert_eq(stat(log->path, &st), 0);
    cr_assert_gt((apr_uint64_t)st.st_size, log->bytes);
    cr_assert_eq(kv_db_flush(db), APR_SUCCESS);
    cr_assert_eq(kv_db_compact(db), APR_SUCCESS);
    for (int i = 0; i < info->nfiles; i++) {
        char live[4200];
        snprintf(live, sizeof live, "%s/%s", t.dir, info->files[i].name);
        if (i > 0)
            cr_assert_neq(access(live, F_OK), 0, "%s is still in the store", info->files[i].name);
    }
    su_restore(s, t.out);
    apr_pool_destroy(sp);   /* the pool's cleanup closes the snapshot */
    cr_assert_eq(su_private_dirs(t.dir), 0);
    cr_assert_eq(su_check(t.out), 0);
    kv_db_t *r;
    cr_assert_eq(kv_db_open(&r, t.out, &t.o, pool), APR_SUCCESS);
    kv_value_t v;
    cr_assert_eq(kv_get(r, TU_STR("a"), pool, &v), APR_SUCCESS);
    cr_assert_str_eq(v.data, "1");
    cr_assert_eq(kv_get(r, TU_STR("b"), pool, &v), KV_NOTFOUND);
    cr_assert_eq(kv_get(r, TU_STR("old3"), pool, &v), APR_SUCCESS);
    /* The restored store is a store: it takes writes and keeps them. */
    cr_assert_eq(kv_put(r, TU_STR("c"), TU_STR("4"), NULL, NULL), APR_SUCCESS);
    cr_assert_eq(kv_db_flush(r), APR_SUCCESS);
    kv_db_close(r);
    cr_assert_eq(kv_db_open(&r, t.out, &t.o, pool), APR_SUCCESS);
    cr_assert_eq(kv_get(r, TU_STR("c"), pool, &v), APR_SUCCESS);
    kv_db_close(r);
    su_close(&t);
}

Test(snapshot, of_an_empty_store_is_an_empty_store, .timeout = 30)
{
    su_store_t t;
    su_open(&t, 1);
    kv_db_t *db = t.db;
    apr_pool_t *pool = t.pool;
    kv_snapshot_t *s;
    cr_assert_eq(kv_snapshot_open(&s, db, pool), APR_SUCCESS);
    const kv_snapshot_info_t *info = kv_snapshot_info(s);
    cr_assert_eq(info->nfiles, 2);
    cr_assert_str_eq(info->files[1].name, "000001.log");
    cr_assert_eq(info->files[1].bytes, 0);
    su_restore(s, t.out);
    cr_assert_eq(kv_snapshot_close(s), APR_SUCCESS);
    cr_assert_eq(kv_snapshot_close(s), APR_SUCCESS, "close is idempotent");
    cr_assert_eq(su_check(t.out), 0);
    kv_db_t *r;
    cr_assert_eq(kv_db_open(&r, t.out, &t.o, pool), APR_SUCCESS);
    kv_iter_t *it;
    cr_assert_eq(kv_iter_open(&it, r, pool), APR_SUCCESS);
    cr_assert_eq(kv_iter_seek(it, NULL, 0), APR_SUCCESS);
    cr_assert_not(kv_iter_valid(it));
    kv_iter_close(it);
    kv_db_close(r);
    kv_db_close(db);
    cr_assert_eq(kv_snapshot_open(&s, db, pool), KV_CLOSED);
    t.db = NULL;   /* closed above */
    su_close(&t);
}

/* A process killed while its snapshot is open leaves the private
 * directory (and the files it links) behind; the next open removes it. */
Test(snapshot, killed_with_its_process_is_removed_by_the_next_open, .timeout = 60)
{
    char *dir = dir_kept = tu_tmpdir();
    apr_pool_t *pool = tu_pool();
    pid_t q = fork();
    cr_assert_geq(q, 0);
    if (q == 0) {
        apr_pool_t *p = tu_pool();
        kv_options_t o = tu_opts(1 << 20, 0);
        kv_db_t *db;
        kv_snapshot_t *s;
        if (kv_db_open(&db, dir, &o, p) != APR_SUCCESS
            || kv_put(db, TU_STR("k"), TU_STR("v"), NULL, NULL) != APR_SUCCESS
            || kv_db_flush(db) != APR_SUCCESS
            || kv_snapshot_open(&s, db, p) != APR_SUCCESS)
            _exit(3);
        kill(getpid(), SIGKILL);
        _exit(4);
    }
    int st;
    cr_assert_eq(waitpid(q, &st, 0), q);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "child status %d", st);
    cr_assert_eq(su_private_dirs(dir), 1, "the killed snapshot left its directory");
    kv_options_t o = tu_opts(1 << 20, 0);
    kv_db_t *db;
    cr_assert_eq(kv_db_open(&db, dir, &o, pool), APR_SUCCESS);
    cr_assert_eq(su_private_dirs(dir), 0, "the next open did not remove it");
    kv_value_t v;
    cr_assert_eq(kv_get(db, TU_STR("k"), pool, &v), APR_SUCCESS);
    kv_db_close(db);
    cr_assert_eq(su_check(dir), 0);
    apr_pool_destroy(pool);
    tu_rmrf(dir);
    free(dir);
}

/* Another process's open, orphan sweep (its first flush) and snapshot
 * all leave a live snapshot's directory alone. */
Test(snapshot, live_is_never_swept_by_another_process, .timeout = 60)
{
    su_store_t t;
    su_open(&t, 1);
    const char *dir = dir_kept = t.dir;
    kv_db_t *db = t.db;
    apr_pool_t *pool = t.pool;
    cr_assert_eq(kv_put(db, TU_STR("k"), TU_STR("v"), NULL, NULL), APR_SUCCESS);
    cr_assert_eq(kv_db_flush(db), APR_SUCCESS);
    cr_assert_eq(kv_put(db, TU_STR("k2"), TU_STR("v2"), NULL, NULL), APR_SUCCESS);
    kv_snapshot_t *s;
    cr_assert_eq(kv_snapshot_open(&s, db, pool), APR_SUCCESS);
    pid_t q = fork();
    cr_assert_geq(q, 0);
    if (q == 0) {
        apr_pool_t *p = tu_pool();
        kv_db_t *d;
        kv_snapshot_t *s2;
        if (kv_db_open(&d, dir, &t.o, p) != APR_SUCCESS
            || kv_put(d, TU_STR("k3"), TU_STR("v3"), NULL, NULL) != APR_SUCCESS
            || kv_db_flush(d) != APR_SUCCESS
            || kv_snapshot_open(&s2, d, p) != APR_SUCCESS
            || su_private_dirs(dir) != 2
            || kv_snapshot_close(s2) != APR_SUCCESS)
            _exit(3);
        kv_db_close(d);
        _exit(0);
    }
    int st;
    cr_assert_eq(waitpid(q, &st, 0), q);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
    cr_assert_eq(su_private_dirs(dir), 1, "another process removed a live snapshot's directory");
    su_restore(s, t.out);
    cr_assert_eq(kv_snapshot_close(s), APR_SUCCESS);
    cr_assert_eq(su_private_dirs(dir), 0);
    cr_assert_eq(su_check(t.out), 0);
    kv_db_t *r;
    cr_assert_eq(kv_db_open(&r, t.out, &t.o, pool), APR_SUCCESS);
    kv_value_t v;
    cr_assert_eq(kv_get(r, TU_STR("k"), pool, &v), APR_SUCCESS);
    cr_assert_eq(kv_get(r, TU_STR("k2"), pool, &v), APR_SUCCESS);
    cr_assert_eq(kv_get(r, TU_STR("k3"), pool, &v), KV_NOTFOUND);
    kv_db_close(r);
    su_close(&t);
}

/* A listed file missing while the manifest that lists it is still the
 * store's is damage, reported at once rather than retried. */
Test(snapshot, a_missing_listed_file_is_damage_not_a_retry, .timeout = 30)
{
    su_store_t t;
    su_open(&t, 0);
    kv_db_t *db = t.db;
    apr_pool_t *pool = t.pool;
    cr_assert_eq(kv_put(db, TU_STR("k"), TU_STR("v"), NULL, NULL), APR_SUCCESS);
    cr_assert_eq(kv_db_flush(db), APR_SUCCESS);
    char sst[4200];
    snprintf(sst, sizeof sst, "%s/000001.sst", t.dir);
    cr_assert_eq(unlink(sst), 0);
    kv_snapshot_t *s;
    cr_assert_eq(kv_snapshot_open(&s, db, pool), KV_CORRUPT);
    cr_assert_null(s);
    cr_assert_eq(su_private_dirs(t.dir), 0, "a failed snapshot left its directory");
    su_close(&t);
}
