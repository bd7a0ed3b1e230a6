/* fuzz/request.c -- libFuzzer target for the HTTP request parser: the
 * input is a query string and a body (split at the first newline); the
 * query also goes through the entity-tag parser, the body through both
 * the /set and the /batch parsers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <apr_general.h>
#include "http/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static apr_pool_t *p;
    if (!p) {
        apr_initialize();
        apr_pool_create(&p, NULL);
    }
    const uint8_t *nl = memchr(data, '\n', size);
    size_t qlen = nl ? (size_t)(nl - data) : size;
    char *q = malloc(qlen + 1);
    memcpy(q, data, qlen);
    q[qlen] = '\0';
    char *out;
    size_t n;
    if (kvr_query_param(p, q, "key", &out, &n) == 1)
        (void)kvr_text_ok(out, n);
    int star, ntags;
    apr_uint64_t tags[4];
    if (kvr_parse_etags(q, &star, tags, 4, &ntags) && (ntags < 0 || ntags > 4 || (star && ntags)))
        abort();
    free(q);
    if (nl) {
        kvr_set_t s;
        const char *body = (const char *)nl + 1;
        size_t blen = size - qlen - 1;
        if (!kvr_parse_set(p, body, blen, &s)) {
            /* Whatever is accepted is well-formed text, whole. */
            if (!kvr_text_ok(s.key, s.klen) || !kvr_text_ok(s.val, s.vlen) || s.klen == 0)
                abort();
            char *j = kvr_json_kv(p, "key", s.key, s.klen, "value", s.val, s.vlen);
            if (!j)
                abort();
        }
        kvr_op_t *ops;
        int nops;
        if (!kvr_parse_batch(p, body, blen, 8, &ops, &nops)) {
            if (nops < 1 || nops > 8)
                abort();
            for (int i = 0; i < nops; i++)
                if (ops[i].kv.klen == 0 || !kvr_text_ok(ops[i].kv.key, ops[i].kv.klen)
                    || (!ops[i].del && !kvr_text_ok(ops[i].kv.val, ops[i].kv.vlen)))
                    abort();
        }
    }
    apr_pool_clear(p);
    return 0;
}
