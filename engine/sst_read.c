/* sst_read.c -- reading SST files (sst.h).  Loading a file verifies the
 * header, footer, index and bloom filter (at open, or at first use for a
 * handle opened lazily).  Within the opener's mapping budget the whole
 * file is mapped read-only and the index and filter are used where they
 * lie; otherwise they are copied into memory and data blocks are read
 * with pread.  Either way this process keeps 12 bytes a block of its own
 * (where its index entry starts, and find_block's prefix).  Blocks are
 * checked against their CRC before any byte is parsed, with every length
 * bounds-checked, so a damaged file gives KV_CORRUPT and never a crash.
 * Safe for concurrent readers. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include "sst.h"
#include "sst_format.h"
#include "compress.h"
#include "bloom.h"
#include "coding.h"
#include "crc32c.h"
#include "fileio.h"
#include "kvlsm.h"

/* One data block as its index entry describes it (decoded on use). */
typedef struct {
    const char *last;      /* its last key, in the index */
    size_t last_len;
    uint64_t off;
    uint32_t len;          /* body bytes, without the CRC */
} blk_t;

struct sst {
    int refs;
    int fd;
    int loaded;            /* index and bloom in memory (atomic; set once) */
    pthread_mutex_t load_mu;
    int tagged;            /* data blocks carry a codec tag (compressed file) */
    uint8_t *verified;     /* a bit per data block whose CRC held (atomic) */
    uint64_t number, file_bytes, entries;
    uint64_t data_end;     /* where the data blocks end (the index starts) */
    uint64_t map_limit;    /* the opener's mapping budget (0: never map) */
    const char *map;       /* the whole file mapped, or NULL: pread the data
                              blocks (atomic: set once, by sst_try_map) */
    char *index;           /* index block body */
    uint32_t *ent;         /* where each block's entry starts in it: 4 bytes
                              a block of this process's memory, where a
                              decoded copy would take 32 */
    int own_index;         /* index and bloom are copies in this process's
                              memory (else they point into the mapping) */
    uint64_t private_bytes; /* what the load holds in this process's memory */
    uint32_t nblocks;
    /* find_block's compact copy of the index: every block's last key
     * shares its first `skip` bytes (those of the first and the last block's
     * last keys), and pfx[i] is the next 8 bytes of block i's, big-endian,
     * zero-padded: a binary search over 8-byte integers in one array,
     * touching a few cache lines, not one key per step. */
    uint64_t *pfx;
    size_t skip;
    char *bloom;
    size_t bloom_len;
};

/* Block i's index entry, which the load checked whole. */
static blk_t blk(const sst_t *t, uint32_t i)
{
    const char *p = t->index + t->ent[i];
    uint64_t klen = 0;
    p = get_varint(p, p + 10, &klen);
    blk_t b = { p, (size_t)klen, get_u64(p + klen), get_u32(p + klen + 8) };
    return b;
}

/* Read a block and check its CRC.  *buf is reused/grown (malloc). */
static apr_status_t read_block(const sst_t *t, uint64_t off, uint32_t len,
                               char **buf, size_t *cap)
{
    size_t need = (size_t)len + SST_TRAILER;
    if (need > *cap) {
        char *b = realloc(*buf, need);
        if (!b)
            return APR_ENOMEM;
        *buf = b;
        *cap = need;
    }
    apr_status_t rv = fio_pread_full(t->fd, *buf, need, off);
    if (rv == APR_EOF)
        return KV_CORRUPT;
    if (rv)
        return rv;
    if (crc32c(*buf, len) != get_u32(*buf + len))
        return KV_CORRUPT;
    return APR_SUCCESS;
}

/* Bytes of SST data this process holds mapped, against every handle's
 * budget: a mapped page a lookup touched counts in the process's resident
 * set, so the budget is what bounds it (atomic). */
static uint64_t mapped_total;

int sst_mapped(const sst_t *t)
{
    return __atomic_load_n(&t->map, __ATOMIC_ACQUIRE) != NULL;
}

uint64_t sst_mapped_bytes(void)
{
    return __atomic_load_n(&mapped_total, __ATOMIC_RELAXED);
}

/* Bytes of this process's own memory that loaded SSTs hold: each block's
 * entry offset and prefix, a bit per block, and the index and filter
 * themselves of files read with pread (atomic). */
static uint64_t private_total;

uint64_t sst_private_bytes(void)
{
    return __atomic_load_n(&private_total, __ATOMIC_RELAXED);
}

/* Map the file if the budget has room for all of it; otherwise
 * (or if mmap fails) the file is read with pread, as ever.  Tried when the
 * file loads and again by reads while it is not mapped (sst_map_late), so
 * room that compaction frees goes to the files in use.  Caller holds
 * load_mu.  Fault builds never map: their injected read errors live in
 * the pread path. */
static void sst_try_map(sst_t *t)
{
#ifdef KV_FAULT_INJECT
    (void)t;
#else
    uint64_t len = t->file_bytes, cur = __atomic_load_n(&mapped_total, __ATOMIC_RELAXED);
    if (!t->map_limit || t->map || len <= SST_HEADER || len > SIZE_MAX)
        return;
    do {
        if (cur + len > t->map_limit)
            return;
    } while (!__atomic_compare_exchange_n(&mapped_total, &cur, cur + len, 1,
                                          __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    void *m = mmap(NULL, (size_t)len, PROT_READ, MAP_SHARED, t->fd, 0);
    if (m == MAP_FAILED) {
        __atomic_fetch_sub(&mapped_total, len, __ATOMIC_RELAXED);
        return;
    }
    /* Point lookups touch one block: no read-ahead around it. */
    madvise(m, (size_t)len, MADV_RANDOM);
    __atomic_store_n(&t->map, (const char *)m, __ATOMIC_RELEASE);
#endif
}

/* For a read of a file that is not mapped but may be: map it now if the
 * budget has room (a look at the counter, no lock, when it has none) and
 * nobody else is loading or mapping it.  Returns the mapping or NULL. */
static const char *sst_map_late(sst_t *t)
{
#ifdef KV_FAULT_INJECT
    (void)t;
    return NULL;
#else
    if (!t->map_limit
        || __atomic_load_n(&mapped_total, __ATOMIC_RELAXED) + t->file_bytes > t->map_limit
        || pthread_mutex_trylock(&t->load_mu) != 0)
        return NULL;
    sst_try_map(t);
    pthread_mutex_unlock(&t->load_mu);
    return __atomic_load_n(&t->map, __ATOMIC_ACQUIRE);
#endif
}

/* Drop what a load read, so a failed load can be tried again. */
static void sst_unload(sst_t *t)
{
    if (t->map) {
        munmap((void *)t->map, (size_t)t->file_bytes);
        __atomic_fetch_sub(&mapped_total, t->file_bytes, __ATOMIC_RELAXED);
        t->map = NULL;
    }
    free(t->verified);
    t->verified = NULL;
    if (t->own_index) {
        free(t->index);
        free(t->bloom);
    }
    t->own_index = 0;
    __atomic_fetch_sub(&private_total, t->private_bytes, __ATOMIC_RELAXED);
    t->private_bytes = 0;
    free(t->ent);
    free(t->pfx);
    t->index = t->bloom = NULL;
    t->ent = NULL;
    t->pfx = NULL;
    t->nblocks = 0;
    t->bloom_len = 0;
    t->entries = 0;
}

static void sst_free(sst_t *t)
{
    sst_unload(t);
    if (t->fd >= 0)
        close(t->fd);
    pthread_mutex_destroy(&t->load_mu);
    free(t);
}

static apr_status_t build_prefixes(sst_t *t)
{
    blk_t a = blk(t, 0), z = blk(t, t->nblocks - 1);
    size_t n = a.last_len < z.last_len ? a.last_len : z.last_len, skip = 0;
    while (skip < n && a.last[skip] == z.last[skip])
        skip++;
    if (!(t->pfx = malloc(t->nblocks * sizeof(uint64_t))))
        return APR_ENOMEM;
    for (uint32_t i = 0; i < t->nblocks; i++) {
        blk_t b = blk(t, i);
        t->pfx[i] = key_prefix_at(b.last, b.last_len, skip);
    }
    t->skip = skip;
    return APR_SUCCESS;
}

/* Read and check header, footer, index and bloom; map the file. */
static apr_status_t sst_load(sst_t *t)
{
    char h[SST_HEADER], f[SST_FOOTER];
    apr_status_t rv = APR_SUCCESS;
    if (t->file_bytes < SST_HEADER + SST_FOOTER)
        rv = KV_CORRUPT;
    if (!rv)
        rv = fio_pread_full(t->fd, h, sizeof h, 0);
    if (!rv)
        rv = fio_pread_full(t->fd, f, sizeof f, t->file_bytes - SST_FOOTER);
    if (rv == APR_EOF)
        rv = KV_CORRUPT;
    if (!rv && (memcmp(h, SST_MAGIC, 8) != 0 || get_u32(h + 8) != SST_VERSION
                || crc32c(h, 28) != get_u32(h + 28) || (get_u32(h + 12) & ~SST_FLAG_TAGGED)
                || get_u64(f + 48) != SST_MAGIC_U64 || crc32c(f, 56) != get_u32(f + 56)
                || get_u64(h + 16) != get_u64(f + 24)))
        rv = KV_CORRUPT;
    t->tagged = rv == APR_SUCCESS && (get_u32(h + 12) & SST_FLAG_TAGGED);
    uint64_t index_off = 0, bloom_off = 0, body_end = t->file_bytes - SST_FOOTER;
    uint32_t index_len = 0, bloom_len = 0;
    if (!rv) {
        index_off = get_u64(f);
        index_len = get_u32(f + 8);
        bloom_off = get_u64(f + 12);
        bloom_len = get_u32(f + 20);
        t->entries = get_u64(f + 24);
        /* Layout: header, data blocks, index, bloom, footer, in that order.
         * Each piece is bounded before the sums, which could otherwise wrap
         * (a mapped file's index and filter are used in place: found in
         * review, a footer whose index offset wrapped pointed the index
         * before the mapping, and the load crashed). */
        if (index_off < SST_HEADER || index_len < 4 || index_off > body_end
            || (uint64_t)index_len + SST_TRAILER > body_end - index_off
            || index_off + index_len + SST_TRAILER != bloom_off
            || (uint64_t)bloom_len + SST_TRAILER > body_end - bloom_off
            || bloom_off + bloom_len + SST_TRAILER != body_end)
            rv = KV_CORRUPT;
    }
    size_t cap = 0;
    /* A mapped file's index and filter are read where they are: pages of
     * the page cache, shared by every process and reclaimable, rather
     * than copies in each process's own memory that grow with the data
     * (a 10M-key store held 25 MiB of them in every child).  Checked once
     * here, as a copy would be. */
    if (!rv) {
        t->data_end = index_off;
        sst_try_map(t);
    }
    const char *map = t->map;
    if (!rv && map) {
        /* The check below reads the index and filter whole: ask for them
         * in one read-ahead, not a fault per page (the mapping is
         * MADV_RANDOM for the lookups). */
        uint64_t from = index_off & ~(uint64_t)4095;
        madvise((char *)map + from, (size_t)(t->file_bytes - from), MADV_WILLNEED);
        t->index = (char *)map + index_off;
        t->bloom = (char *)map + bloom_off;
        t->bloom_len = bloom_len;
        if (crc32c(t->index, index_len) != get_u32(t->index + index_len)
            || crc32c(t->bloom, bloom_len) != get_u32(t->bloom + bloom_len))
            rv = KV_CORRUPT;
    }
    else if (!rv) {
        t->own_index = 1;
        rv = read_block(t, index_off, index_len, &t->index, &cap);
    }
    if (!rv && !map) {
        /* Cache-line aligned, so a blocked filter's probes of a key touch
         * one line. */
        void *b = NULL;
        cap = (size_t)bloom_len + SST_TRAILER;
        if (posix_memalign(&b, 64, cap))
            rv = APR_ENOMEM;
        else {
            t->bloom = b;
            rv = read_block(t, bloom_off, bloom_len, &t->bloom, &cap);
            t->bloom_len = bloom_len;
        }
    }
    if (!rv) {
        uint32_t n = get_u32(t->index);
        /* Each index entry takes at least 13 bytes. */
        if (n > (index_len - 4) / 13 + 1 || (n == 0) != (t->entries == 0))
            rv = KV_CORRUPT;
        else if (n && !(t->ent = malloc(n * sizeof(uint32_t))))
            rv = APR_ENOMEM;
        const char *p = t->index + 4, *end = t->index + index_len;
        uint64_t expect = SST_HEADER;
        blk_t prev = { NULL, 0, 0, 0 };
        for (uint32_t i = 0; !rv && i < n; i++) {
            uint64_t klen;
            t->ent[i] = (uint32_t)(p - t->index);
            /* A length takes at most 10 bytes (blk() decodes it so). */
            const char *q = get_varint(p, end - p > 10 ? p + 10 : end, &klen);
            if (!q || klen > (uint64_t)(end - q) || (uint64_t)(end - q) - klen < 12) {
                rv = KV_CORRUPT;
                break;
            }
            blk_t b = { q, (size_t)klen, get_u64(q + klen), get_u32(q + klen + 8) };
            p = q + klen + 12;
            /* Blocks are contiguous, in key order, and end where the index starts. */
            if (b.off != expect || b.len == 0
                || (i > 0 && key_cmp(prev.last, prev.last_len, b.last, b.last_len) >= 0)) {
                rv = KV_CORRUPT;
                break;
            }
            expect = b.off + b.len + SST_TRAILER;
            prev = b;
        }
        if (!rv && (p != end || expect != index_off))
            rv = KV_CORRUPT;
        t->nblocks = n;
        if (!rv && n)
            rv = build_prefixes(t);
    }
    if (!rv && !(t->verified = calloc((t->nblocks + 7) / 8 + 1, 1)))
        rv = APR_ENOMEM;
    if (!rv) {
        t->private_bytes = (uint64_t)t->nblocks * (sizeof(uint32_t) + sizeof(uint64_t))
            + (t->nblocks + 7) / 8 + 1;
        if (t->own_index)
            t->private_bytes += (uint64_t)index_len + bloom_len + 2 * SST_TRAILER;
        __atomic_fetch_add(&private_total, t->private_bytes, __ATOMIC_RELAXED);
    }
    else
        sst_unload(t);
    return rv;
}

/* Load on first use; a failed load (an I/O error, say) is tried again by
 * the next use.  Once loaded, nothing in the handle changes. */
static apr_status_t sst_ensure(sst_t *t)
{
    if (__atomic_load_n(&t->loaded, __ATOMIC_ACQUIRE))
        return APR_SUCCESS;
    pthread_mutex_lock(&t->load_mu);
    apr_status_t rv = APR_SUCCESS;
    if (!t->loaded && (rv = sst_load(t)) == APR_SUCCESS)
        __atomic_store_n(&t->loaded, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&t->load_mu);
    return rv;
}

apr_status_t sst_open_lazy(sst_t **tp, const char *path, uint64_t number,
                           uint64_t map_limit, apr_status_t *load_rv)
{
    sst_t *t = calloc(1, sizeof(*t));
    if (!t)
        return APR_ENOMEM;
    t->refs = 1;
    t->number = number;
    t->map_limit = map_limit;
    pthread_mutex_init(&t->load_mu, NULL);
    t->fd = open(path, O_RDONLY | O_CLOEXEC);
    apr_status_t rv = t->fd < 0 ? APR_FROM_OS_ERROR(errno) : fio_file_size(t->fd, &t->file_bytes);
    if (rv) {
        sst_free(t);
        return rv;
    }
    *load_rv = sst_ensure(t);
    *tp = t;
    return APR_SUCCESS;
}

apr_status_t sst_open(sst_t **tp, const char *path, uint64_t number)
{
    apr_status_t load_rv;
    apr_status_t rv = sst_open_lazy(tp, path, number, 0, &load_rv);
    if (rv == APR_SUCCESS && load_rv != APR_SUCCESS) {
        sst_unref(*tp);
        *tp = NULL;
        rv = load_rv;
    }
    return rv;
}

/* Where a read puts the bytes it fetched: a window of the file (one block
 * for a point lookup; up to READ_AHEAD bytes of consecutive blocks for an
 * iterator) and a buffer for a decompressed block.  Either may start as a
 * caller's stack buffer (*_own 0) and moves to the heap if it must grow.
 * Files beyond the mapping budget are read with pread, so a process's
 * memory stays bounded whatever the data size, and a failing disk gives
 * an error code (a mapped file's failing page is SIGBUS instead). */
#define READ_AHEAD ((size_t)256 << 10)

typedef struct {
    char *win;
    size_t wcap, wlen;
    uint64_t woff;
    int win_own;
    char *out;
    size_t ocap;
    int out_own;
} rbuf_t;

static void rbuf_free(rbuf_t *rb)
{
    if (rb->win_own)
        free(rb->win);
    if (rb->out_own)
        free(rb->out);
}

static apr_status_t grow(char **buf, size_t *cap, int *own, size_t need)
{
    if (need <= *cap)
        return APR_SUCCESS;
    char *b = *own ? realloc(*buf, need) : malloc(need);
    if (!b)
        return APR_ENOMEM;
    *buf = b;
    *cap = need;
    *own = 1;
    return APR_SUCCESS;
}

/* Point *p at the stored body of data block bi (b: its entry), its CRC
 * checked, reading it (and, with ahead, the blocks after it) unless the
 * window holds it. */
static apr_status_t stored_at(sst_t *t, uint32_t bi, const blk_t *b, rbuf_t *rb,
                              int ahead, const char **p)
{
    size_t need = (size_t)b->len + SST_TRAILER;
    const char *map = __atomic_load_n(&t->map, __ATOMIC_ACQUIRE);
    if (!map && t->map_limit)
        map = sst_map_late(t);
    if (map) {
        /* The window is the whole mapping (the load checked that the
         * blocks tile [header, data_end)). */
        if (rb->win != map) {
            if (rb->win_own)
                free(rb->win);
            rb->win = (char *)map;
            rb->win_own = 0;
            rb->woff = 0;
            rb->wlen = rb->wcap = (size_t)t->data_end;
        }
    }
    else if (!(rb->wlen && b->off >= rb->woff && b->off + need <= rb->woff + rb->wlen)) {
        size_t len = need;
        if (ahead && len < READ_AHEAD)
            len = t->data_end - b->off < READ_AHEAD ? (size_t)(t->data_end - b->off) : READ_AHEAD;
        if (len < need)
            return KV_CORRUPT;
        apr_status_t rv = grow(&rb->win, &rb->wcap, &rb->win_own, len);
        if (rv)
            return rv;
        rb->wlen = 0;
        rv = fio_pread_full(t->fd, rb->win, len, b->off);
        if (rv == APR_EOF)
            return KV_CORRUPT;
        if (rv)
            return rv;
        rb->woff = b->off;
        rb->wlen = len;
    }
    /* The CRC is checked the first time a block is read; the file never
     * changes after it is written, so later reads of it (from the page
     * cache, almost always) skip it, as reads through a mapping would. */
    const char *q = rb->win + (b->off - rb->woff);
    uint8_t bit = (uint8_t)(1u << (bi % 8));
    if (!(__atomic_load_n(&t->verified[bi / 8], __ATOMIC_ACQUIRE) & bit)) {
        if (crc32c(q, b->len) != get_u32(q + b->len))
            return KV_CORRUPT;
        __atomic_fetch_or(&t->verified[bi / 8], bit, __ATOMIC_RELEASE);
    }
    *p = q;
    return APR_SUCCESS;
}

/* Largest raw block a tagged block may claim (a block holds at least one
 * entry, and a value is at most 256 MiB). */
#define RAW_BLOCK_MAX ((size_t)300 << 20)

/* Point *p at data block bi's entries, *n bytes of them, checked and
 * decompressed (into rb->out) if the file is compressed. */
static apr_status_t block_at(sst_t *t, uint32_t bi, rbuf_t *rb, int ahead,
                             const char **p, size_t *n)
{
    const char *q;
    blk_t b = blk(t, bi);
    size_t len = b.len;
    apr_status_t rv = stored_at(t, bi, &b, rb, ahead, &q);
    if (rv)
        return rv;
    if (!t->tagged) {
        *p = q;
        *n = len;
        return APR_SUCCESS;
    }
    int codec = (uint8_t)q[0];
    if (codec == CODEC_NONE) {
        *p = q + 1;
        *n = len - 1;
        return APR_SUCCESS;
    }
    uint64_t raw;
    const char *body = get_varint(q + 1, q + len, &raw);
    if (!body || raw == 0 || raw > RAW_BLOCK_MAX || (codec != CODEC_LZ4 && codec != CODEC_ZSTD))
        return KV_CORRUPT;
    if ((rv = grow(&rb->out, &rb->ocap, &rb->out_own, (size_t)raw)))
        return rv;
    if ((rv = comp_decode(codec, body, (size_t)(q + len - body), rb->out, (size_t)raw)))
        return rv;
    *p = rb->out;
    *n = (size_t)raw;
    return APR_SUCCESS;
}

void sst_ref(sst_t *t)
{
    __atomic_fetch_add(&t->refs, 1, __ATOMIC_RELAXED);
}

void sst_unref(sst_t *t)
{
    if (t && __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) == 0)
        sst_free(t);
}

uint64_t sst_number(const sst_t *t) { return t->number; }
uint64_t sst_file_bytes(const sst_t *t) { return t->file_bytes; }
uint64_t sst_entries(const sst_t *t)
{
    return __atomic_load_n(&t->loaded, __ATOMIC_ACQUIRE) ? t->entries : 0;
}

/* Decode the entry at *p in [p, end); returns the byte after it or NULL. */
static const char *decode_entry(const char *p, const char *end, kv_ent_t *e)
{
    uint64_t klen, vlen, seq, expire;
    if (!(p = get_varint(p, end, &klen)) || !(p = get_varint(p, end, &vlen))
        || !(p = get_varint(p, end, &seq)) || p >= end)
        return NULL;
    uint8_t type = (uint8_t)*p++;
    if ((type != ENT_PUT && type != ENT_DEL) || !(p = get_varint(p, end, &expire)))
        return NULL;
    if (klen > (uint64_t)(end - p) || vlen > (uint64_t)(end - p) - klen)
        return NULL;
    if (type == ENT_DEL && vlen != 0)
        return NULL;
    e->key = p;
    e->klen = klen;
    e->val = type == ENT_PUT ? p + klen : NULL;
    e->vlen = vlen;
    e->seq = seq;
    e->type = type;
    e->expire = expire;
    return p + klen + vlen;
}

/* Index of the first block whose last key is >= key, or nblocks. */
static uint32_t find_block(const sst_t *t, const char *key, size_t klen)
{
    uint32_t lo = 0, hi = t->nblocks;
    if (hi == 0)
        return 0;
    /* A key without the last keys' common first bytes sorts before all
     * of them or after all of them. */
    blk_t b0 = blk(t, 0);
    if (klen < t->skip || memcmp(key, b0.last, t->skip) != 0)
        return key_cmp(key, klen, b0.last, b0.last_len) <= 0 ? 0 : hi;
    uint64_t kp = key_prefix_at(key, klen, t->skip);
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        uint64_t mp = t->pfx[mid];
        /* Equal prefixes decide nothing (a zero byte and the end of a key
         * pad alike): then the keys themselves. */
        blk_t b;
        if (mp < kp || (mp == kp && (b = blk(t, mid), key_cmp(b.last, b.last_len, key, klen) < 0)))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

apr_status_t sst_get(sst_t *t, const char *key, size_t klen, apr_pool_t *pool,
                     kv_ent_t *out)
{
    return sst_get_hashed(t, key, klen, bloom_hash(key, klen), pool, out);
}

apr_status_t sst_get_hashed(sst_t *t, const char *key, size_t klen, uint32_t hash,
                            apr_pool_t *pool, kv_ent_t *out)
{
    apr_status_t lrv = sst_ensure(t);
    if (lrv)
        return lrv;
    if (!bloom_may_contain(t->bloom, t->bloom_len, hash))
        return KV_NOTFOUND;
    uint32_t bi = find_block(t, key, klen);
    if (bi == t->nblocks)
        return KV_NOTFOUND;
    /* Blocks are about 4 KiB: read into the stack unless one is larger. */
    char win[8192], raw[8192];
    rbuf_t rb = { win, sizeof win, 0, 0, 0, raw, sizeof raw, 0 };
    const char *p;
    size_t n;
    apr_status_t rv = block_at(t, bi, &rb, 0, &p, &n);
    if (rv) {
        rbuf_free(&rb);
        return rv;
    }
    const char *end = p + n;
    /* The scan below walks the block entry by entry, each step waiting
     * for the one before it; asking for all its cache lines at once first
     * lets the misses overlap (a block read through the mapping is mostly
     * not in the CPU's caches). */
    for (const char *q = p; q < end; q += 64)
        __builtin_prefetch(q);
    rv = KV_NOTFOUND;
    while (p < end) {
        kv_ent_t e;
        if (!(p = decode_entry(p, end, &e))) {
            rv = KV_CORRUPT;
            break;
        }
        int c = key_cmp(e.key, e.klen, key, klen);
        if (c > 0)
            break;
        if (c == 0) {
            *out = e;
            char *k = apr_palloc(pool, e.klen + 1);
            memcpy(k, e.key, e.klen);
            k[e.klen] = '\0';
            char *v = apr_palloc(pool, e.vlen + 1);
            if (e.vlen)
                memcpy(v, e.val, e.vlen);
            v[e.vlen] = '\0';
            out->key = k;
            out->val = v;
            rv = APR_SUCCESS;
            break;
        }
    }
    rbuf_free(&rb);
    return rv;
}

/* ---- iteration ---- */

struct sst_iter {
    sst_t *t;
    uint32_t block;        /* the block loaded, or nblocks */
    rbuf_t rb;             /* read ahead: consecutive blocks per pread */
    const char *pos, *end; /* the next entry to decode */
    kv_ent_t cur;
    int valid;
    apr_status_t status;
};

apr_status_t sst_iter_new(sst_iter_t **itp, sst_t *t)
{
    apr_status_t rv = sst_ensure(t);
    if (rv)
        return rv;
    sst_iter_t *it = calloc(1, sizeof(*it));
    if (!it)
        return APR_ENOMEM;
    sst_ref(t);
    it->t = t;
    it->block = t->nblocks;
    *itp = it;
    return APR_SUCCESS;
}

void sst_iter_free(sst_iter_t *it)
{
    if (!it)
        return;
    sst_unref(it->t);
    rbuf_free(&it->rb);
    free(it);
}

static void fail(sst_iter_t *it, apr_status_t rv)
{
    it->status = rv;
    it->valid = 0;
}

static int load_block(sst_iter_t *it, uint32_t bi)
{
    it->block = bi;
    if (bi >= it->t->nblocks) {
        it->valid = 0;
        return 0;
    }
    const char *p;
    size_t n;
    apr_status_t rv = block_at(it->t, bi, &it->rb, 1, &p, &n);
    if (rv) {
        fail(it, rv);
        return 0;
    }
    it->pos = p;
    it->end = p + n;
    return 1;
}

/* Decode the next entry, crossing into following blocks as needed. */
static void advance(sst_iter_t *it)
{
    while (it->block < it->t->nblocks && it->pos >= it->end) {
        if (!load_block(it, it->block + 1))
            return;
    }
    if (it->block >= it->t->nblocks) {
        it->valid = 0;
        return;
    }
    const char *next = decode_entry(it->pos, it->end, &it->cur);
    if (!next) {
        fail(it, KV_CORRUPT);
        return;
    }
    it->pos = next;
    it->valid = 1;
}

void sst_iter_seek_first(sst_iter_t *it)
{
    it->status = APR_SUCCESS;
    if (load_block(it, 0))
        advance(it);
}

void sst_iter_seek(sst_iter_t *it, const char *key, size_t klen)
{
    it->status = APR_SUCCESS;
    if (!load_block(it, find_block(it->t, key, klen)))
        return;
    for (advance(it); it->valid; advance(it))
        if (key_cmp(it->cur.key, it->cur.klen, key, klen) >= 0)
            return;
}

int sst_iter_valid(const sst_iter_t *it)
{
    return it->valid;
}

void sst_iter_next(sst_iter_t *it)
{
    if (it->valid)
        advance(it);
}

void sst_iter_entry(const sst_iter_t *it, kv_ent_t *out)
{
    *out = it->cur;
}

apr_status_t sst_iter_status(const sst_iter_t *it)
{
    return it->status;
}

apr_status_t sst_verify(sst_t *t)
{
    rbuf_t rb = { 0 };
    apr_status_t rv = sst_ensure(t);
    uint64_t count = 0;
    const char *prev = NULL;
    size_t prev_len = 0;
    char *prevbuf = NULL;
    for (uint32_t i = 0; i < t->nblocks && !rv; i++) {
        const char *p;
        size_t n;
        if ((rv = block_at(t, i, &rb, 1, &p, &n)))
            break;
        const char *end = p + n;
        kv_ent_t e;
        while (p < end) {
            if (!(p = decode_entry(p, end, &e))) {
                rv = KV_CORRUPT;
                break;
            }
            if (prev && key_cmp(prev, prev_len, e.key, e.klen) >= 0) {
                rv = KV_CORRUPT;
                break;
            }
            char *nb = realloc(prevbuf, e.klen ? e.klen : 1);
            if (!nb) {
                rv = APR_ENOMEM;
                break;
            }
            prevbuf = nb;
            memcpy(prevbuf, e.key, e.klen);
            prev = prevbuf;
            prev_len = e.klen;
            count++;
        }
        blk_t b = blk(t, i);
        if (!rv && key_cmp(prev, prev_len, b.last, b.last_len) != 0)
            rv = KV_CORRUPT;
    }
    if (!rv && count != t->entries)
        rv = KV_CORRUPT;
    rbuf_free(&rb);
    free(prevbuf);
    return rv;
}
