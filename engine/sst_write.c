/* sst_write.c -- building an SST file (sst.h) from entries in increasing
 * key order: data blocks of about SST_BLOCK_BYTES, then the index, the
 * bloom filter, the footer, and the header rewritten with the entry
 * count.  Output is buffered and written in large pieces.  With a codec,
 * each data block is stored compressed when that saves at least an
 * eighth, else as it is, behind a one-byte tag saying which. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "sst.h"
#include "sst_format.h"
#include "bloom.h"
#include "compress.h"
#include "coding.h"
#include "crc32c.h"
#include "fileio.h"
#include "kvlsm.h"

#define OUT_BUF (256u << 10)

typedef struct {
    char *data;
    size_t len, cap;
} buf_t;

struct sst_builder {
    int fd;
    char *path;
    apr_status_t err;
    uint64_t off;          /* file offset of out.data[0] */
    buf_t out;             /* pending file bytes */
    buf_t block;           /* the data block being filled */
    buf_t index;           /* index entries */
    uint32_t nblocks;
    uint32_t *hashes;
    size_t nhashes, hcap;
    uint64_t entries, min_seq, max_seq;
    char *last;            /* the last key added */
    size_t last_len, last_cap;
    char *first;
    size_t first_len;
    int codec;             /* CODEC_*: data blocks are tagged unless NONE */
    buf_t packed;          /* a data block as stored: tag, raw length, body */
};

static apr_status_t buf_reserve(buf_t *b, size_t more)
{
    if (b->len + more <= b->cap)
        return APR_SUCCESS;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more)
        cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d)
        return APR_ENOMEM;
    b->data = d;
    b->cap = cap;
    return APR_SUCCESS;
}

static apr_status_t out_flush(sst_builder_t *b)
{
    if (b->out.len == 0)
        return APR_SUCCESS;
    apr_status_t rv = fio_pwrite_full(b->fd, b->out.data, b->out.len, b->off);
    if (rv)
        return rv;
    b->off += b->out.len;
    b->out.len = 0;
    return APR_SUCCESS;
}

static apr_status_t out_write(sst_builder_t *b, const void *p, size_t n)
{
    apr_status_t rv;
    if (b->out.len + n > OUT_BUF && (rv = out_flush(b)))
        return rv;
    if ((rv = buf_reserve(&b->out, n)))
        return rv;
    memcpy(b->out.data + b->out.len, p, n);
    b->out.len += n;
    return APR_SUCCESS;
}

/* Write a block body followed by its checksum; returns where it went. */
static apr_status_t write_block(sst_builder_t *b, const char *body, size_t n,
                                uint64_t *at)
{
    char crc[4];
    *at = b->off + b->out.len;
    put_u32(crc, crc32c(body, n));
    apr_status_t rv = out_write(b, body, n);
    return rv ? rv : out_write(b, crc, 4);
}

/* The block as stored in a tagged file: [codec u8][raw length varint]
 * [compressed body], or [0][body] when compressing does not pay. */
static apr_status_t pack_block(sst_builder_t *b, const char **body, size_t *n)
{
    size_t raw = b->block.len, bound = comp_bound(b->codec, raw);
    b->packed.len = 0;
    apr_status_t rv = buf_reserve(&b->packed, 1 + VARINT_MAX + (bound > raw ? bound : raw));
    if (rv)
        return rv;
    char *p = put_varint(b->packed.data + 1, raw);
    size_t head = (size_t)(p - b->packed.data), clen;
    if (comp_encode(b->codec, b->block.data, raw, p, b->packed.cap - head, &clen) == APR_SUCCESS
        && head + clen <= raw - raw / 8) {
        b->packed.data[0] = (char)b->codec;
        b->packed.len = head + clen;
    }
    else {
        b->packed.data[0] = CODEC_NONE;
        memcpy(b->packed.data + 1, b->block.data, raw);
        b->packed.len = 1 + raw;
    }
    *body = b->packed.data;
    *n = b->packed.len;
    return APR_SUCCESS;
}

static apr_status_t finish_block(sst_builder_t *b)
{
    if (b->block.len == 0)
        return APR_SUCCESS;
    uint64_t at;
    const char *body = b->block.data;
    size_t n = b->block.len;
    apr_status_t rv = b->codec != CODEC_NONE ? pack_block(b, &body, &n) : APR_SUCCESS;
    if (rv == APR_SUCCESS)
        rv = write_block(b, body, n, &at);
    if (rv)
        return rv;
    /* Index entry: the block's last key, its offset and body size. */
    if ((rv = buf_reserve(&b->index, VARINT_MAX + b->last_len + 12)))
        return rv;
    char *p = put_varint(b->index.data + b->index.len, b->last_len);
    memcpy(p, b->last, b->last_len);
    p += b->last_len;
    put_u64(p, at);
    put_u32(p + 8, (uint32_t)n);
    b->index.len = (size_t)(p + 12 - b->index.data);
    b->nblocks++;
    b->block.len = 0;
    return APR_SUCCESS;
}

apr_status_t sst_builder_open(sst_builder_t **bp, const char *path, int codec)
{
    sst_builder_t *b = calloc(1, sizeof(*b));
    if (!b)
        return APR_ENOMEM;
    b->codec = codec == CODEC_LZ4 || codec == CODEC_ZSTD ? codec : CODEC_NONE;
    b->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (b->fd < 0) {
        apr_status_t rv = APR_FROM_OS_ERROR(errno);
        free(b);
        return rv;
    }
    size_t plen = strlen(path);
    b->path = malloc(plen + 1);
    if (!b->path) {
        close(b->fd);
        fio_unlink(path);
        free(b);
        return APR_ENOMEM;
    }
    memcpy(b->path, path, plen + 1);
    b->min_seq = UINT64_MAX;
    /* Room for the header, written last when the count is known. */
    b->off = SST_HEADER;
    *bp = b;
    return APR_SUCCESS;
}

apr_status_t sst_builder_add(sst_builder_t *b, const kv_ent_t *e)
{
    if (b->err)
        return b->err;
    if (b->entries && key_cmp(e->key, e->klen, b->last, b->last_len) <= 0)
        return KV_INVALID;
    size_t vlen = e->type == ENT_PUT ? e->vlen : 0;
    apr_status_t rv = buf_reserve(&b->block, 4 * VARINT_MAX + 1 + e->klen + vlen);
    if (rv)
        return b->err = rv;
    char *p = b->block.data + b->block.len;
    p = put_varint(p, e->klen);
    p = put_varint(p, vlen);
    p = put_varint(p, e->seq);
    *p++ = (char)e->type;
    p = put_varint(p, e->expire);
    memcpy(p, e->key, e->klen);
    p += e->klen;
    if (vlen)
        memcpy(p, e->val, vlen);
    p += vlen;
    b->block.len = (size_t)(p - b->block.data);

    if (b->nhashes == b->hcap) {
        size_t cap = b->hcap ? b->hcap * 2 : 1024;
        uint32_t *h = realloc(b->hashes, cap * sizeof(uint32_t));
        if (!h)
            return b->err = APR_ENOMEM;
        b->hashes = h;
        b->hcap = cap;
    }
    b->hashes[b->nhashes++] = bloom_hash(e->key, e->klen);
    if (e->klen > b->last_cap) {
        char *l = realloc(b->last, e->klen);
        if (!l)
            return b->err = APR_ENOMEM;
        b->last = l;
        b->last_cap = e->klen;
    }
    if (e->klen)
        memcpy(b->last, e->key, e->klen);
    b->last_len = e->klen;
    if (b->entries == 0) {
        b->first = malloc(e->klen ? e->klen : 1);
        if (!b->first)
            return b->err = APR_ENOMEM;
        memcpy(b->first, e->key, e->klen);
        b->first_len = e->klen;
    }
    b->entries++;
    if (e->seq < b->min_seq)
        b->min_seq = e->seq;
    if (e->seq > b->max_seq)
        b->max_seq = e->seq;
    if (b->block.len >= SST_BLOCK_BYTES && (rv = finish_block(b)))
        return b->err = rv;
    return APR_SUCCESS;
}

uint64_t sst_builder_bytes(const sst_builder_t *b)
{
    return b->off + b->out.len + b->block.len;
}

uint64_t sst_builder_entries(const sst_builder_t *b)
{
    return b->entries;
}

static void builder_free(sst_builder_t *b)
{
    free(b->out.data);
    free(b->block.data);
    free(b->packed.data);
    free(b->index.data);
    free(b->hashes);
    free(b->last);
    free(b->first);
    free(b->path);
    free(b);
}

void sst_builder_abandon(sst_builder_t *b)
{
    close(b->fd);
    fio_unlink(b->path);
    builder_free(b);
}

apr_status_t sst_builder_finish(sst_builder_t *b, sst_meta_t *meta)
{
    apr_status_t rv = b->err;
    uint64_t index_off = 0, bloom_off = 0;
    size_t bloom_len = bloom_size(b->nhashes, SST_BLOOM_BITS);
    char *bloom = NULL;
    if (!rv)
        rv = finish_block(b);
    if (!rv) {
        /* Index body: block count, then the entries. */
        char cnt[4];
        put_u32(cnt, b->nblocks);
        if (!(rv = buf_reserve(&b->index, 4))) {
            memmove(b->index.data + 4, b->index.data, b->index.len);
            memcpy(b->index.data, cnt, 4);
            b->index.len += 4;
            rv = write_block(b, b->index.data, b->index.len, &index_off);
        }
    }
    if (!rv && !(bloom = malloc(bloom_len)))
        rv = APR_ENOMEM;
    if (!rv) {
        bloom_build(b->hashes, b->nhashes, SST_BLOOM_BITS, bloom);
        rv = write_block(b, bloom, bloom_len, &bloom_off);
    }
    free(bloom);
    if (!rv) {
        char f[SST_FOOTER];
        put_u64(f, index_off);
        put_u32(f + 8, (uint32_t)b->index.len);
        put_u64(f + 12, bloom_off);
        put_u32(f + 20, (uint32_t)bloom_len);
        put_u64(f + 24, b->entries);
        put_u64(f + 32, b->entries ? b->min_seq : 0);
        put_u64(f + 40, b->max_seq);
        put_u64(f + 48, SST_MAGIC_U64);
        put_u32(f + 56, crc32c(f, 56));
        rv = out_write(b, f, sizeof f);
    }
    if (!rv)
        rv = out_flush(b);
    if (!rv) {
        char h[SST_HEADER];
        memcpy(h, SST_MAGIC, 8);
        put_u32(h + 8, SST_VERSION);
        put_u32(h + 12, b->codec != CODEC_NONE ? SST_FLAG_TAGGED : 0);
        put_u64(h + 16, b->entries);
        put_u32(h + 24, 0);
        put_u32(h + 28, crc32c(h, 28));
        rv = fio_pwrite_full(b->fd, h, sizeof h, 0);
    }
    if (!rv)
        rv = fio_fdatasync(b->fd);
    if (!rv && meta) {
        memset(meta, 0, sizeof(*meta));
        meta->entries = b->entries;
        meta->file_bytes = b->off;
        meta->min_seq = b->entries ? b->min_seq : 0;
        meta->max_seq = b->max_seq;
        meta->smallest = b->first;
        meta->smallest_len = b->first_len;
        b->first = NULL;
        meta->largest = malloc(b->last_len ? b->last_len : 1);
        if (!meta->largest) {
            rv = APR_ENOMEM;
            free(meta->smallest);
            meta->smallest = NULL;
        }
        else {
            memcpy(meta->largest, b->last, b->last_len);
            meta->largest_len = b->last_len;
        }
    }
    if (close(b->fd) < 0 && !rv)
        rv = APR_FROM_OS_ERROR(errno);
    if (rv)
        fio_unlink(b->path);
    builder_free(b);
    return rv;
}

void sst_meta_free(sst_meta_t *m)
{
    free(m->smallest);
    free(m->largest);
    m->smallest = m->largest = NULL;
}
