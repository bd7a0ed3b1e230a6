/* wal.c -- encoding and decoding of write-ahead log records (wal.h).
 * Pure byte manipulation: no file I/O lives here, so the framing can be
 * tested and fuzzed on buffers. */
#include <stdlib.h>
#include "wal.h"
#include "coding.h"
#include "crc32c.h"

#define BATCH_HEAD 12   /* first_seq u64, count u32 */

void wal_rec_init(wal_rec_t *r)
{
    r->buf = NULL;
    r->len = r->cap = 0;
    r->count = 0;
}

void wal_rec_free(wal_rec_t *r)
{
    free(r->buf);
    wal_rec_init(r);
}

static apr_status_t reserve(wal_rec_t *r, size_t more)
{
    if (r->len + more <= r->cap)
        return APR_SUCCESS;
    size_t cap = r->cap ? r->cap : 256;
    while (cap < r->len + more)
        cap *= 2;
    char *nb = realloc(r->buf, cap);
    if (!nb)
        return APR_ENOMEM;
    r->buf = nb;
    r->cap = cap;
    return APR_SUCCESS;
}

apr_status_t wal_rec_batch(wal_rec_t *r)
{
    apr_status_t rv = reserve(r, WAL_HEADER + BATCH_HEAD);
    if (rv)
        return rv;
    r->len = WAL_HEADER + BATCH_HEAD;
    r->count = 0;
    r->buf[8] = WAL_BATCH;
    return APR_SUCCESS;
}

apr_status_t wal_rec_op(wal_rec_t *r, int op, const char *key, size_t klen,
                        const char *val, size_t vlen, uint64_t expire)
{
    size_t need = 1 + VARINT_MAX + klen + (op == WOP_PUT ? 2 * VARINT_MAX + vlen : 0);
    if (r->len + need - WAL_HEADER > WAL_MAX_PAYLOAD)
        return APR_ENOSPC;
    apr_status_t rv = reserve(r, need);
    if (rv)
        return rv;
    char *p = r->buf + r->len;
    *p++ = (char)op;
    p = put_varint(p, klen);
    memcpy(p, key, klen);
    p += klen;
    if (op == WOP_PUT) {
        p = put_varint(p, expire);
        p = put_varint(p, vlen);
        if (vlen)
            memcpy(p, val, vlen);
        p += vlen;
    }
    r->len = (size_t)(p - r->buf);
    r->count++;
    return APR_SUCCESS;
}

apr_status_t wal_rec_rotate(wal_rec_t *r, uint64_t next_log)
{
    apr_status_t rv = reserve(r, WAL_HEADER + 8);
    if (rv)
        return rv;
    r->buf[8] = WAL_ROTATE;
    put_u64(r->buf + WAL_HEADER, next_log);
    r->len = WAL_HEADER + 8;
    r->count = 0;
    return APR_SUCCESS;
}

void wal_rec_seal(wal_rec_t *r, uint64_t first_seq)
{
    if (r->buf[8] == WAL_BATCH) {
        put_u64(r->buf + WAL_HEADER, first_seq);
        put_u32(r->buf + WAL_HEADER + 8, r->count);
    }
    put_u32(r->buf + 4, (uint32_t)(r->len - WAL_HEADER));
    /* The checksum covers the length too, so a torn length cannot pass. */
    put_u32(r->buf, crc32c(r->buf + 4, r->len - 4));
}

static size_t decode(const char *buf, size_t avail, wal_view_t *v, int check_crc)
{
    if (avail < WAL_HEADER)
        return 0;
    uint32_t len = get_u32(buf + 4);
    if (len > WAL_MAX_PAYLOAD || (size_t)len > avail - WAL_HEADER)
        return 0;
    if (check_crc && crc32c(buf + 4, (size_t)len + 5) != get_u32(buf))
        return 0;
    v->type = (unsigned char)buf[8];
    v->payload = buf + WAL_HEADER;
    v->len = len;
    v->first_seq = 0;
    v->count = 0;
    v->next_log = 0;
    if (v->type == WAL_BATCH) {
        if (len < BATCH_HEAD)
            return 0;
        v->first_seq = get_u64(v->payload);
        v->count = get_u32(v->payload + 8);
    }
    else if (v->type == WAL_ROTATE) {
        if (len != 8)
            return 0;
        v->next_log = get_u64(v->payload);
    }
    else {
        return 0;
    }
    return WAL_HEADER + (size_t)len;
}

size_t wal_decode(const char *buf, size_t avail, wal_view_t *v)
{
    return decode(buf, avail, v, 1);
}

size_t wal_decode_sealed(const char *buf, size_t avail, wal_view_t *v)
{
    return decode(buf, avail, v, 0);
}

int wal_is_torn(const char *buf, size_t avail)
{
    if (avail < WAL_HEADER)
        return 1;
    uint32_t len = get_u32(buf + 4);
    return len > WAL_MAX_PAYLOAD || (size_t)len > avail - WAL_HEADER;
}

int wal_batch_next(const wal_view_t *v, size_t *pos, uint32_t *index, kv_ent_t *e)
{
    if (*pos == 0) {
        *pos = BATCH_HEAD;
        *index = 0;
    }
    const char *p = v->payload + *pos, *end = v->payload + v->len;
    if (p == end)
        return *index == v->count ? 0 : -1;
    if (*index >= v->count)
        return -1;
    uint64_t klen, vlen = 0, expire = 0;
    int op = (unsigned char)*p++;
    if (op != WOP_PUT && op != WOP_DEL)
        return -1;
    if (!(p = get_varint(p, end, &klen)) || klen > (uint64_t)(end - p))
        return -1;
    e->key = p;
    e->klen = klen;
    p += klen;
    e->val = NULL;
    if (op == WOP_PUT) {
        if (!(p = get_varint(p, end, &expire)) || !(p = get_varint(p, end, &vlen))
            || vlen > (uint64_t)(end - p))
            return -1;
        e->val = p;
        p += vlen;
    }
    e->vlen = vlen;
    e->expire = expire;
    e->type = op == WOP_PUT ? ENT_PUT : ENT_DEL;
    e->seq = v->first_seq + *index;
    (*index)++;
    *pos = (size_t)(p - v->payload);
    return 1;
}
