/* test_wal.c -- log record framing: round trips, torn tails and damaged
 * bytes are never decoded as records. */
#include "testutil.h"
#include "wal.h"

static void make_batch(wal_rec_t *r, int nops)
{
    wal_rec_init(r);
    cr_assert_eq(wal_rec_batch(r), APR_SUCCESS);
    for (int i = 0; i < nops; i++) {
        char k[32], v[64];
        memcpy(k, "key\0", 4);   /* an embedded NUL stays part of the key */
        snprintf(k + 4, sizeof k - 4, "%02d", i);
        snprintf(v, sizeof v, "value-%d", i);
        cr_assert_eq(wal_rec_op(r, i % 3 ? WOP_PUT : WOP_DEL, k, 6, v, strlen(v), (uint64_t)i), APR_SUCCESS);
    }
    wal_rec_seal(r, 1000);
}

Test(wal, batch_roundtrip_keeps_every_operation)
{
    wal_rec_t r;
    make_batch(&r, 50);
    wal_view_t v;
    cr_assert_eq(wal_decode(r.buf, r.len, &v), r.len);
    cr_assert_eq(v.type, WAL_BATCH);
    cr_assert_eq(v.first_seq, 1000);
    cr_assert_eq(v.count, 50);
    size_t pos = 0;
    uint32_t idx;
    kv_ent_t e;
    int n = 0;
    while (wal_batch_next(&v, &pos, &idx, &e) == 1) {
        cr_assert_eq(e.seq, 1000u + (unsigned)n);
        cr_assert_eq(e.klen, 6);
        cr_assert_eq(memcmp(e.key, "key\0", 4), 0);
        if (n % 3) {
            char want[64];
            snprintf(want, sizeof want, "value-%d", n);
            cr_assert_eq(e.type, ENT_PUT);
            cr_assert_eq(e.vlen, strlen(want));
            cr_assert_eq(memcmp(e.val, want, e.vlen), 0);
            cr_assert_eq(e.expire, (uint64_t)n);
        }
        else {
            cr_assert_eq(e.type, ENT_DEL);
        }
        n++;
    }
    cr_assert_eq(n, 50);
    wal_rec_free(&r);
}

Test(wal, replay_stops_at_torn_tail)
{
    wal_rec_t r;
    make_batch(&r, 5);
    wal_view_t v;
    for (size_t cut = 0; cut < r.len; cut++)
        cr_assert_eq(wal_decode(r.buf, cut, &v), 0, "a record cut at %zu decoded", cut);
    wal_rec_free(&r);
}

/* A writer applies its own sealed record without recomputing the
 * checksum: it must read it exactly as wal_decode does, and still refuse
 * a cut one. */
Test(wal, own_sealed_record_decodes_as_from_a_file)
{
    wal_rec_t r;
    make_batch(&r, 20);
    wal_view_t a, b;
    cr_assert_eq(wal_decode(r.buf, r.len, &a), r.len);
    cr_assert_eq(wal_decode_sealed(r.buf, r.len, &b), r.len);
    cr_assert_eq(a.type, b.type);
    cr_assert_eq(a.first_seq, b.first_seq);
    cr_assert_eq(a.count, b.count);
    cr_assert_eq(a.len, b.len);
    cr_assert_eq(a.payload, b.payload);
    for (size_t cut = 0; cut < r.len; cut++)
        cr_assert_eq(wal_decode_sealed(r.buf, cut, &b), 0, "a record cut at %zu decoded", cut);
    wal_rec_free(&r);
}

Test(wal, flipped_bit_fails_checksum)
{
    wal_rec_t r;
    make_batch(&r, 3);
    wal_view_t v;
    for (size_t i = 0; i < r.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            r.buf[i] ^= (char)(1 << bit);
            cr_assert_eq(wal_decode(r.buf, r.len, &v), 0, "flip at %zu bit %d accepted", i, bit);
            r.buf[i] ^= (char)(1 << bit);
        }
    }
    cr_assert_eq(wal_decode(r.buf, r.len, &v), r.len);
    wal_rec_free(&r);
}

Test(wal, rotate_record_names_next_log)
{
    wal_rec_t r;
    wal_rec_init(&r);
    cr_assert_eq(wal_rec_rotate(&r, 42), APR_SUCCESS);
    wal_rec_seal(&r, 0);
    wal_view_t v;
    cr_assert_eq(wal_decode(r.buf, r.len, &v), r.len);
    cr_assert_eq(v.type, WAL_ROTATE);
    cr_assert_eq(v.next_log, 42);
    wal_rec_free(&r);
}

Test(wal, records_back_to_back_decode_in_order)
{
    char buf[4096];
    size_t len = 0;
    for (int i = 0; i < 10; i++) {
        wal_rec_t r;
        wal_rec_init(&r);
        wal_rec_batch(&r);
        wal_rec_op(&r, WOP_PUT, "k", 1, "v", 1, 0);
        wal_rec_seal(&r, (uint64_t)i + 1);
        memcpy(buf + len, r.buf, r.len);
        len += r.len;
        wal_rec_free(&r);
    }
    size_t pos = 0;
    int n = 0;
    wal_view_t v;
    size_t step;
    while ((step = wal_decode(buf + pos, len - pos, &v)) > 0) {
        cr_assert_eq(v.first_seq, (uint64_t)n + 1);
        pos += step;
        n++;
    }
    cr_assert_eq(n, 10);
    cr_assert_eq(pos, len);
}
