/* bloom.c -- bloom filters for SST files (bloom.h): every probe of a key
 * derived from one 32-bit hash, so building and probing cost one hash of
 * the key.  Two formats: the blocked one this build writes, and the first
 * one (double hashing over the whole array, as LevelDB does), still read
 * in files written before. */
#include "bloom.h"
#include <string.h>

uint32_t bloom_hash(const void *key, size_t n)
{
    /* FNV-1a over the bytes, then a 64-bit finaliser for avalanche. */
    const unsigned char *p = key;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return (uint32_t)h;
}

static int probes(int bits_per_key)
{
    int k = (int)(bits_per_key * 0.69);
    return k < 1 ? 1 : k > 30 ? 30 : k;
}

/* ---- blocked filters (what this build writes) ------------------------ */

/* A key's probes stay in one 64-byte block of the array: a lookup costs
 * one cache miss per file, not one per probe.  The block is picked from
 * the hash's high bits (a multiply, no division); the probes come from a
 * remix of it, nine bits (a position in 512) each. */
#define BLOCK_BYTES 64
#define BLOCKED_MARK 0x40   /* trailer byte: MARK | k; an older build reads k > 30: "maybe" */

static size_t blocks_for(size_t nkeys, int bits_per_key)
{
    size_t bits = nkeys * (size_t)bits_per_key;
    size_t n = (bits + BLOCK_BYTES * 8 - 1) / (BLOCK_BYTES * 8);
    return n ? n : 1;
}

size_t bloom_size(size_t nkeys, int bits_per_key)
{
    return blocks_for(nkeys, bits_per_key) * BLOCK_BYTES + 1;
}

static uint32_t remix(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    h ^= h >> 16;
    return h;
}

static unsigned char *block_of(const char *filter, size_t nblocks, uint32_t hash)
{
    size_t b = (size_t)(((uint64_t)hash * nblocks) >> 32);
    return (unsigned char *)filter + b * BLOCK_BYTES;
}

void bloom_build(const uint32_t *hashes, size_t nkeys, int bits_per_key, char *out)
{
    size_t nblocks = blocks_for(nkeys, bits_per_key);
    int k = probes(bits_per_key);
    memset(out, 0, nblocks * BLOCK_BYTES);
    out[nblocks * BLOCK_BYTES] = (char)(BLOCKED_MARK | k);
    for (size_t i = 0; i < nkeys; i++) {
        unsigned char *blk = block_of(out, nblocks, hashes[i]);
        uint32_t g = remix(hashes[i]);
        for (int j = 0; j < k; j++) {
            uint32_t bit = g >> 23;
            blk[bit / 8] |= (unsigned char)(1 << (bit % 8));
            g *= 0x9E3779B9u;
        }
    }
}

static int blocked_may_contain(const char *filter, size_t len, int k, uint32_t hash)
{
    if ((len - 1) % BLOCK_BYTES)
        return 1;   /* not whole blocks: never rule a key out */
    const unsigned char *blk = block_of(filter, (len - 1) / BLOCK_BYTES, hash);
    uint32_t g = remix(hash);
    for (int j = 0; j < k; j++) {
        uint32_t bit = g >> 23;
        if (!(blk[bit / 8] & (1 << (bit % 8))))
            return 0;
        g *= 0x9E3779B9u;
    }
    return 1;
}

/* ---- the first format's filters (files written by earlier builds) ---- */

size_t bloom_size_v1(size_t nkeys, int bits_per_key)
{
    size_t bits = nkeys * (size_t)bits_per_key;
    if (bits < 64)
        bits = 64;
    return (bits + 7) / 8 + 1;
}

void bloom_build_v1(const uint32_t *hashes, size_t nkeys, int bits_per_key, char *out)
{
    size_t bytes = bloom_size_v1(nkeys, bits_per_key) - 1, bits = bytes * 8;
    int k = probes(bits_per_key);
    memset(out, 0, bytes);
    out[bytes] = (char)k;
    for (size_t i = 0; i < nkeys; i++) {
        uint32_t h = hashes[i], delta = (h >> 17) | (h << 15);
        for (int j = 0; j < k; j++) {
            size_t b = h % bits;
            out[b / 8] |= (char)(1 << (b % 8));
            h += delta;
        }
    }
}

static int v1_may_contain(const char *filter, size_t len, int k, uint32_t hash)
{
    if ((len - 1) * 8 > UINT32_MAX)
        return 1;   /* over 512 MiB: never rule a key out */
    /* bits fits in 32 bits, so the probes take a 32-bit division (several
     * times cheaper than a 64-bit one) and land where bloom_build_v1's
     * 64-bit ones put them. */
    uint32_t bits = (uint32_t)((len - 1) * 8);
    uint32_t h = hash, delta = (h >> 17) | (h << 15);
    for (int j = 0; j < k; j++) {
        uint32_t b = h % bits;
        if (!(filter[b / 8] & (1 << (b % 8))))
            return 0;
        h += delta;
    }
    return 1;
}

int bloom_may_contain(const char *filter, size_t len, uint32_t hash)
{
    if (len < 2)
        return 1;   /* none */
    int t = (unsigned char)filter[len - 1];
    if (t >= 1 && t <= 30)
        return v1_may_contain(filter, len, t, hash);
    if ((t & 0xC0) == BLOCKED_MARK && (t & 0x3F) >= 1 && (t & 0x3F) <= 30)
        return blocked_may_contain(filter, len, t & 0x3F, hash);
    return 1;   /* a format we do not know: never rule a key out */
}
