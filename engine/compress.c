/* compress.c -- lz4 and zstd behind one small interface (compress.h).
 * zstd runs at level 1: SST blocks are written by flushes and compactions
 * that the write path may wait for, so speed matters more than the last
 * few percent of space. */
#include <lz4.h>
#include <zstd.h>
#include "compress.h"
#include "kvlsm.h"

size_t comp_bound(int codec, size_t n)
{
    if (codec == CODEC_LZ4)
        return (size_t)LZ4_compressBound((int)n);
    if (codec == CODEC_ZSTD)
        return ZSTD_compressBound(n);
    return n;
}

apr_status_t comp_encode(int codec, const char *src, size_t n, char *dst, size_t cap,
                         size_t *out)
{
    if (codec == CODEC_LZ4) {
        if (n > (size_t)LZ4_MAX_INPUT_SIZE)
            return APR_EGENERAL;
        int r = LZ4_compress_default(src, dst, (int)n, (int)(cap > 0x7fffffff ? 0x7fffffff : cap));
        if (r <= 0)
            return APR_EGENERAL;
        *out = (size_t)r;
        return APR_SUCCESS;
    }
    if (codec == CODEC_ZSTD) {
        size_t r = ZSTD_compress(dst, cap, src, n, 1);
        if (ZSTD_isError(r))
            return APR_EGENERAL;
        *out = r;
        return APR_SUCCESS;
    }
    return APR_EGENERAL;
}

apr_status_t comp_decode(int codec, const char *src, size_t n, char *dst, size_t raw)
{
    if (codec == CODEC_LZ4) {
        if (n > 0x7fffffff || raw > 0x7fffffff)
            return KV_CORRUPT;
        int r = LZ4_decompress_safe(src, dst, (int)n, (int)raw);
        return r >= 0 && (size_t)r == raw ? APR_SUCCESS : KV_CORRUPT;
    }
    if (codec == CODEC_ZSTD) {
        size_t r = ZSTD_decompress(dst, raw, src, n);
        return !ZSTD_isError(r) && r == raw ? APR_SUCCESS : KV_CORRUPT;
    }
    return KV_CORRUPT;
}
