/* fuzz/request.c -- libFuzzer target for the HTTP request parser: the
 * input is a query string and a /set body (split at the first newline). */
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
    }
    apr_pool_clear(p);
    return 0;
}
