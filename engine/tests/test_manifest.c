/* test_manifest.c -- the manifest survives a round trip, is replaced
 * atomically, and a damaged one is reported, never trusted. */
#include <fcntl.h>
#include <sys/stat.h>
#include "testutil.h"
#include "manifest.h"

static void sample(manifest_t *m)
{
    mf_init(m);
    m->generation = 7;
    m->log_start = 12;
    m->next_sst = 30;
    m->last_seq = 99999;
    for (int i = 0; i < 20; i++) {
        char lo[16], hi[16];
        snprintf(lo, sizeof lo, "a%03d", i);
        snprintf(hi, sizeof hi, "z%03d", i);
        mf_file_t f = { i % KV_MAX_LEVELS, (uint64_t)i + 1, 1000u * (unsigned)i, 10, 1, 2,
                        lo, strlen(lo), hi, strlen(hi) };
        cr_assert_eq(mf_add(m, &f), APR_SUCCESS);
    }
}

Test(manifest, roundtrip_keeps_every_field)
{
    char *dir = tu_tmpdir();
    manifest_t m, r;
    sample(&m);
    cr_assert_eq(mf_write(dir, &m), APR_SUCCESS);
    cr_assert_eq(mf_read(dir, &r, NULL, NULL), APR_SUCCESS);
    cr_assert_eq(r.generation, 7);
    cr_assert_eq(r.log_start, 12);
    cr_assert_eq(r.next_sst, 30);
    cr_assert_eq(r.last_seq, 99999);
    cr_assert_eq(r.nfiles, 20);
    for (int i = 0; i < 20; i++) {
        cr_assert_eq(r.files[i].level, m.files[i].level);
        cr_assert_eq(r.files[i].number, m.files[i].number);
        cr_assert_eq(r.files[i].bytes, m.files[i].bytes);
        cr_assert_eq(r.files[i].smallest_len, 4);
        cr_assert_eq(memcmp(r.files[i].largest, m.files[i].largest, 4), 0);
    }
    mf_free(&m);
    mf_free(&r);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s/MANIFEST.tmp", dir);
    cr_assert_neq(access(tmp, F_OK), 0, "temporary file left behind");
    tu_rmrf(dir);
    free(dir);
}

Test(manifest, every_flipped_byte_is_corruption)
{
    char *dir = tu_tmpdir();
    manifest_t m;
    sample(&m);
    cr_assert_eq(mf_write(dir, &m), APR_SUCCESS);
    mf_free(&m);
    char path[4096];
    snprintf(path, sizeof path, "%s/MANIFEST", dir);
    int fd = open(path, O_RDWR);
    struct stat st;
    fstat(fd, &st);
    for (off_t i = 0; i < st.st_size; i++) {
        unsigned char c;
        pread(fd, &c, 1, i);
        unsigned char x = c ^ 0x40;
        pwrite(fd, &x, 1, i);
        manifest_t r;
        cr_assert_eq(mf_read(dir, &r, NULL, NULL), KV_CORRUPT, "flip at %ld accepted", (long)i);
        pwrite(fd, &c, 1, i);
    }
    /* Truncations too. */
    for (off_t len = 0; len < st.st_size; len += 7) {
        ftruncate(fd, len);
        manifest_t r;
        cr_assert_eq(mf_read(dir, &r, NULL, NULL), KV_CORRUPT);
    }
    close(fd);
    tu_rmrf(dir);
    free(dir);
}

Test(manifest, missing_file_is_enoent)
{
    char *dir = tu_tmpdir();
    manifest_t r;
    cr_assert(APR_STATUS_IS_ENOENT(mf_read(dir, &r, NULL, NULL)));
    tu_rmrf(dir);
    free(dir);
}
