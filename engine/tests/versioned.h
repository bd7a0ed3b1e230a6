/* versioned.h -- the keys and values the fault tests write: key i is
 * "key%05lu", and its value names the key and version it belongs to
 * ("k<i>-v<ver>:" then 700-1599 bytes of filler), so any read can tell
 * which write it sees. */
#ifndef KV_TEST_VERSIONED_H
#define KV_TEST_VERSIONED_H

#include <stdio.h>
#include "kvlsm.h"

#define VAL_BYTES 700

static inline size_t val(char *buf, size_t cap, unsigned long key, unsigned long ver)
{
    int n = snprintf(buf, cap, "k%lu-v%lu:", key, ver);
    size_t len = VAL_BYTES + (key * 37 + ver) % 900;
    for (size_t i = (size_t)n; i < len && i < cap; i++)
        buf[i] = (char)('a' + (i + ver) % 26);
    return len < cap ? len : cap;
}

/* Write version ver of key i; *seq (if not NULL) receives its sequence number. */
static inline apr_status_t put_seq(kv_db_t *db, unsigned long key, unsigned long ver, apr_uint64_t *seq)
{
    char k[32], v[4096];
    snprintf(k, sizeof k, "key%05lu", key);
    size_t n = val(v, sizeof v, key, ver);
    return kv_put(db, k, strlen(k), v, n, NULL, seq);
}

static inline apr_status_t put(kv_db_t *db, unsigned long key, unsigned long ver)
{
    return put_seq(db, key, ver, NULL);
}

#endif
