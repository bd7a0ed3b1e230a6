/* test_bloom.c -- bloom filters and CRC-32C: no false negatives, a low
 * false-positive rate, and checksums that match the standard. */
#include "testutil.h"
#include "bloom.h"
#include "crc32c.h"

typedef size_t (*size_fn)(size_t, int);
typedef void (*build_fn)(const uint32_t *, size_t, int, char *);

/* Builds a filter over key-0..key-(n-1) with the given format; returns
 * how many of n other keys it lets through, after checking every key in
 * it is let through. */
static int false_positives(size_fn size, build_fn build, int n, char **fout, size_t *lenout)
{
    uint32_t *h = malloc((size_t)n * sizeof(uint32_t));
    for (int i = 0; i < n; i++) {
        char k[32];
        snprintf(k, sizeof k, "key-%d", i);
        h[i] = bloom_hash(k, strlen(k));
    }
    size_t len = size((size_t)n, 10);
    char *f = malloc(len);
    build(h, (size_t)n, 10, f);
    for (int i = 0; i < n; i++)
        cr_assert(bloom_may_contain(f, len, h[i]), "key-%d ruled out", i);
    int fp = 0;
    for (int i = 0; i < n; i++) {
        char k[32];
        snprintf(k, sizeof k, "other-%d", i);
        fp += bloom_may_contain(f, len, bloom_hash(k, strlen(k)));
    }
    free(h);
    if (fout) {
        *fout = f;
        *lenout = len;
    }
    else
        free(f);
    return fp;
}

Test(bloom, no_false_negatives_and_under_2_percent_false_positives)
{
    int sizes[] = { 1, 7, 100, 10000, 100000 };
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        int n = sizes[i], fp = false_positives(bloom_size, bloom_build, n, NULL, NULL);
        cr_log_info("blocked bloom, %d keys: %d false positives of %d", n, fp, n);
        if (n >= 10000)
            cr_assert_lt(fp, n / 50, "false-positive rate %d/%d", fp, n);
    }
}

/* Files written before the blocked format keep their filters: this build
 * still reads them, rules keys out with them, and never wrongly. */
Test(bloom, first_format_filters_are_still_read)
{
    char *f;
    size_t len;
    int fp = false_positives(bloom_size_v1, bloom_build_v1, 10000, &f, &len);
    cr_assert_lt(fp, 10000 / 50, "false-positive rate %d/10000", fp);
    cr_assert_eq((unsigned char)f[len - 1], 6, "the first format's trailer is k alone");
    free(f);
}

/* One key's probes all land in one 64-byte block of the array, and the
 * trailer is 0x40 | k: a build that knows only the first format reads a
 * k above 30 and answers "maybe", never a false "absent". */
Test(bloom, blocked_probes_of_a_key_share_one_block)
{
    enum { N = 2000 };
    uint32_t h[N];
    for (int i = 0; i < N; i++) {
        char k[32];
        snprintf(k, sizeof k, "key-%d", i);
        h[i] = bloom_hash(k, strlen(k));
    }
    size_t len = bloom_size(N, 10), nblocks = (len - 1) / 64;
    cr_assert_eq((len - 1) % 64, 0);
    cr_assert_geq((len - 1) * 8, (size_t)N * 10);
    cr_assert_gt(nblocks, 30);
    char *f = malloc(len), *g = malloc(len);
    bloom_build(h, N, 10, f);
    cr_assert_eq((unsigned char)f[len - 1], 0x40 | 6);
    cr_assert_gt((unsigned char)f[len - 1], 30, "an older build must not read it as k");
    for (int i = 0; i < N; i += 97) {
        /* Clearing exactly one block rules the key out: the one its
         * probes live in. */
        int needed = 0;
        for (size_t b = 0; b < nblocks; b++) {
            memcpy(g, f, len);
            memset(g + b * 64, 0, 64);
            needed += !bloom_may_contain(g, len, h[i]);
        }
        cr_assert_eq(needed, 1, "key-%d depends on %d blocks", i, needed);
    }
    free(g);
    free(f);
}

Test(bloom, malformed_filter_answers_maybe)
{
    cr_assert(bloom_may_contain("", 0, 123));
    cr_assert(bloom_may_contain("\0\0\0\0\0\0\0\0\x63", 9, 123), "unknown k");
    char f[65] = { 0 };
    f[64] = 0x40;   /* blocked, k = 0 */
    cr_assert(bloom_may_contain(f, 65, 123), "blocked with k 0");
    f[64] = 0x46;
    cr_assert(!bloom_may_contain(f, 65, 123), "an empty blocked filter rules a key out");
    cr_assert(bloom_may_contain(f + 1, 64, 123), "blocked, not whole blocks");
}

Test(crc32c, matches_standard_vectors)
{
    cr_assert_eq(crc32c("123456789", 9), 0xE3069283u);
    char zeros[32] = { 0 };
    cr_assert_eq(crc32c(zeros, 32), 0x8A9136AAu);
    cr_assert_eq(crc32c_extend(crc32c("1234", 4), "56789", 5), 0xE3069283u);
}

/* Long buffers go three streams at a time, 768 bytes a round: every
 * length around and across those rounds, any start, and a CRC extended
 * piece by piece, agree with the byte-at-a-time table. */
Test(crc32c, three_stream_path_agrees_across_rounds)
{
    enum { MAX = 5000 };
    char *buf = malloc(MAX + 8);
    srand(13);
    for (size_t i = 0; i < MAX + 8; i++)
        buf[i] = (char)rand();
    for (size_t n = 0; n <= MAX; n += (n < 2400 ? 1 : 7))
        for (size_t off = 0; off < 8; off += 3)
            cr_assert_eq(crc32c(buf + off, n), crc32c_portable(0, buf + off, n), "length %zu at %zu", n, off);
    uint32_t whole = crc32c(buf, MAX), pieces = 0;
    for (size_t at = 0; at < MAX;) {
        size_t k = (size_t)rand() % 2000;
        if (k > MAX - at)
            k = MAX - at;
        pieces = crc32c_extend(pieces, buf + at, k);
        at += k;
    }
    cr_assert_eq(pieces, whole);
    free(buf);
}

Test(crc32c, hardware_and_table_paths_agree)
{
    char buf[1000];
    srand(7);
    for (int round = 0; round < 200; round++) {
        size_t n = (size_t)rand() % sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = (char)rand();
        cr_assert_eq(crc32c(buf, n), crc32c_portable(0, buf, n));
    }
}
