/* compress.c -- lz4 and zstd behind one small interface (compress.h).
 * zstd runs at level 1: SST blocks are written by flushes and compactions
 * that the write path may wait for, so speed matters more than the last
 * few percent of space.  zstd's contexts are kept per thread (making one
 * per 4 KiB block costs more than decompressing it); they go when the
 * thread does. */
#include <pthread.h>
#include <lz4.h>
#include <zstd.h>
#include "compress.h"
#include "kvlsm.h"

static pthread_key_t cctx_key, dctx_key;
static pthread_once_t keys_once = PTHREAD_ONCE_INIT;

static void free_cctx(void *c) { ZSTD_freeCCtx(c); }
static void free_dctx(void *d) { ZSTD_freeDCtx(d); }

static void keys_init(void)
{
    pthread_key_create(&cctx_key, free_cctx);
    pthread_key_create(&dctx_key, free_dctx);
}

static ZSTD_CCtx *thread_cctx(void)
{
    pthread_once(&keys_once, keys_init);
    ZSTD_CCtx *c = pthread_getspecific(cctx_key);
    if (!c && (c = ZSTD_createCCtx()))
        pthread_setspecific(cctx_key, c);
    return c;
}

static ZSTD_DCtx *thread_dctx(void)
{
    pthread_once(&keys_once, keys_init);
    ZSTD_DCtx *d = pthread_getspecific(dctx_key);
    if (!d && (d = ZSTD_createDCtx()))
        pthread_setspecific(dctx_key, d);
    return d;
}

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
        ZSTD_CCtx *c = thread_cctx();
        if (!c)
            return APR_ENOMEM;
        size_t r = ZSTD_compressCCtx(c, dst, cap, src, n, 1);
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
        ZSTD_DCtx *d = thread_dctx();
        if (!d)
            return APR_ENOMEM;
        size_t r = ZSTD_decompressDCtx(d, dst, raw, src, n);
        return !ZSTD_isError(r) && r == raw ? APR_SUCCESS : KV_CORRUPT;
    }
    return KV_CORRUPT;
}
