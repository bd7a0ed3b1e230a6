/* test_bloom.c -- bloom filters and CRC-32C: no false negatives, a low
 * false-positive rate, and checksums that match the standard. */
#include "testutil.h"
#include "bloom.h"
#include "crc32c.h"

Test(bloom, no_false_negatives_and_under_2_percent_false_positives)
{
    enum { N = 10000 };
    uint32_t *h = malloc(N * sizeof(uint32_t));
    for (int i = 0; i < N; i++) {
        char k[32];
        snprintf(k, sizeof k, "key-%d", i);
        h[i] = bloom_hash(k, strlen(k));
    }
    size_t len = bloom_size(N, 10);
    char *f = malloc(len);
    bloom_build(h, N, 10, f);
    for (int i = 0; i < N; i++)
        cr_assert(bloom_may_contain(f, len, h[i]));
    int fp = 0;
    for (int i = 0; i < N; i++) {
        char k[32];
        snprintf(k, sizeof k, "other-%d", i);
        fp += bloom_may_contain(f, len, bloom_hash(k, strlen(k)));
    }
    cr_log_info("bloom false positives: %d of %d", fp, N);
    cr_assert_lt(fp, N / 50, "false-positive rate %d/%d", fp, N);
    free(f);
    free(h);
}

Test(bloom, malformed_filter_answers_maybe)
{
    cr_assert(bloom_may_contain("", 0, 123));
    cr_assert(bloom_may_contain("\0\0\0\0\0\0\0\0\x63", 9, 123), "unknown k");
}

Test(crc32c, matches_standard_vectors)
{
    cr_assert_eq(crc32c("123456789", 9), 0xE3069283u);
    char zeros[32] = { 0 };
    cr_assert_eq(crc32c(zeros, 32), 0x8A9136AAu);
    cr_assert_eq(crc32c_extend(crc32c("1234", 4), "56789", 5), 0xE3069283u);
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
