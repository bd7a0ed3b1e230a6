/* testutil.h -- shared helpers for the engine's Criterion tests: a fresh
 * data directory per test, an APR pool, and small key/value builders. */
#ifndef KV_TESTUTIL_H
#define KV_TESTUTIL_H

#include <criterion/criterion.h>
#include <apr_general.h>
#include <apr_pools.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <ftw.h>
#include <sched.h>
#include <time.h>
#include "kvlsm.h"
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

/* A stress loop's count: n, or a fiftieth of it (at least 1) under
 * valgrind, which runs a process's threads one at a time, so races are
 * not what it looks for and the full count would take hours. */
static inline long tu_scaled(long n)
{
    return RUNNING_ON_VALGRIND ? (n / 50 > 0 ? n / 50 : 1) : n;
}

static inline int tu_rm_one(const char *p, const struct stat *s, int f, struct FTW *w)
{
    (void)s; (void)f; (void)w;
    return remove(p);
}

static inline void tu_rmrf(const char *dir)
{
    nftw(dir, tu_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A new empty directory under /tmp (or $TMPDIR); caller frees. */
static inline char *tu_tmpdir(void)
{
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    size_t n = strlen(base) + 32;
    char *d = malloc(n);
    cr_assert_not_null(d);
    snprintf(d, n, "%s/kvtest.XXXXXX", base);
    cr_assert_not_null(mkdtemp(d));
    return d;
}

static inline apr_pool_t *tu_pool(void)
{
    apr_pool_t *p;
    apr_initialize();
    cr_assert_eq(apr_pool_create(&p, NULL), APR_SUCCESS);
    return p;
}

static inline kv_options_t tu_opts(apr_size_t memtable, int background)
{
    kv_options_t o;
    kv_options_default(&o);
    o.memtable_bytes = memtable;
    o.background = background;
    o.sync_mode = KV_SYNC_OFF;
    return o;
}

/* A handle on dir with a 1 MiB memtable, no background thread and the
 * given sync mode; NULL if it does not open. */
static inline kv_db_t *tu_open_mode(const char *dir, apr_pool_t *pool, kv_sync_mode_e mode)
{
    kv_options_t o = tu_opts(1 << 20, 0);
    o.sync_mode = mode;
    kv_db_t *db = NULL;
    return kv_db_open(&db, dir, &o, pool) == APR_SUCCESS ? db : NULL;
}

static inline void tu_key(char *buf, size_t n, const char *prefix, unsigned long i)
{
    snprintf(buf, n, "%s%08lu", prefix, i);
}

/* A value that is a checkable function of its key and version. */
static inline size_t tu_val(char *buf, size_t n, const char *key, unsigned long ver)
{
    return (size_t)snprintf(buf, n, "v%lu:%s:%0*lu", ver, key, (int)(ver % 40), ver);
}

#define TU_STR(s) (s), strlen(s)

#endif
