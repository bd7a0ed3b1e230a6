/* db_bench.c -- the engine against LevelDB, side by side in one run, in
 * the manner of LevelDB's db_bench: same workloads, same keys (16 bytes),
 * same values (100 bytes), one thread, and a table of ops/s with the
 * ratio kvlsm/leveldb.  Both write without syncing except in fillsync
 * (kvlsm: KV_SYNC_ALWAYS; LevelDB: sync=true); kvlsm runs in sync mode
 * "off" otherwise, the closest match to LevelDB's default write.
 *
 * Order: fillseq (fresh), fillrandom (fresh), overwrite, readrandom,
 * readmissing, readseq, deleterandom (each on the store fillrandom left),
 * fillsync (fresh, num/100 ops), fillsync8 (fresh, 8 threads).  Not in
 * the default list: compact (the store fillrandom left, compacted until
 * no level is over its target; its rate is num / seconds), so that a
 * readrandom after it reads a settled tree.  LevelDB's is CompactRange
 * over every key, a full compaction: compare the reads after it, not the
 * two compactions' rates. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <ftw.h>
#include <apr_general.h>
#include <leveldb/c.h>
#include "kvlsm.h"

typedef struct {
    long num;
    int value_size;
    const char *dir;
    const char *benchmarks;
    const char *engines;
    unsigned seed;
    int compression;       /* kv_compression_e for kvlsm; leveldb gets snappy if not none */
    double ratio;          /* value compressibility: fraction of fresh random bytes */
    long reads;            /* ops of readrandom / readmissing (default num) */
    int rounds;            /* runs of each benchmark per engine; the median counts */
    long long map_bytes;   /* kvlsm's map_bytes; -1: the engine's default */
} config_t;

static config_t cfg = { 1000000, 100, NULL,
                        "fillseq,fillrandom,overwrite,readrandom,readmissing,readseq,deleterandom,fillsync,fillsync8",
                        "kvlsm,leveldb", 301, KV_COMPRESS_NONE, 1.0, 0, 1, -1 };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Keys: 16 bytes, "%016ld" of an even number, so an odd one is a miss
 * that sorts between existing keys. */
static void make_key(char *k, long i)
{
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%016ld", i * 2);
    memcpy(k, tmp, 16);
}

static unsigned long long rng;
static long rnd(long n)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (long)((rng >> 33) % (unsigned long long)n);
}

static char *value_buf;   /* random-ish, compressible like db_bench's */

/* ---- one engine behind a small interface ---- */
typedef struct engine engine_t;
struct engine {
    const char *name;
    int (*open)(engine_t *, const char *dir, int sync);
    void (*close)(engine_t *);
    int (*put)(engine_t *, const char *k, size_t kn, const char *v, size_t vn);
    int (*get)(engine_t *, const char *k, size_t kn, int *found);
    int (*del)(engine_t *, const char *k, size_t kn);
    long (*scan)(engine_t *);
    void (*report)(engine_t *);
    int (*compact)(engine_t *);
    void *h;
    apr_pool_t *pool;
    leveldb_options_t *lo;
    leveldb_writeoptions_t *lw;
    leveldb_readoptions_t *lr;
    leveldb_cache_t *cache;
};

static int kv_open_(engine_t *e, const char *dir, int sync)
{
    apr_pool_create(&e->pool, NULL);
    kv_options_t o;
    kv_options_default(&o);
    o.sync_mode = sync ? KV_SYNC_ALWAYS : KV_SYNC_OFF;
    o.compression = (kv_compression_e)cfg.compression;
    if (cfg.map_bytes >= 0)
        o.map_bytes = (apr_size_t)cfg.map_bytes;
    kv_db_t *db;
    apr_status_t rv = kv_db_open(&db, dir, &o, e->pool);
    if (rv) {
        char buf[128];
        fprintf(stderr, "kvlsm open %s: %s\n", dir, kv_strerror(rv, buf, sizeof buf));
        return -1;
    }
    e->h = db;
    return 0;
}
static void kv_close_(engine_t *e) { kv_db_close(e->h); apr_pool_destroy(e->pool); }
static int kv_put_(engine_t *e, const char *k, size_t kn, const char *v, size_t vn)
{
    return kv_put(e->h, k, kn, v, vn, NULL, NULL) == APR_SUCCESS ? 0 : -1;
}
static int kv_get_(engine_t *e, const char *k, size_t kn, int *found)
{
    static __thread apr_pool_t *p;
    if (!p)
        apr_pool_create(&p, NULL);
    kv_value_t v;
    apr_status_t rv = kv_get(e->h, k, kn, p, &v);
    apr_pool_clear(p);
    *found = rv == APR_SUCCESS;
    return rv == APR_SUCCESS || rv == KV_NOTFOUND ? 0 : -1;
}
static int kv_del_(engine_t *e, const char *k, size_t kn)
{
    /* Blind, as LevelDB's delete is. */
    static const kv_write_opts_t blind = { KV_BLIND, 0, 0 };
    apr_status_t rv = kv_delete(e->h, k, kn, &blind, NULL, NULL);
    return rv == APR_SUCCESS || rv == KV_NOTFOUND ? 0 : -1;
}
static long kv_scan_(engine_t *e)
{
    apr_pool_t *p;
    apr_pool_create(&p, NULL);
    kv_iter_t *it;
    long n = 0;
    if (kv_iter_open(&it, e->h, p) == APR_SUCCESS) {
        for (kv_iter_seek(it, NULL, 0); kv_iter_valid(it); kv_iter_next(it))
            n++;
    }
    apr_pool_destroy(p);
    return n;
}
/* A figure of this process's /proc/self/status, KiB (both engines share
 * the process): VmRSS (its resident set, mapped files included) or
 * RssAnon (its own memory). */
static long status_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, n) && line[n] == ':' && sscanf(line + n + 1, "%ld", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}
static long rss_mib(void)
{
    long kb = status_kib("VmRSS");
    return kb < 0 ? -1 : kb / 1024;
}

static void kv_report_(engine_t *e)
{
    kv_stats_t st;
    if (kv_db_stats(e->h, &st) != APR_SUCCESS)
        return;
    printf("    kvlsm: %lu SSTs, %.1f MB; per level:", (unsigned long)st.sst_files, st.sst_bytes / 1e6);
    for (int l = 0; l < KV_MAX_LEVELS; l++)
        if (st.level_files[l])
            printf(" L%d %lu/%.1fMB", l, (unsigned long)st.level_files[l], st.level_bytes[l] / 1e6);
    printf("; flushes %lu, compactions %lu, stalls %lu (%.0f ms), syncs %lu; mapped %.1f MB; process RSS %ld MiB"
           "; private %ld KiB (SST indexes %lu KiB)\n",
           (unsigned long)st.flushes, (unsigned long)st.compactions,
           (unsigned long)st.write_stalls, st.write_stall_us / 1e3, (unsigned long)st.syncs,
           st.sst_mapped_bytes / 1e6, rss_mib(), status_kib("RssAnon"),
           (unsigned long)(st.sst_private_bytes / 1024));
}

static int kv_compact_(engine_t *e)
{
    return kv_db_compact(e->h) == APR_SUCCESS ? 0 : -1;
}

static int ldb_open_(engine_t *e, const char *dir, int sync)
{
    char *err = NULL;
    e->lo = leveldb_options_create();
    leveldb_options_set_create_if_missing(e->lo, 1);
    leveldb_options_set_write_buffer_size(e->lo, 4 << 20);
    leveldb_options_set_compression(e->lo, cfg.compression ? leveldb_snappy_compression
                                                           : leveldb_no_compression);
    e->cache = leveldb_cache_create_lru(8 << 20);
    leveldb_options_set_cache(e->lo, e->cache);
    e->lw = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(e->lw, (unsigned char)sync);
    e->lr = leveldb_readoptions_create();
    e->h = leveldb_open(e->lo, dir, &err);
    if (err) {
        fprintf(stderr, "leveldb open %s: %s\n", dir, err);
        leveldb_free(err);
        return -1;
    }
    return 0;
}
static void ldb_close_(engine_t *e)
{
    leveldb_close(e->h);
    leveldb_options_destroy(e->lo);
    leveldb_cache_destroy(e->cache);
    leveldb_writeoptions_destroy(e->lw);
    leveldb_readoptions_destroy(e->lr);
}
static int ldb_put_(engine_t *e, const char *k, size_t kn, const char *v, size_t vn)
{
    char *err = NULL;
    leveldb_put(e->h, e->lw, k, kn, v, vn, &err);
    if (err) { leveldb_free(err); return -1; }
    return 0;
}
static int ldb_get_(engine_t *e, const char *k, size_t kn, int *found)
{
    char *err = NULL;
    size_t vn;
    char *v = leveldb_get(e->h, e->lr, k, kn, &vn, &err);
    *found = v != NULL;
    leveldb_free(v);
    if (err) { leveldb_free(err); return -1; }
    return 0;
}
static int ldb_del_(engine_t *e, const char *k, size_t kn)
{
    char *err = NULL;
    leveldb_delete(e->h, e->lw, k, kn, &err);
    if (err) { leveldb_free(err); return -1; }
    return 0;
}
static long ldb_scan_(engine_t *e)
{
    leveldb_iterator_t *it = leveldb_create_iterator(e->h, e->lr);
    long n = 0;
    for (leveldb_iter_seek_to_first(it); leveldb_iter_valid(it); leveldb_iter_next(it)) {
        size_t kn, vn;
        (void)leveldb_iter_key(it, &kn);
        (void)leveldb_iter_value(it, &vn);
        n++;
    }
    leveldb_iter_destroy(it);
    return n;
}
static void ldb_report_(engine_t *e)
{
    char *s = leveldb_property_value(e->h, "leveldb.stats");
    if (s) {
        long total = 0;
        char *line = strstr(s, "--------------------------------------------------\n");
        if (line)
            line += 51;
        while (line && *line) {
            int lvl, files;
            double mb;
            if (sscanf(line, "%d %d %lf", &lvl, &files, &mb) == 3)
                total += (long)(mb * 1e6);
            line = strchr(line, '\n');
            if (line)
                line++;
        }
        printf("    leveldb: %.1f MB in tables\n", total / 1e6);
        leveldb_free(s);
    }
}

static int ldb_compact_(engine_t *e)
{
    leveldb_compact_range(e->h, NULL, 0, NULL, 0);
    return 0;
}

static engine_t engines[] = {
    { "kvlsm", kv_open_, kv_close_, kv_put_, kv_get_, kv_del_, kv_scan_, kv_report_, kv_compact_, NULL, NULL, NULL, NULL, NULL, NULL },
    { "leveldb", ldb_open_, ldb_close_, ldb_put_, ldb_get_, ldb_del_, ldb_scan_, ldb_report_, ldb_compact_, NULL, NULL, NULL, NULL, NULL, NULL },
};

/* ---- workloads ---- */
static uint64_t du_total;
static int du_one(const char *p, const struct stat *s, int f, struct FTW *w)
{
    (void)p; (void)w;
    if (f == FTW_F)
        du_total += (uint64_t)s->st_blocks * 512;
    return 0;
}

static double du_mb(const char *dir)
{
    du_total = 0;
    nftw(dir, du_one, 16, FTW_PHYS);
    return du_total / 1048576.0;
}

static int rm_one(const char *p, const struct stat *s, int f, struct FTW *w)
{
    (void)s; (void)f; (void)w;
    return remove(p);
}

static char *fresh_dir(const char *base, const char *engine, const char *bench)
{
    char *d = malloc(4096);
    snprintf(d, 4096, "%s/%s-%s", base, engine, bench);
    nftw(d, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return d;
}

static int fill(engine_t *e, long n, int random, const char *what)
{
    char k[16];
    rng = cfg.seed;
    for (long i = 0; i < n; i++) {
        make_key(k, random ? rnd(cfg.num) : i);
        if (e->put(e, k, 16, value_buf + (i % 4096), (size_t)cfg.value_size)) {
            fprintf(stderr, "%s: %s put failed at %ld\n", e->name, what, i);
            return -1;
        }
    }
    return 0;
}

typedef struct { engine_t *e; long n; int id; int rc; } syncw_t;
static void *sync_writer(void *a)
{
    syncw_t *w = a;
    char k[16];
    for (long i = 0; i < w->n; i++) {
        make_key(k, (long)w->id * 100000000L + i);
        if (w->e->put(w->e, k, 16, value_buf, (size_t)cfg.value_size))
            w->rc = -1;
    }
    return NULL;
}

/* Runs one benchmark on one engine; returns ops/s or -1. */
static double run(engine_t *e, const char *bench, const char *base, char **shared_dir)
{
    double t0, t1;
    long ops = cfg.num;
    int found, misses = 0;
    char k[16];
    if (!strcmp(bench, "fillseq") || !strcmp(bench, "fillrandom")) {
        char *d = fresh_dir(base, e->name, bench);
        if (e->open(e, d, 0))
            return -1;
        t0 = now();
        if (fill(e, cfg.num, bench[4] == 'r', bench))
            return -1;
        t1 = now();
        if (!strcmp(bench, "fillrandom")) {
            free(shared_dir[e == &engines[0] ? 0 : 1]);
            shared_dir[e == &engines[0] ? 0 : 1] = d;
        }
        else
            free(d);
        e->close(e);
        return ops / (t1 - t0);
    }
    if (!strcmp(bench, "fillsync") || !strcmp(bench, "fillsync8")) {
        char *d = fresh_dir(base, e->name, bench);
        if (e->open(e, d, 1))
            return -1;
        int threads = bench[8] == '8' ? 8 : 1;
        long per = cfg.num / 100 / threads;
        if (per < 1)
            per = 1;
        syncw_t w[8];
        pthread_t th[8];
        t0 = now();
        for (int i = 0; i < threads; i++) {
            w[i] = (syncw_t){ e, per, i, 0 };
            pthread_create(&th[i], NULL, sync_writer, &w[i]);
        }
        for (int i = 0; i < threads; i++)
            pthread_join(th[i], NULL);
        t1 = now();
        if (e == &engines[0])
            e->report(e);   /* syncs: how many writers each fdatasync served */
        e->close(e);
        nftw(d, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        free(d);
        for (int i = 0; i < threads; i++)
            if (w[i].rc)
                return -1;
        return per * threads / (t1 - t0);
    }
    /* The rest work on the store fillrandom left. */
    char *d = shared_dir[e == &engines[0] ? 0 : 1];
    if (!d) {
        fprintf(stderr, "%s needs fillrandom first\n", bench);
        return -1;
    }
    if (e->open(e, d, 0))
        return -1;
    rng = cfg.seed + 7;
    t0 = now();
    if (!strcmp(bench, "overwrite")) {
        for (long i = 0; i < ops; i++) {
            make_key(k, rnd(cfg.num));
            if (e->put(e, k, 16, value_buf + (i % 4096), (size_t)cfg.value_size))
                return -1;
        }
    }
    else if (!strcmp(bench, "readrandom") || !strcmp(bench, "readmissing")) {
        int missing = bench[4] == 'm';
        if (cfg.reads > 0)
            ops = cfg.reads;
        for (long i = 0; i < ops; i++) {
            long x = rnd(cfg.num);
            make_key(k, x);
            if (missing)
                k[15] = (char)(k[15] + 1);   /* odd: between two keys */
            if (e->get(e, k, 16, &found))
                return -1;
            misses += !found;
        }
    }
    else if (!strcmp(bench, "readseq")) {
        ops = e->scan(e);
    }
    else if (!strcmp(bench, "compact")) {
        if (e->compact(e))
            return -1;
    }
    else if (!strcmp(bench, "deleterandom")) {
        for (long i = 0; i < ops; i++) {
            make_key(k, rnd(cfg.num));
            if (e->del(e, k, 16))
                return -1;
        }
    }
    else {
        fprintf(stderr, "unknown benchmark %s\n", bench);
        e->close(e);
        return -1;
    }
    t1 = now();
    if (!strcmp(bench, "overwrite") || !strcmp(bench, "readrandom") || !strcmp(bench, "readseq")
        || !strcmp(bench, "deleterandom") || !strcmp(bench, "compact"))
        e->report(e);
    e->close(e);
    (void)misses;
    return ops / (t1 - t0);
}

static double median(const double *v, int n)
{
    double s[9];
    int k = 0;
    for (int i = 0; i < n; i++)
        if (v[i] > 0)
            s[k++] = v[i];
    if (k == 0)
        return -1;
    for (int i = 1; i < k; i++)
        for (int j = i; j > 0 && s[j - 1] > s[j]; j--) {
            double t = s[j];
            s[j] = s[j - 1];
            s[j - 1] = t;
        }
    return k % 2 ? s[k / 2] : (s[k / 2 - 1] + s[k / 2]) / 2;
}

static int wanted(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)); p += n)
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "--num=", 6)) cfg.num = atol(argv[i] + 6);
        else if (!strncmp(argv[i], "--value_size=", 13)) cfg.value_size = atoi(argv[i] + 13);
        else if (!strncmp(argv[i], "--benchmarks=", 13)) cfg.benchmarks = argv[i] + 13;
        else if (!strncmp(argv[i], "--dir=", 6)) cfg.dir = argv[i] + 6;
        else if (!strncmp(argv[i], "--engines=", 10)) cfg.engines = argv[i] + 10;
        else if (!strncmp(argv[i], "--seed=", 7)) cfg.seed = (unsigned)atol(argv[i] + 7);
        else if (!strcmp(argv[i], "--compression=lz4")) cfg.compression = KV_COMPRESS_LZ4;
        else if (!strcmp(argv[i], "--compression=zstd")) cfg.compression = KV_COMPRESS_ZSTD;
        else if (!strcmp(argv[i], "--compression=none")) cfg.compression = KV_COMPRESS_NONE;
        else if (!strncmp(argv[i], "--ratio=", 8)) cfg.ratio = atof(argv[i] + 8);
        else if (!strncmp(argv[i], "--reads=", 8)) cfg.reads = atol(argv[i] + 8);
        else if (!strncmp(argv[i], "--rounds=", 9)) cfg.rounds = atoi(argv[i] + 9);
        else if (!strncmp(argv[i], "--map_bytes=", 12)) cfg.map_bytes = atoll(argv[i] + 12);
        else {
            fprintf(stderr, "usage: %s [--num=N] [--value_size=N] [--benchmarks=a,b] [--engines=kvlsm,leveldb] [--dir=D] [--seed=N] [--compression=none|lz4|zstd] [--ratio=R] [--reads=N] [--rounds=N] [--map_bytes=N]\n", argv[0]);
            return 2;
        }
    }
    if (cfg.num < 100 || cfg.value_size < 1 || cfg.value_size > 4096 || cfg.rounds < 1 || cfg.rounds > 9) {
        fprintf(stderr, "--num must be >= 100, --value_size 1..4096, --rounds 1..9\n");
        return 2;
    }
    apr_initialize();
    char tmpl[] = "/tmp/kvbench.XXXXXX";
    const char *base = cfg.dir;
    if (!base && !(base = mkdtemp(tmpl))) {
        perror("mkdtemp");
        return 1;
    }
    value_buf = malloc(4096 + 4096);
    rng = 42;
    /* Like LevelDB's db_bench: pieces of ratio x 100 random bytes, each
     * repeated to 100 bytes, so values compress to about `ratio`. */
    if (cfg.ratio <= 0 || cfg.ratio > 1)
        cfg.ratio = 1.0;
    int piece = (int)(cfg.ratio * 100) > 0 ? (int)(cfg.ratio * 100) : 1;
    for (int i = 0; i < 8192; i += 100) {
        char fresh[100];
        for (int j = 0; j < piece; j++)
            fresh[j] = (char)(' ' + rnd(95));
        for (int j = 0; j < 100 && i + j < 8192; j++)
            value_buf[i + j] = fresh[j % piece];
    }
    printf("db_bench: %ld entries, 16-byte keys, %d-byte values, seed %u, dir %s\n",
           cfg.num, cfg.value_size, cfg.seed, base);
    printf("compression: kvlsm %s, leveldb %s; values compress to about %.2f\n",
           cfg.compression == KV_COMPRESS_LZ4 ? "lz4" : cfg.compression == KV_COMPRESS_ZSTD ? "zstd" : "none",
           cfg.compression ? "snappy" : "none", cfg.ratio);
    printf("writes unsynced (kvlsm sync off, leveldb sync=false) except fillsync*: kvlsm sync always, leveldb sync=true; fillsync* run num/100 ops\n\n");
    if (cfg.rounds > 1)
        printf("each benchmark runs %d times per engine, the engines taking turns to go first;\n"
               "ops/s are the medians, the ratio is the median of each round's ratio (range after it)\n\n",
               cfg.rounds);
    printf("%-14s %14s %14s %8s\n", "benchmark", "kvlsm ops/s", "leveldb ops/s", "ratio");
    char *shared[2] = { NULL, NULL };
    char list[1024];
    snprintf(list, sizeof list, "%s", cfg.benchmarks);
    int rc = 0;
    double fillsync[2] = { -1, -1 }, fillsync8[2] = { -1, -1 };
    for (char *save, *b = strtok_r(list, ",", &save); b; b = strtok_r(NULL, ",", &save)) {
        double r[2][9], ratios[9];
        int nratios = 0;
        for (int round = 0; round < cfg.rounds; round++) {
            for (int k = 0; k < 2; k++) {
                int e = (k + round) % 2;
                r[e][round] = -1;
                if (wanted(cfg.engines, engines[e].name)) {
                    r[e][round] = run(&engines[e], b, base, shared);
                    if (r[e][round] < 0)
                        rc = 1;
                }
            }
            if (r[0][round] > 0 && r[1][round] > 0)
                ratios[nratios++] = r[0][round] / r[1][round];
        }
        double med[2] = { median(r[0], cfg.rounds), median(r[1], cfg.rounds) };
        char ratio[64] = "-";
        if (nratios == 1)
            snprintf(ratio, sizeof ratio, "%.2fx", ratios[0]);
        else if (nratios > 1) {
            double lo = ratios[0], hi = ratios[0];
            for (int i = 1; i < nratios; i++) {
                lo = ratios[i] < lo ? ratios[i] : lo;
                hi = ratios[i] > hi ? ratios[i] : hi;
            }
            snprintf(ratio, sizeof ratio, "%.2fx (%.2f-%.2f)", median(ratios, nratios), lo, hi);
        }
        printf("%-14s %14.0f %14.0f %8s\n", b, med[0], med[1], ratio);
        fflush(stdout);
        if (!strcmp(b, "fillsync"))
            memcpy(fillsync, med, sizeof med);
        if (!strcmp(b, "fillsync8"))
            memcpy(fillsync8, med, sizeof med);
    }
    for (int e = 0; e < 2; e++)
        if (fillsync[e] > 0 && fillsync8[e] > 0)
            printf("group commit: %s fillsync8 is %.2fx its fillsync\n", engines[e].name,
                   fillsync8[e] / fillsync[e]);
    for (int e = 0; e < 2; e++)
        if (shared[e]) {
            /* Live data: what a scan of the store finds, at key + value bytes each. */
            long live = -1;
            if (engines[e].open(&engines[e], shared[e], 0) == 0) {
                live = engines[e].scan(&engines[e]);
                engines[e].close(&engines[e]);
            }
            double raw = live * (16.0 + cfg.value_size) / 1048576.0, disk = du_mb(shared[e]);
            printf("space on disk after the run: %s %.1f MB for %ld live keys = %.1f MB raw: %.2fx\n",
                   engines[e].name, disk, live, raw, raw > 0 ? disk / raw : 0.0);
        }
    for (int e = 0; e < 2; e++)
        if (shared[e]) {
            nftw(shared[e], rm_one, 16, FTW_DEPTH | FTW_PHYS);
            free(shared[e]);
        }
    if (!cfg.dir)
        rmdir(base);
    return rc;
}
