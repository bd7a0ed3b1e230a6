/* fuzz/wal.c -- libFuzzer target for the log reader: decode records from
 * arbitrary bytes and walk every batch, as replay does. */
#include <stdint.h>
#include <stdlib.h>
#include "wal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    size_t pos = 0;
    while (pos < size) {
        wal_view_t v;
        size_t n = wal_decode(buf + pos, size - pos, &v);
        if (n == 0) {
            (void)wal_is_torn(buf + pos, size - pos);
            break;
        }
        if (n > size - pos)
            abort();
        if (v.type == WAL_BATCH) {
            size_t bp = 0;
            uint32_t idx;
            kv_ent_t e;
            while (wal_batch_next(&v, &bp, &idx, &e) == 1) {
                if (e.key < v.payload || e.key + e.klen > v.payload + v.len)
                    abort();
            }
        }
        pos += n;
    }
    return 0;
}
