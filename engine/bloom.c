/* bloom.c -- bloom filters for SST files (bloom.h): k probes derived from
 * one 32-bit hash by double hashing, as LevelDB does, so building and
 * probing cost one hash of the key. */
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

size_t bloom_size(size_t nkeys, int bits_per_key)
{
    size_t bits = nkeys * (size_t)bits_per_key;
    if (bits < 64)
        bits = 64;
    return (bits + 7) / 8 + 1;
}

void bloom_build(const uint32_t *hashes, size_t nkeys, int bits_per_key, char *out)
{
    size_t bytes = bloom_size(nkeys, bits_per_key) - 1, bits = bytes * 8;
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

int bloom_may_contain(const char *filter, size_t len, uint32_t hash)
{
    if (len < 2 || (len - 1) * 8 > UINT32_MAX)
        return 1;   /* none, or over 512 MiB: never rule a key out */
    /* bits fits in 32 bits, so the probes take a 32-bit division (several
     * times cheaper than a 64-bit one; a lookup probes up to k bits in
     * each file) and land where bloom_build's 64-bit ones put them. */
    uint32_t bits = (uint32_t)((len - 1) * 8);
    int k = (unsigned char)filter[len - 1];
    if (k < 1 || k > 30)
        return 1;   /* a format we do not know: never rule a key out */
    uint32_t h = hash, delta = (h >> 17) | (h << 15);
    for (int j = 0; j < k; j++) {
        uint32_t b = h % bits;
        if (!(filter[b / 8] & (1 << (b % 8))))
            return 0;
        h += delta;
    }
    return 1;
}
