/* test_sst.c -- SST files: written and read back across many blocks,
 * point lookups and scans, binary keys, and damage of any byte or a
 * truncation reported as corruption, never as wrong data or a crash. */
#include <fcntl.h>
#include <sys/stat.h>
#include "testutil.h"
#include "sst.h"
#include "compress.h"
#include "coding.h"
#include "crc32c.h"
#include "sst_format.h"

static char *dir;
static apr_pool_t *pool;
static void setup(void) { pool = tu_pool(); dir = tu_tmpdir(); }
static void teardown(void) { apr_pool_destroy(pool); tu_rmrf(dir); free(dir); }
TestSuite(sst, .init = setup, .fini = teardown);

/* Keys "k%08u" for even i only, so odd ones are in-range misses. */
static void build_with(const char *path, unsigned n, sst_meta_t *meta, int codec)
{
    sst_builder_t *b;
    cr_assert_eq(sst_builder_open(&b, path, codec), APR_SUCCESS);
    for (unsigned i = 0; i < n; i++) {
        char k[32], v[200];
        snprintf(k, sizeof k, "k%08u", 2 * i);
        size_t vn = tu_val(v, sizeof v, k, i);
        kv_ent_t e = { k, strlen(k), v, vn, 100 + i, 0, ENT_PUT };
        if (i % 10 == 9) {
            e.type = ENT_DEL;
            e.val = NULL;
            e.vlen = 0;
        }
        cr_assert_eq(sst_builder_add(b, &e), APR_SUCCESS);
    }
    cr_assert_eq(sst_builder_finish(b, meta), APR_SUCCESS);
}

static void build(const char *path, unsigned n, sst_meta_t *meta)
{
    build_with(path, n, meta, CODEC_NONE);
}

/* Build NNNNNN.sst (n entries) in the test directory; path receives its name. */
static void build_numbered(char *path, size_t size, unsigned number, unsigned n)
{
    snprintf(path, size, "%s/%06u.sst", dir, number);
    sst_meta_t meta;
    build(path, n, &meta);
    sst_meta_free(&meta);
}

/* Damage the file: flip the bits of mask in the byte at off. */
static void flip_byte(const char *path, off_t off, char mask)
{
    int fd = open(path, O_RDWR);
    cr_assert(fd >= 0);
    char byte;
    cr_assert_eq(pread(fd, &byte, 1, off), 1);
    byte ^= mask;
    cr_assert_eq(pwrite(fd, &byte, 1, off), 1);
    close(fd);
}

Test(sst, roundtrip_many_blocks)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/000001.sst", dir);
    sst_meta_t meta;
    build(path, 5000, &meta);
    cr_assert_eq(meta.entries, 5000);
    cr_assert_eq(meta.min_seq, 100);
    cr_assert_eq(meta.max_seq, 5099);
    cr_assert_eq(memcmp(meta.smallest, "k00000000", 9), 0);
    cr_assert_eq(memcmp(meta.largest, "k00009998", 9), 0);
    sst_t *t;
    cr_assert_eq(sst_open(&t, path, 1), APR_SUCCESS);
    cr_assert_eq(sst_entries(t), 5000);
    cr_assert_eq(sst_verify(t), APR_SUCCESS);
    for (unsigned i = 0; i < 5000; i++) {
        char k[32], v[200];
        snprintf(k, sizeof k, "k%08u", 2 * i);
        kv_ent_t e;
        cr_assert_eq(sst_get(t, k, strlen(k), pool, &e), APR_SUCCESS, "%s", k);
        cr_assert_eq(e.seq, 100 + i);
        if (i % 10 == 9) {
            cr_assert_eq(e.type, ENT_DEL);
            continue;
        }
        size_t vn = tu_val(v, sizeof v, k, i);
        cr_assert_eq(e.type, ENT_PUT);
        cr_assert_eq(e.vlen, vn);
        cr_assert_eq(memcmp(e.val, v, vn), 0);
        snprintf(k, sizeof k, "k%08u", 2 * i + 1);
        cr_assert_eq(sst_get(t, k, strlen(k), pool, &e), KV_NOTFOUND);
    }
    kv_ent_t e;
    cr_assert_eq(sst_get(t, TU_STR("a"), pool, &e), KV_NOTFOUND);
    cr_assert_eq(sst_get(t, TU_STR("z"), pool, &e), KV_NOTFOUND);
    sst_unref(t);
    sst_meta_free(&meta);
}

Test(sst, iter_seek_between_keys_and_scan_all)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/000002.sst", dir);
    sst_meta_t meta;
    build(path, 3000, &meta);
    sst_meta_free(&meta);
    sst_t *t;
    cr_assert_eq(sst_open(&t, path, 2), APR_SUCCESS);
    sst_iter_t *it;
    cr_assert_eq(sst_iter_new(&it, t), APR_SUCCESS);
    unsigned n = 0;
    for (sst_iter_seek_first(it); sst_iter_valid(it); sst_iter_next(it)) {
        kv_ent_t e;
        char k[32];
        sst_iter_entry(it, &e);
        snprintf(k, sizeof k, "k%08u", 2 * n);
        cr_assert_eq(e.klen, strlen(k));
        cr_assert_eq(memcmp(e.key, k, e.klen), 0);
        n++;
    }
    cr_assert_eq(sst_iter_status(it), APR_SUCCESS);
    cr_assert_eq(n, 3000);
    /* An odd key lands on the next even one. */
    sst_iter_seek(it, TU_STR("k00001001"));
    cr_assert(sst_iter_valid(it));
    kv_ent_t e;
    sst_iter_entry(it, &e);
    cr_assert_eq(memcmp(e.key, "k00001002", 9), 0);
    sst_iter_seek(it, TU_STR("zzz"));
    cr_assert(!sst_iter_valid(it));
    sst_iter_free(it);
    sst_unref(t);
}

/* ---- block search over keys with a long common prefix ---------------- */

typedef struct { char k[40]; size_t n; } tkey_t;

static int tkey_cmp(const void *a, const void *b)
{
    const tkey_t *x = a, *y = b;
    return key_cmp(x->k, x->n, y->k, y->n);
}

/* find_block compares 8 bytes past the first and last block keys' common
 * prefix: keys that end inside those bytes, zero bytes, keys shorter than
 * the prefix and keys outside it must all land where a plain search of
 * the sorted keys does. */
Test(sst, block_search_agrees_with_sorted_keys_under_a_shared_prefix)
{
    enum { N = 3000 };
    static tkey_t keys[N];
    srand(11);
    size_t n = 0;
    for (int i = 0; i < N; i++) {
        tkey_t *t = &keys[n];
        memcpy(t->k, "tenant/0042/", 12);
        t->n = 12 + (size_t)(rand() % 14);
        for (size_t j = 12; j < t->n; j++)
            t->k[j] = (char)(rand() % 3 == 0 ? 0 : rand() % 256);
        n++;
    }
    qsort(keys, n, sizeof *keys, tkey_cmp);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || tkey_cmp(&keys[u - 1], &keys[i]) != 0)
            keys[u++] = keys[i];
    n = u;
    char path[4096];
    snprintf(path, sizeof path, "%s/000009.sst", dir);
    sst_builder_t *b;
    cr_assert_eq(sst_builder_open(&b, path, CODEC_NONE), APR_SUCCESS);
    char v[300];
    memset(v, 'v', sizeof v);
    for (size_t i = 0; i < n; i++) {
        kv_ent_t e = { keys[i].k, keys[i].n, v, sizeof v, 10 + i, 0, ENT_PUT };
        cr_assert_eq(sst_builder_add(b, &e), APR_SUCCESS);
    }
    sst_meta_t meta;
    cr_assert_eq(sst_builder_finish(b, &meta), APR_SUCCESS);
    sst_meta_free(&meta);
    sst_t *t;
    cr_assert_eq(sst_open(&t, path, 9), APR_SUCCESS);
    sst_iter_t *it;
    cr_assert_eq(sst_iter_new(&it, t), APR_SUCCESS);
    /* Probes: each key, the key with a zero byte more, the key one byte
     * shorter, the key with its last byte raised, and keys around the
     * prefix. */
    int checked = 0;
    for (size_t i = 0; i < n; i++) {
        tkey_t pr[4];
        pr[0] = keys[i];
        pr[1] = keys[i];
        pr[1].k[pr[1].n++] = 0;
        pr[2] = keys[i];
        pr[2].n--;
        pr[3] = keys[i];
        pr[3].k[pr[3].n - 1]++;
        for (int j = 0; j < 4; j++) {
            size_t lo = 0, hi = n;   /* the model: first key >= probe */
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (tkey_cmp(&keys[mid], &pr[j]) < 0)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            sst_iter_seek(it, pr[j].k, pr[j].n);
            if (lo == n) {
                cr_assert(!sst_iter_valid(it), "key %zu probe %d: past the end", i, j);
                continue;
            }
            cr_assert(sst_iter_valid(it), "key %zu probe %d", i, j);
            kv_ent_t e;
            sst_iter_entry(it, &e);
            cr_assert(e.klen == keys[lo].n && memcmp(e.key, keys[lo].k, e.klen) == 0,
                      "key %zu probe %d landed on the wrong key", i, j);
            apr_status_t rv = sst_get(t, pr[j].k, pr[j].n, pool, &e);
            int present = tkey_cmp(&keys[lo], &pr[j]) == 0;
            cr_assert_eq(rv, present ? APR_SUCCESS : KV_NOTFOUND, "key %zu probe %d", i, j);
            checked++;
        }
    }
    const char *outside[] = { "", "a", "tenant/", "tenant/0042", "tenant/0041/zz", "tenant/0043/",
                              "tenant/0042/\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", "zzz" };
    for (size_t j = 0; j < sizeof outside / sizeof *outside; j++) {
        tkey_t pr;
        pr.n = strlen(outside[j]);
        memcpy(pr.k, outside[j], pr.n);
        int before = tkey_cmp(&pr, &keys[0]) <= 0;
        sst_iter_seek(it, pr.k, pr.n);
        if (before) {
            kv_ent_t e;
            cr_assert(sst_iter_valid(it), "%s", outside[j]);
            sst_iter_entry(it, &e);
            cr_assert(e.klen == keys[0].n && memcmp(e.key, keys[0].k, e.klen) == 0, "%s", outside[j]);
        }
        else
            cr_assert(!sst_iter_valid(it), "%s: after every key", outside[j]);
    }
    cr_log_info("block search: %d probes over %zu keys", checked, n);
    sst_iter_free(it);
    sst_unref(t);
}

Test(sst, keys_must_increase)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/000003.sst", dir);
    sst_builder_t *b;
    cr_assert_eq(sst_builder_open(&b, path, CODEC_NONE), APR_SUCCESS);
    kv_ent_t e = { "b", 1, "v", 1, 1, 0, ENT_PUT };
    cr_assert_eq(sst_builder_add(b, &e), APR_SUCCESS);
    e.key = "a";
    cr_assert_eq(sst_builder_add(b, &e), KV_INVALID);
    e.key = "b";
    cr_assert_eq(sst_builder_add(b, &e), KV_INVALID, "duplicates refused");
    sst_builder_abandon(b);
    cr_assert_neq(access(path, F_OK), 0, "abandon removes the file");
}

Test(sst, binary_keys_and_large_values)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/000004.sst", dir);
    sst_builder_t *b;
    cr_assert_eq(sst_builder_open(&b, path, CODEC_NONE), APR_SUCCESS);
    size_t big = 1 << 20;
    char *val = malloc(big);
    for (size_t i = 0; i < big; i++)
        val[i] = (char)(i * 7);
    char k1[] = { 0, 0, 1 }, k2[] = { 0, 0, 1, 0 }, k3[] = { (char)0xff };
    kv_ent_t e1 = { k1, 3, val, 10, 1, 0, ENT_PUT };
    kv_ent_t e2 = { k2, 4, val, big, 2, 0, ENT_PUT };
    kv_ent_t e3 = { k3, 1, "", 0, 3, 0, ENT_PUT };
    cr_assert_eq(sst_builder_add(b, &e1), APR_SUCCESS);
    cr_assert_eq(sst_builder_add(b, &e2), APR_SUCCESS);
    cr_assert_eq(sst_builder_add(b, &e3), APR_SUCCESS);
    sst_meta_t meta;
    cr_assert_eq(sst_builder_finish(b, &meta), APR_SUCCESS);
    sst_meta_free(&meta);
    sst_t *t;
    cr_assert_eq(sst_open(&t, path, 4), APR_SUCCESS);
    kv_ent_t e;
    cr_assert_eq(sst_get(t, k2, 4, pool, &e), APR_SUCCESS);
    cr_assert_eq(e.vlen, big);
    cr_assert_eq(memcmp(e.val, val, big), 0);
    cr_assert_eq(sst_get(t, k3, 1, pool, &e), APR_SUCCESS);
    cr_assert_eq(e.vlen, 0);
    cr_assert_eq(sst_get(t, k1, 2, pool, &e), KV_NOTFOUND, "a prefix is another key");
    cr_assert_eq(sst_verify(t), APR_SUCCESS);
    sst_unref(t);
    free(val);
}

/* Flip each byte of a small file in turn: open, every get, a full scan and
 * verify must either report corruption or return exactly the right data. */
Test(sst, every_flipped_byte_is_detected_or_harmless, .timeout = 120)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/000005.sst", dir);
    sst_meta_t meta;
    build(path, 150, &meta);
    sst_meta_free(&meta);
    int fd = open(path, O_RDWR);
    struct stat st;
    fstat(fd, &st);
    int detected = 0, flips = 0;
    /* Read with pread, and through a mapping, where the index and filter
     * are used in place.  Under valgrind every other byte (a minute). */
    off_t stride = RUNNING_ON_VALGRIND ? 2 : 1;
    for (int mapped = 0; mapped < 2; mapped++)
    for (off_t i = mapped && stride > 1; i < st.st_size; i += stride, flips++) {
        unsigned char c, x;
        pread(fd, &c, 1, i);
        x = c ^ 0x5a;
        pwrite(fd, &x, 1, i);
        sst_t *t;
        apr_status_t rv;
        if (mapped) {
            apr_status_t load_rv;
            rv = sst_open_lazy(&t, path, 5, (uint64_t)1 << 30, &load_rv);
            cr_assert_eq(rv, APR_SUCCESS);
            if (load_rv != APR_SUCCESS) {
                sst_unref(t);
                rv = load_rv;
            }
            else
                cr_assert(sst_mapped(t));
        }
        else
            rv = sst_open(&t, path, 5);
        if (rv == APR_SUCCESS) {
            int bad = sst_verify(t) == KV_CORRUPT;
            for (unsigned j = 0; j < 150; j++) {
                char k[32], v[200];
                kv_ent_t e;
                snprintf(k, sizeof k, "k%08u", 2 * j);
                apr_status_t g = sst_get(t, k, strlen(k), pool, &e);
                if (g == KV_CORRUPT) {
                    bad = 1;
                    continue;
                }
                /* The bloom filter may only be damaged into a miss. */
                if (g == KV_NOTFOUND)
                    continue;
                cr_assert_eq(g, APR_SUCCESS);
                if (j % 10 != 9) {
                    size_t vn = tu_val(v, sizeof v, k, j);
                    cr_assert_eq(e.vlen, vn, "byte %ld: wrong value length", (long)i);
                    cr_assert_eq(memcmp(e.val, v, vn), 0, "byte %ld: wrong value", (long)i);
                }
            }
            detected += bad;
            sst_unref(t);
        }
        else {
            cr_assert_eq(rv, KV_CORRUPT, "byte %ld: %d", (long)i, rv);
            detected++;
        }
        pwrite(fd, &c, 1, i);
    }
    close(fd);
    cr_assert_gt(detected, flips * 9 / 10, "only %d of %d flips detected", detected, flips);
}

Test(sst, truncated_file_is_corruption)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/000006.sst", dir);
    sst_meta_t meta;
    build(path, 500, &meta);
    sst_meta_free(&meta);
    struct stat st;
    stat(path, &st);
    for (off_t len = st.st_size - 1; len >= 0; len -= 97) {
        cr_assert_eq(truncate(path, len), 0);
        sst_t *t;
        cr_assert_eq(sst_open(&t, path, 6), KV_CORRUPT, "length %ld", (long)len);
    }
}

/* lz4 and zstd: the same contents read back through gets, a full scan and
 * sst_verify, in less space; a flipped byte in a compressed block is
 * caught by its CRC. */
Test(sst, compressed_files_read_back_smaller)
{
    char plain[4096];
    snprintf(plain, sizeof plain, "%s/000010.sst", dir);
    sst_meta_t meta;
    build(plain, 5000, &meta);
    uint64_t plain_bytes = meta.file_bytes;
    sst_meta_free(&meta);
    int codecs[] = { CODEC_LZ4, CODEC_ZSTD };
    for (int c = 0; c < 2; c++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%06d.sst", dir, 11 + c);
        build_with(path, 5000, &meta, codecs[c]);
        cr_assert_lt(meta.file_bytes, plain_bytes * 3 / 4, "codec %d: %llu vs %llu bytes", codecs[c],
                     (unsigned long long)meta.file_bytes, (unsigned long long)plain_bytes);
        sst_meta_free(&meta);
        sst_t *t;
        cr_assert_eq(sst_open(&t, path, 11 + c), APR_SUCCESS);
        cr_assert_eq(sst_verify(t), APR_SUCCESS);
        for (unsigned i = 0; i < 5000; i += 7) {
            char k[32], v[200];
            snprintf(k, sizeof k, "k%08u", 2 * i);
            kv_ent_t e;
            cr_assert_eq(sst_get(t, k, strlen(k), pool, &e), APR_SUCCESS);
            size_t vn = tu_val(v, sizeof v, k, i);
            if (i % 10 != 9)
                cr_assert(e.vlen == vn && memcmp(e.val, v, vn) == 0, "%s", k);
        }
        sst_iter_t *it;
        cr_assert_eq(sst_iter_new(&it, t), APR_SUCCESS);
        unsigned n = 0;
        for (sst_iter_seek_first(it); sst_iter_valid(it); sst_iter_next(it))
            n++;
        cr_assert_eq(sst_iter_status(it), APR_SUCCESS);
        cr_assert_eq(n, 5000);
        sst_iter_free(it);
        sst_unref(t);
        /* Damage inside the first data block. */
        flip_byte(path, 100, 0x20);
        cr_assert_eq(sst_open(&t, path, 11 + c), APR_SUCCESS);
        cr_assert_eq(sst_verify(t), KV_CORRUPT);
        sst_unref(t);
    }
}

/* Within the opener's budget a file is read through a mapping: lookups and scans answer exactly as with pread, the process's
 * mapped total counts the file while it is open and drops it at the last
 * reference; a file larger than the budget is read with pread. */
Test(sst, mapped_reads_answer_as_pread_and_release_their_budget)
{
    char path[4096];
    build_numbered(path, sizeof path, 21, 4000);
    apr_status_t load_rv;
    sst_t *small, *mapped;
    cr_assert_eq(sst_open_lazy(&small, path, 21, 4096, &load_rv), APR_SUCCESS);
    cr_assert_eq(load_rv, APR_SUCCESS);
    cr_assert_not(sst_mapped(small), "a file over the budget is not mapped");
    cr_assert_eq(sst_mapped_bytes(), 0);
    cr_assert_eq(sst_open_lazy(&mapped, path, 21, (uint64_t)1 << 30, &load_rv), APR_SUCCESS);
    cr_assert_eq(load_rv, APR_SUCCESS);
    cr_assert(sst_mapped(mapped));
    uint64_t held = sst_mapped_bytes();
    /* The whole file: the index and filter are read in the mapping too. */
    cr_assert(held == sst_file_bytes(mapped),
              "mapped %lu of %lu", (unsigned long)held, (unsigned long)sst_file_bytes(mapped));
    /* A second file that would overrun the budget stays on pread. */
    sst_t *over;
    cr_assert_eq(sst_open_lazy(&over, path, 21, held + 1, &load_rv), APR_SUCCESS);
    cr_assert_not(sst_mapped(over));
    sst_unref(over);
    for (unsigned i = 0; i < 4000; i++) {
        char k[32];
        snprintf(k, sizeof k, "k%08u", 2 * i);
        kv_ent_t a, b;
        cr_assert_eq(sst_get(mapped, k, strlen(k), pool, &a), APR_SUCCESS, "%s", k);
        cr_assert_eq(sst_get(small, k, strlen(k), pool, &b), APR_SUCCESS, "%s", k);
        cr_assert_eq(a.seq, b.seq);
        cr_assert_eq(a.type, b.type);
        cr_assert_eq(a.vlen, b.vlen);
        cr_assert_eq(memcmp(a.val, b.val, a.vlen), 0);
        snprintf(k, sizeof k, "k%08u", 2 * i + 1);
        cr_assert_eq(sst_get(mapped, k, strlen(k), pool, &a), KV_NOTFOUND);
    }
    sst_iter_t *it;
    cr_assert_eq(sst_iter_new(&it, mapped), APR_SUCCESS);
    unsigned n = 0;
    for (sst_iter_seek(it, TU_STR("k00001001")); sst_iter_valid(it); sst_iter_next(it)) {
        kv_ent_t e;
        char k[32];
        sst_iter_entry(it, &e);
        snprintf(k, sizeof k, "k%08u", 1002 + 2 * n);
        cr_assert_eq(e.klen, strlen(k));
        cr_assert_eq(memcmp(e.key, k, e.klen), 0);
        n++;
    }
    cr_assert_eq(sst_iter_status(it), APR_SUCCESS);
    cr_assert_eq(n, 4000 - 501);
    sst_iter_free(it);
    cr_assert_eq(sst_verify(mapped), APR_SUCCESS);
    sst_unref(mapped);
    cr_assert_eq(sst_mapped_bytes(), 0, "the last reference gives the budget back");
    sst_unref(small);
}

/* A damaged block in a mapped file is KV_CORRUPT, as with pread. */
Test(sst, mapped_damage_is_corruption)
{
    char path[4096];
    build_numbered(path, sizeof path, 22, 2000);
    flip_byte(path, 100, 0x40);
    apr_status_t load_rv;
    sst_t *t;
    cr_assert_eq(sst_open_lazy(&t, path, 22, (uint64_t)1 << 30, &load_rv), APR_SUCCESS);
    cr_assert_eq(load_rv, APR_SUCCESS);
    cr_assert(sst_mapped(t));
    kv_ent_t e;
    cr_assert_eq(sst_get(t, TU_STR("k00000000"), pool, &e), KV_CORRUPT);
    cr_assert_eq(sst_verify(t), KV_CORRUPT);
    sst_unref(t);
}

/* A file that found no room when it loaded is mapped by a later read once
 * room is freed (compaction retiring a mapped file, say), so the budget
 * goes to the files in use. */
Test(sst, room_freed_later_goes_to_files_in_use)
{
    char path[4096];
    build_numbered(path, sizeof path, 23, 1000);
    apr_status_t load_rv;
    sst_t *first, *second;
    cr_assert_eq(sst_open_lazy(&first, path, 23, 0, &load_rv), APR_SUCCESS);
    sst_unref(first);
    cr_assert_eq(sst_open_lazy(&first, path, 23, (uint64_t)1 << 20, &load_rv), APR_SUCCESS);
    cr_assert(sst_mapped(first));
    uint64_t one = sst_mapped_bytes();
    /* Room for one file only: the second loads unmapped. */
    cr_assert_eq(sst_open_lazy(&second, path, 23, one + one / 2, &load_rv), APR_SUCCESS);
    cr_assert_not(sst_mapped(second));
    kv_ent_t e;
    cr_assert_eq(sst_get(second, TU_STR("k00000010"), pool, &e), APR_SUCCESS);
    cr_assert_not(sst_mapped(second), "no room yet");
    sst_unref(first);
    cr_assert_eq(sst_mapped_bytes(), 0);
    cr_assert_eq(sst_get(second, TU_STR("k00000010"), pool, &e), APR_SUCCESS);
    cr_assert(sst_mapped(second), "the read took the freed room");
    cr_assert_eq(sst_mapped_bytes(), one);
    cr_assert_eq(sst_get(second, TU_STR("k00001998"), pool, &e), APR_SUCCESS);
    cr_assert_eq(e.seq, 100 + 999);
    sst_unref(second);
    cr_assert_eq(sst_mapped_bytes(), 0);
}

/* A footer (valid CRC) whose index offset is so large that
 * index_off + index_len + 4 wraps around to the real bloom offset (found
 * by review helper 22): a mapped file's index is used in place, at
 * map + index_off, before the mapping, and the load crashed reading it.
 * It is damage: KV_CORRUPT, mapped or not. */
Test(sst, mapped_footer_with_wrapping_index_offset_is_corruption)
{
    char path[4096];
    build_numbered(path, sizeof path, 24, 2000);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    int fd = open(path, O_RDWR);
    cr_assert(fd >= 0);
    char f[SST_FOOTER];
    off_t foff = st.st_size - SST_FOOTER;
    cr_assert_eq(pread(fd, f, sizeof f, foff), (ssize_t)sizeof f);
    uint64_t bloom_off = get_u64(f + 12);
    uint32_t index_len = 0x80000000u;
    uint64_t index_off = bloom_off - index_len - SST_TRAILER;   /* wraps */
    cr_assert_gt(index_off, (uint64_t)st.st_size);
    put_u64(f, index_off);
    put_u32(f + 8, index_len);
    put_u32(f + 56, crc32c(f, 56));
    cr_assert_eq(pwrite(fd, f, sizeof f, foff), (ssize_t)sizeof f);
    close(fd);
    apr_status_t load_rv;
    sst_t *t;
    for (int mapped = 1; mapped >= 0; mapped--) {
        cr_assert_eq(sst_open_lazy(&t, path, 24, mapped ? (uint64_t)1 << 30 : 0, &load_rv),
                     APR_SUCCESS);
        cr_assert_eq(load_rv, KV_CORRUPT, "mapped %d: load answered %d", mapped, load_rv);
        kv_ent_t e;
        cr_assert_eq(sst_get(t, TU_STR("k00000000"), pool, &e), KV_CORRUPT);
        sst_unref(t);
        cr_assert_eq(sst_mapped_bytes(), 0);
    }
}
