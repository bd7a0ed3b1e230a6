/* bloom.h -- the per-SST bloom filter: about 10 bits a key, so a get for
 * a missing key reads no data block ~99% of the time.
 * Filter bytes: the bit array, then one byte: 0x40 | k for the blocked
 * format (each key's k probes in one 64-byte block), or k alone for the
 * first format (docs/FORMAT.md). */
#ifndef KV_BLOOM_H
#define KV_BLOOM_H

#include <stddef.h>
#include <stdint.h>

uint32_t bloom_hash(const void *key, size_t n);
/* Bytes bloom_build writes for nkeys keys. */
size_t bloom_size(size_t nkeys, int bits_per_key);
/* Build a filter from the keys' hashes into out (bloom_size bytes). */
void bloom_build(const uint32_t *hashes, size_t nkeys, int bits_per_key, char *out);
/* The first format, for reading files earlier builds wrote (and tests). */
size_t bloom_size_v1(size_t nkeys, int bits_per_key);
void bloom_build_v1(const uint32_t *hashes, size_t nkeys, int bits_per_key, char *out);
/* Either format.  0: definitely absent; 1: maybe present (also for a
 * malformed filter or a format this build does not know). */
int bloom_may_contain(const char *filter, size_t len, uint32_t hash);

#endif
