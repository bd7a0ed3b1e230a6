/* test_stats.c -- the store-wide counters (stats.h, the file STATS):
 * processes sharing a directory count into one total, which survives a
 * killed process and every process closing, and starts again from 0 only
 * after a reboot (the boot id STATS records differs); a directory whose SHM a build without STATS made (a
 * version-2 mapping written here by hand, byte by byte) gets counters and
 * stays as that build needs it; a STATS file of an older layout (fewer
 * slots) grows, one of a newer layout (a longer header, more slots, other
 * geometry) is used as it is and nothing this build does not know is
 * touched; one this build must not use is left alone and the handle
 * counts for itself.  Files of other layouts are written by hand from
 * docs/FORMAT.md, not with this build's code. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "testutil.h"
#include "shm.h"
#include "stats.h"

static kv_db_t *open_db(const char *dir, apr_pool_t *pool)
{
    kv_db_t *db = tu_open_mode(dir, pool, KV_SYNC_OFF);
    cr_assert_not_null(db, "open %s", dir);
    return db;
}

static kv_stats_t stats_of(kv_db_t *db)
{
    kv_stats_t st;
    cr_assert_eq(kv_db_stats(db, &st), APR_SUCCESS);
    return st;
}

static void path_in(char *buf, size_t n, const char *dir, const char *name)
{
    snprintf(buf, n, "%s/%s", dir, name);
}

/* What another process using the directory holds: a shared flock on the
 * file (every user of SHM and of STATS holds one). */
static int hold(const char *dir, const char *name)
{
    char p[4096];
    path_in(p, sizeof p, dir, name);
    int fd = open(p, O_RDWR | O_CREAT, 0644);
    cr_assert_geq(fd, 0);
    cr_assert_eq(flock(fd, LOCK_SH), 0);
    return fd;
}

static void put_n(kv_db_t *db, const char *prefix, int n)
{
    for (int i = 0; i < n; i++) {
        char k[32];
        tu_key(k, sizeof k, prefix, (unsigned long)i);
        cr_assert_eq(kv_put(db, k, strlen(k), TU_STR("0123456789"), NULL, NULL), APR_SUCCESS);
    }
}

static void get_n(kv_db_t *db, const char *prefix, int n, apr_pool_t *pool)
{
    for (int i = 0; i < n; i++) {
        char k[32];
        kv_value_t v;
        tu_key(k, sizeof k, prefix, (unsigned long)i);
        cr_assert_eq(kv_get(db, k, strlen(k), pool, &v), APR_SUCCESS);
    }
}

/* The end of a test's store, once every handle on it is closed: its pool
 * goes, then its directory (a tu_tmpdir). */
static void drop_store(char *dir, apr_pool_t *pool)
{
    apr_pool_destroy(pool);
    tu_rmrf(dir);
    free(dir);
}

/* ---- several processes, one total ---------------------------------- */

#define NCHILD 2
#define OPS 400

typedef struct {
    int ready, go;
    uint64_t seen_sets, seen_gets;   /* a third process's reading */
} board_t;

static board_t *board;
static char *dir_kept;   /* static: the forked children _exit holding it */

/* Put and get OPS keys of its own, timing each as a request of 1 ms; the
 * last child is killed (SIGKILL) right after, without closing. */
static void counting_child(const char *dir, int me)
{
    apr_pool_t *pool = tu_pool();
    kv_db_t *db = tu_open_mode(dir, pool, KV_SYNC_OFF);
    if (!db)
        _exit(3);
    __atomic_fetch_add(&board->ready, 1, __ATOMIC_ACQ_REL);
    for (int i = 0; i < 100000000 && !__atomic_load_n(&board->go, __ATOMIC_ACQUIRE); i++)
        sched_yield();
    char prefix[16];
    snprintf(prefix, sizeof prefix, "c%d-", me);
    for (int i = 0; i < OPS; i++) {
        char k[32];
        kv_value_t v;
        tu_key(k, sizeof k, prefix, (unsigned long)i);
        if (kv_put(db, k, strlen(k), TU_STR("0123456789"), NULL, NULL) != APR_SUCCESS
            || kv_get(db, k, strlen(k), pool, &v) != APR_SUCCESS)
            _exit(4);
        kv_db_observe_latency(db, 0.001);
        kv_db_observe_latency(db, 0.001);
    }
    if (me == NCHILD - 1)
        raise(SIGKILL);
    kv_db_close(db);
    _exit(0);
}

static void reading_child(const char *dir)
{
    apr_pool_t *pool = tu_pool();
    kv_db_t *db = tu_open_mode(dir, pool, KV_SYNC_OFF);
    kv_stats_t st;
    if (!db || kv_db_stats(db, &st) != APR_SUCCESS)
        _exit(3);
    board->seen_sets = st.sets;
    board->seen_gets = st.gets;
    kv_db_close(db);
    _exit(0);
}

Test(stats, processes_count_into_one_total_that_a_killed_process_keeps, .timeout = 120)
{
    dir_kept = tu_tmpdir();
    apr_pool_t *pool = tu_pool();
    board = mmap(NULL, sizeof *board, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(board, MAP_FAILED);
    memset(board, 0, sizeof *board);
    kv_db_t *db = open_db(dir_kept, pool);
    kv_stats_t st = stats_of(db);
    cr_assert_eq(st.counters_shared, 1, "STATS is in use");
    cr_assert_eq(st.sets + st.gets, 0);

    pid_t pids[NCHILD];
    for (int i = 0; i < NCHILD; i++) {
        pids[i] = fork();
        cr_assert_geq(pids[i], 0);
        if (pids[i] == 0)
            counting_child(dir_kept, i);
    }
    time_t t0 = time(NULL);
    while (__atomic_load_n(&board->ready, __ATOMIC_ACQUIRE) < NCHILD) {
        cr_assert_lt(time(NULL) - t0, 30, "children did not open the store");
        sched_yield();
    }
    __atomic_store_n(&board->go, 1, __ATOMIC_RELEASE);
    /* Meanwhile every reading is at least the one before it. */
    uint64_t last_sets = 0, last_gets = 0, last_count = 0;
    int readings = 0, alive = NCHILD;
    int status[NCHILD];
    while (alive > 0) {
        cr_assert_lt(time(NULL) - t0, 60, "children did not finish");
        st = stats_of(db);
        uint64_t count = 0;
        for (int b = 0; b <= KV_LATENCY_BUCKETS; b++)
            count += st.latency_buckets[b];
        cr_assert_geq(st.sets, last_sets, "sets went back: %lu after %lu",
                      (unsigned long)st.sets, (unsigned long)last_sets);
        cr_assert_geq(st.gets, last_gets);
        cr_assert_geq(count, last_count);
        last_sets = st.sets;
        last_gets = st.gets;
        last_count = count;
        readings++;
        for (int i = 0; i < NCHILD; i++)
            if (pids[i] && waitpid(pids[i], &status[i], WNOHANG) == pids[i]) {
                pids[i] = 0;
                alive--;
            }
    }
    cr_assert(WIFEXITED(status[0]) && WEXITSTATUS(status[0]) == 0, "child 0: status %d", status[0]);
    cr_assert(WIFSIGNALED(status[1]) && WTERMSIG(status[1]) == SIGKILL, "child 1: status %d", status[1]);

    st = stats_of(db);
    cr_assert_eq(st.sets, NCHILD * OPS, "sets: %lu", (unsigned long)st.sets);
    cr_assert_eq(st.gets, NCHILD * OPS);
    cr_assert_eq(st.bytes_read, NCHILD * OPS * 10);
    cr_assert_geq(st.bytes_written, NCHILD * OPS * 10);
    /* 1 ms falls in the bucket whose bound is 0.001 (bounds are inclusive). */
    cr_assert(kv_latency_bound(3) == 0.001);
    cr_assert_eq(st.latency_buckets[3], 2 * NCHILD * OPS);
    cr_assert_eq(st.latency_sum_ns, 2ull * NCHILD * OPS * 1000000);
    cr_log_info("stats: %d readings while the children counted", readings);

    /* Another process reads the same figures. */
    pid_t r = fork();
    cr_assert_geq(r, 0);
    if (r == 0)
        reading_child(dir_kept);
    int rs;
    cr_assert_eq(waitpid(r, &rs, 0), r);
    cr_assert(WIFEXITED(rs) && WEXITSTATUS(rs) == 0);
    cr_assert_eq(board->seen_sets, st.sets);
    cr_assert_eq(board->seen_gets, st.gets);

    kv_db_close(db);
    munmap(board, sizeof *board);
    drop_store(dir_kept, pool);
}

/* Overwrite the boot id STATS records (offset 48, 40 bytes of text). */
static void set_boot_id(const char *dir, const char *id)
{
    char p[4096], buf[40] = { 0 };
    snprintf(p, sizeof p, "%s/STATS", dir);
    strncpy(buf, id, sizeof buf - 1);
    int fd = open(p, O_RDWR);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pwrite(fd, buf, sizeof buf, 48), (ssize_t)sizeof buf);
    close(fd);
}

static void this_boot(char out[40])
{
    memset(out, 0, 40);
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    cr_assert_not_null(f);
    cr_assert_not_null(fgets(out, 40, f));
    fclose(f);
    out[strcspn(out, "\n")] = 0;
}

Test(stats, counters_go_on_across_closes_and_start_from_zero_after_a_reboot)
{
    char *dir = tu_tmpdir();
    apr_pool_t *pool = tu_pool(), *pa, *pb, *pc;
    apr_pool_create(&pa, pool);
    apr_pool_create(&pb, pool);
    apr_pool_create(&pc, pool);
    kv_db_t *a = open_db(dir, pa);
    put_n(a, "r", 3);
    uint64_t since = stats_of(a).counters_since;
    kv_db_t *b = open_db(dir, pb);          /* a still has it open */
    cr_assert_eq(stats_of(b).sets, 3);
    kv_db_close(a);
    put_n(b, "s", 2);
    cr_assert_eq(stats_of(b).sets, 5, "a's counts outlive a");
    kv_db_close(b);
    /* Nobody has it open (as between a graceful restart's old children
     * leaving and its new ones opening): the counts go on. */
    kv_db_t *c = open_db(dir, pc);
    kv_stats_t st = stats_of(c);
    cr_assert_eq(st.sets, 5, "counts kept while the machine did not reboot: %lu",
                 (unsigned long)st.sets);
    cr_assert_eq(st.counters_since, since);
    kv_db_close(c);
    /* A reboot since: what the file holds may be older than what was
     * seen, so they start from 0 (the data does not). */
    set_boot_id(dir, "00000000-0000-0000-0000-000000000000");
    kv_db_t *d = open_db(dir, pool);
    st = stats_of(d);
    cr_assert_eq(st.sets, 0);
    cr_assert_eq(st.gets, 0);
    cr_assert_geq(st.counters_since, since);
    cr_assert_eq(st.last_seq, 5, "the data did not start again");
    kv_db_close(d);
    drop_store(dir, pool);
}

Test(stats, latency_buckets_have_inclusive_upper_bounds)
{
    char *dir = tu_tmpdir();
    apr_pool_t *pool = tu_pool();
    kv_db_t *db = open_db(dir, pool);
    double prev = 0;
    for (int i = 0; i < KV_LATENCY_BUCKETS; i++) {
        cr_assert_gt(kv_latency_bound(i), prev, "bounds rise");
        prev = kv_latency_bound(i);
    }
    cr_assert(kv_latency_bound(0) == 0.0001 && kv_latency_bound(KV_LATENCY_BUCKETS - 1) == 10);
    kv_db_observe_latency(db, 0);          /* bucket 0 */
    kv_db_observe_latency(db, -1);         /* bucket 0, as 0 */
    kv_db_observe_latency(db, 0.0001);     /* bucket 0: its bound */
    kv_db_observe_latency(db, 0.00011);    /* bucket 1 */
    kv_db_observe_latency(db, 10);         /* the last bounded one */
    kv_db_observe_latency(db, 11);         /* over every bound */
    kv_stats_t st = stats_of(db);
    cr_assert_eq(st.latency_buckets[0], 3);
    cr_assert_eq(st.latency_buckets[1], 1);
    cr_assert_eq(st.latency_buckets[KV_LATENCY_BUCKETS - 1], 1);
    cr_assert_eq(st.latency_buckets[KV_LATENCY_BUCKETS], 1);
    cr_assert_eq(st.latency_sum_ns, 100000ull + 110000 + 10000000000ull + 11000000000ull);
    kv_db_close(db);
    drop_store(dir, pool);
}

/* ---- a directory used by a build without STATS ------------------------ */

/* The released layout of SHM version 2 (docs/FORMAT.md), for x86-64
 * glibc, written without shm.h's struct. */
#define V2_SIZE 88
#define V2_OFF_MUTEX 16
#define V2_OFF_END 56
#define V2_OFF_RECOVER 72

/* What a version-2 process does to a directory nobody uses: SHM made
 * afresh, with its robust mutex.  size: what its `size` field says (88
 * for the released build, more for a later one that appended fields). */
static void write_v2_shm(const char *dir, uint32_t size, uint32_t version)
{
    char p[4096];
    path_in(p, sizeof p, dir, "SHM");
    int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, 4096), 0);
    char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    cr_assert_neq(m, MAP_FAILED);
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    cr_assert_eq(pthread_mutex_init((pthread_mutex_t *)(m + V2_OFF_MUTEX), &a), 0);
    pthread_mutexattr_destroy(&a);
    memcpy(m + 8, &version, 4);
    memcpy(m + 12, &size, 4);
    uint32_t one = 1;
    memcpy(m + V2_OFF_RECOVER, &one, 4);
    memset(m + V2_SIZE, 0x5a, size > V2_SIZE ? size - V2_SIZE : 0);   /* its appended fields */
    memcpy(m, "KVLSMSHM", 8);
    munmap(m, 4096);
    close(fd);
}

static void read_file(const char *dir, const char *name, void *buf, size_t n)
{
    char p[4096];
    path_in(p, sizeof p, dir, name);
    int fd = open(p, O_RDONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pread(fd, buf, n, 0), (ssize_t)n);
    close(fd);
}

Test(stats, a_version_2_shm_in_use_by_a_build_without_stats_gets_counters)
{
    cr_assert_eq(sizeof(shm_t), V2_SIZE, "this test knows the x86-64 glibc layout");
    char *dir = tu_tmpdir();
    apr_pool_t *pool = tu_pool();
    write_v2_shm(dir, V2_SIZE, 2);
    int old_child = hold(dir, "SHM");       /* it is in use: joined, not made afresh */
    kv_db_t *db = open_db(dir, pool);
    put_n(db, "v", 5);
    get_n(db, "v", 5, pool);
    kv_stats_t st = stats_of(db);
    cr_assert_eq(st.counters_shared, 1);
    cr_assert_eq(st.sets, 5);
    cr_assert_eq(st.gets, 5);
    /* The released build's test for sharing the mapping still passes, and
     * the published end our writes moved is the word at offset 56. */
    char m[V2_SIZE];
    read_file(dir, "SHM", m, sizeof m);
    uint32_t version, size;
    uint64_t end;
    memcpy(&version, m + 8, 4);
    memcpy(&size, m + 12, 4);
    memcpy(&end, m + V2_OFF_END, 8);
    cr_assert(memcmp(m, "KVLSMSHM", 8) == 0 && version == 2 && size == V2_SIZE,
              "version %u size %u", version, size);
    cr_assert_gt(logpos_off(end), 0, "the end moved: %llx", (unsigned long long)end);
    kv_db_close(db);
    close(old_child);
    drop_store(dir, pool);
}

Test(stats, a_version_2_shm_with_appended_fields_is_shared_and_they_are_kept)
{
    cr_assert_eq(sizeof(shm_t), V2_SIZE);
    char *dir = tu_tmpdir();
    apr_pool_t *pool = tu_pool();
    write_v2_shm(dir, V2_SIZE + 16, 2);     /* a later build's mapping */
    int newer_child = hold(dir, "SHM");
    kv_db_t *db = open_db(dir, pool);
    put_n(db, "w", 3);
    cr_assert_eq(stats_of(db).sets, 3);
    char m[V2_SIZE + 16];
    read_file(dir, "SHM", m, sizeof m);
    uint32_t size;
    memcpy(&size, m + 12, 4);
    cr_assert_eq(size, V2_SIZE + 16, "size left as the later build set it");
    for (int i = V2_SIZE; i < V2_SIZE + 16; i++)
        cr_assert_eq((unsigned char)m[i], 0x5a, "appended byte %d untouched", i);
    kv_db_close(db);
    close(newer_child);
    drop_store(dir, pool);
}

Test(stats, an_shm_of_another_version_in_use_is_refused)
{
    char *dir = tu_tmpdir();
    apr_pool_t *pool = tu_pool();
    write_v2_shm(dir, V2_SIZE, 3);
    int other = hold(dir, "SHM");
    kv_db_t *db = NULL;
    kv_options_t o = tu_opts(1 << 20, 0);
    cr_assert_neq(kv_db_open(&db, dir, &o, pool), APR_SUCCESS,
                  "another protocol is never shared");
    close(other);
    cr_assert_eq(kv_db_open(&db, dir, &o, pool), APR_SUCCESS, "alone, it starts afresh");
    kv_db_close(db);
    drop_store(dir, pool);
}

/* ---- STATS files of other layouts ------------------------------------- */

typedef struct {
    uint32_t major, header_bytes, stripes, stripe_bytes, slots, incompat;
    uint64_t compat, created;
} layout_t;

static uint64_t layout_bytes(const layout_t *l)
{
    return (uint64_t)l->header_bytes + (uint64_t)l->stripes * l->stripe_bytes;
}

/* STATS as docs/FORMAT.md lays it out; header bytes after the fields this
 * build knows are filled with `fill`. */
static void write_stats_file(const char *dir, const layout_t *l, const char *magic, int fill)
{
    char p[4096];
    path_in(p, sizeof p, dir, "STATS");
    int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, (off_t)layout_bytes(l)), 0);
    char *h = calloc(1, l->header_bytes);
    memcpy(h, magic, 8);
    memcpy(h + 8, &l->major, 4);
    memcpy(h + 12, &l->header_bytes, 4);
    memcpy(h + 16, &l->stripes, 4);
    memcpy(h + 20, &l->stripe_bytes, 4);
    memcpy(h + 24, &l->slots, 4);
    memcpy(h + 28, &l->incompat, 4);
    memcpy(h + 32, &l->compat, 8);
    memcpy(h + 40, &l->created, 8);
    memset(h + 48, fill, l->header_bytes - 48);
    cr_assert_eq(pwrite(fd, h, l->header_bytes, 0), (ssize_t)l->header_bytes);
    free(h);
    close(fd);
}

static uint64_t slot_off(const layout_t *l, unsigned stripe, unsigned id)
{
    return l->header_bytes + (uint64_t)stripe * l->stripe_bytes + (uint64_t)id * 8;
}

static void set_slot(const char *dir, const layout_t *l, unsigned stripe, unsigned id, uint64_t v)
{
    char p[4096];
    path_in(p, sizeof p, dir, "STATS");
    int fd = open(p, O_RDWR);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pwrite(fd, &v, 8, (off_t)slot_off(l, stripe, id)), 8);
    close(fd);
}

static char *slurp_stats(const char *dir, size_t *n)
{
    char p[4096];
    struct stat sb;
    path_in(p, sizeof p, dir, "STATS");
    cr_assert_eq(stat(p, &sb), 0);
    *n = (size_t)sb.st_size;
    char *buf = malloc(*n);
    read_file(dir, "STATS", buf, *n);
    return buf;
}

Test(stats, an_older_stats_file_with_fewer_slots_grows_to_this_builds)
{
    char *dir = tu_tmpdir();
    apr_pool_t *pool = tu_pool();
    /* An older build: a 64-byte header, 4 stripes of 32 slots, only the
     * 12 counters used (no histogram yet); it counted 7 gets. */
    layout_t l = { .major = 1, .header_bytes = 64, .stripes = 4, .stripe_bytes = 256,
                   .slots = 12, .created = 1700000000 };
    write_stats_file(dir, &l, "KVLSMSTA", 0);
    set_slot(dir, &l, 1, ST_gets, 4);
    set_slot(dir, &l, 3, ST_gets, 3);
    int older = hold(dir, "STATS");
    kv_db_t *db = open_db(dir, pool);
    put_n(db, "o", 2);
    get_n(db, "o", 2, pool);
    kv_db_observe_latency(db, 0.002);
    kv_stats_t st = stats_of(db);
    cr_assert_eq(st.counters_shared, 1);
    cr_assert_eq(st.gets, 7 + 2, "its counts and ours: %lu", (unsigned long)st.gets);
    cr_assert_eq(st.sets, 2);
    cr_assert_eq(st.latency_buckets[4], 1, "the histogram's slots, new to the file, count");
    cr_assert_eq(st.counters_since, 1700000000);
    size_t n;
    char *f = slurp_stats(dir, &n);
    cr_assert_eq(n, layout_bytes(&l), "the file keeps its size");
    uint32_t slots, stripes, stripe_bytes;
    memcpy(&stripes, f + 16, 4);
    memcpy(&stripe_bytes, f + 20, 4);
    memcpy(&slots, f + 24, 4);
    cr_assert_eq(slots, ST_NSLOTS, "slots raised to this build's");
    cr_assert(stripes == 4 && stripe_bytes == 256, "its geometry kept");
    free(f);
    kv_db_close(db);
    close(older);
    drop_store(dir, pool);
}

Test(stats, a_newer_stats_file_is_used_as_it_is_and_what_it_adds_is_untouched)
{
    char *dir = tu_tmpdir();
    apr_pool_t *pool = tu_pool();
    /* A newer build: a two-page header with fields of its own, a
     * feature we do not know (compat: we may ignore it), 8 stripes of
     * 1024 slots, 200 slots used, the ones past ours holding its data. */
    layout_t l = { .major = 1, .header_bytes = 8192, .stripes = 8, .stripe_bytes = 8192,
                   .slots = 200, .compat = 0x5, .created = 1700000001 };
    write_stats_file(dir, &l, "KVLSMSTA", 0xa5);
    for (unsigned s = 0; s < l.stripes; s++)
        for (unsigned id = ST_NSLOTS; id < 200; id++)
            set_slot(dir, &l, s, id, 1000003ull * id + s);
    set_slot(dir, &l, 7, ST_sets, 100);
    size_t n0;
    char *before = slurp_stats(dir, &n0);
    int newer = hold(dir, "STATS");
    kv_db_t *db = open_db(dir, pool);
    put_n(db, "n", 4);
    get_n(db, "n", 4, pool);
    kv_db_observe_latency(db, 20);
    kv_stats_t st = stats_of(db);
    cr_assert_eq(st.counters_shared, 1);
    cr_assert_eq(st.sets, 104);
    cr_assert_eq(st.gets, 4);
    cr_assert_eq(st.latency_buckets[KV_LATENCY_BUCKETS], 1);
    kv_db_close(db);
    size_t n1;
    char *after = slurp_stats(dir, &n1);
    cr_assert_eq(n1, n0, "the file keeps its size");
    cr_assert_eq(memcmp(before, after, l.header_bytes), 0, "the header is as it was");
    for (unsigned s = 0; s < l.stripes; s++) {
        size_t off = (size_t)slot_off(&l, s, ST_NSLOTS);
        size_t end = (size_t)slot_off(&l, s, 0) + l.stripe_bytes;
        cr_assert_eq(memcmp(before + off, after + off, end - off), 0,
                     "stripe %u: slots past this build's untouched", s);
    }
    free(before);
    free(after);
    close(newer);
    /* Alone, and its counts started in this boot: still used as it is. */
    char boot[40];
    this_boot(boot);
    set_boot_id(dir, boot);
    db = open_db(dir, pool);
    st = stats_of(db);
    cr_assert_eq(st.counters_shared, 1);
    cr_assert_eq(st.sets, 104, "kept: %lu", (unsigned long)st.sets);
    kv_db_close(db);
    char hdr[64];
    uint32_t stripes;
    read_file(dir, "STATS", hdr, sizeof hdr);
    memcpy(&stripes, hdr + 16, 4);
    cr_assert_eq(stripes, 8, "its geometry kept");
    drop_store(dir, pool);
}

Test(stats, a_stats_file_this_build_must_not_use_is_left_alone)
{
    const layout_t ok = { .major = 1, .header_bytes = 4096, .stripes = 2, .stripe_bytes = 4096,
                          .slots = 30 };
    struct {
        const char *what, *magic;
        layout_t l;
    } cases[] = {
        { "another major version", "KVLSMSTA", ok },
        { "a feature it must know", "KVLSMSTA", ok },
        { "too few slots per stripe", "KVLSMSTA", ok },
        { "a damaged header", "KVLSMxxx", ok },
        { "stripes not a power of two", "KVLSMSTA", ok },
        { "geometry past the file's end", "KVLSMSTA", ok },
    };
    cases[0].l.major = 2;
    cases[1].l.incompat = 1;
    cases[2].l.stripe_bytes = 128;           /* 16 slots: fewer than this build counts */
    cases[4].l.stripes = 3;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *dir = tu_tmpdir();
        apr_pool_t *pool = tu_pool();
        write_stats_file(dir, &cases[i].l, cases[i].magic, 0);
        if (i == 5) {
            char p[4096];
            path_in(p, sizeof p, dir, "STATS");
            cr_assert_eq(truncate(p, 6000), 0);
        }
        size_t n0;
        char *before = slurp_stats(dir, &n0);
        int other = hold(dir, "STATS");
        kv_db_t *db = open_db(dir, pool);
        put_n(db, "x", 3);
        kv_stats_t st = stats_of(db);
        cr_assert_eq(st.counters_shared, 0, "%s: counted privately", cases[i].what);
        cr_assert_eq(st.sets, 3, "%s: still counted", cases[i].what);
        kv_db_close(db);
        size_t n1;
        char *after = slurp_stats(dir, &n1);
        cr_assert(n0 == n1 && memcmp(before, after, n0) == 0, "%s: file untouched", cases[i].what);
        free(before);
        free(after);
        close(other);
        /* Nobody uses it now: the next opener makes it its own. */
        db = open_db(dir, pool);
        cr_assert_eq(stats_of(db).counters_shared, 1, "%s: made afresh when alone", cases[i].what);
        kv_db_close(db);
        drop_store(dir, pool);
    }
}
