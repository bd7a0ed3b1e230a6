/* test_memory.c -- what a process holds in its own memory for a store's
 * SST files: with the files mapped (the default), their indexes and
 * filters are read in the page cache, so opening a store costs a small
 * fixed share of the data (12 bytes a block), not a copy of every
 * filter; read with pread, the copies are there and are counted. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
#include "kvlsm.h"
#include "testutil.h"

/* This process's anonymous resident memory, KiB (RssAnon). */
static long rss_anon_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "RssAnon: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

/* ASan's allocator keeps freed blocks in quarantine and adds shadow and
 * red zones to every block: its RssAnon is not the engine's.  There the
 * tests check the engine's own count only. */
#if defined(__SANITIZE_ADDRESS__)
#define RSS_MEANINGFUL 0
#else
#define RSS_MEANINGFUL 1
#endif

#define KEYS 600000

/* A store of KEYS small entries in SSTs only (flushed, log empty),
 * written by a child process, so that none of the writing leaves freed
 * memory in this process's heap for the open to reuse unseen. */
static char *filled_store(void)
{
    char *dir = tu_tmpdir();
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        apr_pool_t *pool = tu_pool();
        kv_options_t o = tu_opts(4 << 20, 0);
        kv_db_t *db;
        if (kv_db_open(&db, dir, &o, pool) != APR_SUCCESS)
            _exit(1);
        char k[32];
        for (unsigned long i = 0; i < KEYS; i++) {
            tu_key(k, sizeof k, "key", i);
            if (kv_put(db, k, strlen(k), "0123456789abcdef", 16, NULL, NULL) != APR_SUCCESS)
                _exit(2);
        }
        if (kv_db_flush(db) != APR_SUCCESS)
            _exit(3);
        kv_db_close(db);
        _exit(0);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the writer failed: %d", status);
    return dir;
}

/* Open dir with map_bytes, read one key; the growth of RssAnon over the
 * open, and the stats after it. */
static long open_growth(const char *dir, apr_size_t map_bytes, apr_pool_t *pool, kv_stats_t *st)
{
    kv_options_t o = tu_opts(4 << 20, 0);
    o.map_bytes = map_bytes;
    long before = rss_anon_kib();
    kv_db_t *db;
    cr_assert_eq(kv_db_open(&db, dir, &o, pool), APR_SUCCESS);
    kv_value_t v;
    cr_assert_eq(kv_get(db, TU_STR("key00012345"), pool, &v), APR_SUCCESS);
    long growth = rss_anon_kib() - before;
    cr_assert_eq(kv_db_stats(db, st), APR_SUCCESS);
    kv_db_close(db);
    return growth;
}

Test(memory, mapped_files_keep_no_copy_of_their_filters_and_indexes, .timeout = 120)
{
    if (RUNNING_ON_VALGRIND)
        cr_skip_test("valgrind's own memory is in every figure");
    char *dir = filled_store();
    apr_pool_t *pool = tu_pool();
    kv_stats_t st;
    long growth = open_growth(dir, KV_MAP_ALL, pool, &st);
    /* The filters alone are 10 bits a key, 1/29 of these files; what a
     * process keeps of the index is 12 bytes a 4 KiB block, 1/340. */
    long limit = (long)(st.sst_bytes / 1024 / 100);
    cr_log_info("mapped: %lu SST bytes, %lu mapped, %lu private; RssAnon +%ld KiB (limit %ld)",
                (unsigned long)st.sst_bytes, (unsigned long)st.sst_mapped_bytes,
                (unsigned long)st.sst_private_bytes, growth, limit);
    cr_assert_geq(st.sst_mapped_bytes, st.sst_bytes, "every file is mapped");
    if (RSS_MEANINGFUL)
        cr_assert_lt(growth, limit, "opening the store grew RssAnon by %ld KiB for %lu SST bytes",
                     growth, (unsigned long)st.sst_bytes);
    cr_assert_lt(st.sst_private_bytes, st.sst_bytes / 150);
    tu_rmrf(dir);
    free(dir);
    apr_pool_destroy(pool);
}

Test(memory, unmapped_files_count_their_copies, .timeout = 120)
{
    if (RUNNING_ON_VALGRIND)
        cr_skip_test("valgrind's own memory is in every figure");
    char *dir = filled_store();
    apr_pool_t *pool = tu_pool();
    kv_stats_t st;
    long growth = open_growth(dir, 0, pool, &st);
    cr_log_info("pread: %lu SST bytes, %lu private; RssAnon +%ld KiB",
                (unsigned long)st.sst_bytes, (unsigned long)st.sst_private_bytes, growth);
    cr_assert_eq(st.sst_mapped_bytes, 0);
    /* The filter copies alone are over 1/29 of the files. */
    cr_assert_gt(st.sst_private_bytes, st.sst_bytes / 40);
    /* What is counted is what the process holds (within a quarter). */
    if (RSS_MEANINGFUL)
        cr_assert_gt(growth, (long)(st.sst_private_bytes / 1024) * 3 / 4);
    tu_rmrf(dir);
    free(dir);
    apr_pool_destroy(pool);
}
