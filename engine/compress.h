/* compress.h -- block compression for SST data blocks (lz4 or zstd), as
 * the SST writer and reader use it.  A stored block that is compressed
 * says which codec and how long the raw body is (docs/FORMAT.md). */
#ifndef KV_COMPRESS_H
#define KV_COMPRESS_H

#include <stddef.h>
#include <apr_errno.h>

/* Codec tags as stored in front of a tagged block; the same values as
 * kv_compression_e in kvlsm.h. */
#define CODEC_NONE 0
#define CODEC_LZ4 1
#define CODEC_ZSTD 2

/* Worst-case compressed size of n bytes. */
size_t comp_bound(int codec, size_t n);
/* Compress src[0..n) into dst (cap bytes, at least comp_bound); *out is
 * the compressed size.  APR_EGENERAL if the codec fails. */
apr_status_t comp_encode(int codec, const char *src, size_t n, char *dst, size_t cap,
                         size_t *out);
/* Decompress src[0..n) into dst, which must come out exactly raw bytes
 * long; anything else is KV_CORRUPT. */
apr_status_t comp_decode(int codec, const char *src, size_t n, char *dst, size_t raw);

#endif
