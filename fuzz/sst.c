/* fuzz/sst.c -- libFuzzer target for the SST reader: the input is written
 * as a file, opened, verified, scanned and probed; damage must come back
 * as an error, never a crash or an out-of-bounds read. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <apr_general.h>
#include "sst.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static apr_pool_t *p;
    static char path[64];
    if (!p) {
        apr_initialize();
        apr_pool_create(&p, NULL);
        snprintf(path, sizeof path, "/tmp/kvlsm-fuzz-sst.%d", (int)getpid());
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    sst_t *t;
    if (sst_open(&t, path, 1) == APR_SUCCESS) {
        (void)sst_verify(t);
        sst_iter_t *it;
        if (sst_iter_new(&it, t) == APR_SUCCESS) {
            int n = 0;
            for (sst_iter_seek_first(it); sst_iter_valid(it) && n < 100000; sst_iter_next(it), n++) {
                kv_ent_t e;
                sst_iter_entry(it, &e);
                kv_ent_t g;
                (void)sst_get(t, e.key, e.klen, p, &g);
            }
            sst_iter_seek(it, "m", 1);
            sst_iter_free(it);
        }
        kv_ent_t g;
        (void)sst_get(t, "key", 3, p, &g);
        sst_unref(t);
    }
    unlink(path);
    apr_pool_clear(p);
    return 0;
}
