/* entry.h -- the engine's internal view of one versioned entry, and the
 * order every sorted structure (memtable, SST, merge) agrees on.
 * Internal: not part of the public API. */
#ifndef KV_ENTRY_H
#define KV_ENTRY_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

enum { ENT_DEL = 0, ENT_PUT = 1 };

/* The clock entries expire by (unix seconds). */
static inline uint64_t ent_now(void)
{
    return (uint64_t)time(NULL);
}

typedef struct {
    const char *key;
    size_t klen;
    const char *val;    /* NULL/0 for a tombstone */
    size_t vlen;
    uint64_t seq;       /* version; unique and increasing across processes */
    uint64_t expire;    /* unix seconds; 0 = never */
    uint8_t type;       /* ENT_PUT or ENT_DEL */
} kv_ent_t;

/* Keys compare as unsigned bytes, a shorter key before its extensions.
 * Eight bytes at a time as big-endian integers: most keys are short, and
 * this is the hottest comparison in every structure. */
static inline int key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen, i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y) {
            x = __builtin_bswap64(x);
            y = __builtin_bswap64(y);
            return x < y ? -1 : 1;
        }
    }
    for (; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x != y)
            return x < y ? -1 : 1;
    }
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* Bytes [skip, skip+8) of a key as a big-endian integer, zero-padded:
 * for keys that share their first skip bytes, a smaller prefix means a
 * smaller key (equal prefixes decide nothing). */
static inline uint64_t key_prefix_at(const char *k, size_t n, size_t skip)
{
    uint64_t p = 0;
    for (size_t i = skip; i < skip + 8; i++)
        p = (p << 8) | (i < n ? (unsigned char)k[i] : 0);
    return p;
}

/* Internal order: key ascending, then sequence number descending (newest
 * version of a key first). */
static inline int ent_cmp(const char *ak, size_t aklen, uint64_t aseq,
                          const char *bk, size_t bklen, uint64_t bseq)
{
    int c = key_cmp(ak, aklen, bk, bklen);
    if (c) return c;
    return aseq > bseq ? -1 : aseq < bseq ? 1 : 0;
}

#endif
