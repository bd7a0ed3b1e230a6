/* fuzz/request.c -- libFuzzer target for the HTTP request parser: the
 * input is a query string and a body (split at the first newline); the
 * query also goes through the entity-tag parser, the body through both
 * the /set and the /batch parsers.  cJSON's allocations are counted: a
 * body of any shape may cost a tree of at most its own size plus a few
 * kilobytes (the shape check lets no more through), and answers for what
 * was accepted are checked to be the JSON cJSON would write. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <apr_general.h>
#include <cjson/cJSON.h>
#include "http/request.h"

static size_t tree_bytes;
static void *counting_malloc(size_t n)
{
    tree_bytes += n;
    return malloc(n);
}

/* At most 2 + 8 * 5 nodes (the target allows 8 ops) and their strings,
 * which are no longer than the body. */
static void check_tree(size_t blen)
{
    if (tree_bytes > blen + 64 * 64 + 4096)
        abort();
    tree_bytes = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static apr_pool_t *p;
    if (!p) {
        apr_initialize();
        apr_pool_create(&p, NULL);
        cJSON_Hooks h = { counting_malloc, free };
        cJSON_InitHooks(&h);
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
        tree_bytes = 0;
        const char *set_err = kvr_parse_set(p, body, blen, &s);
        check_tree(blen);
        if (!set_err) {
            /* Whatever is accepted is well-formed text, whole. */
            if (!kvr_text_ok(s.key, s.klen) || !kvr_text_ok(s.val, s.vlen) || s.klen == 0)
                abort();
            char *j = kvr_json_kv(p, "key", s.key, s.klen, "value", s.val, s.vlen);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "key", s.key);
            cJSON_AddStringToObject(o, "value", s.val);
            char *want = cJSON_PrintUnformatted(o);
            if (!j || !want || strcmp(j, want))
                abort();
            cJSON_free(want);
            cJSON_Delete(o);
            tree_bytes = 0;
        }
        kvr_op_t *ops;
        int nops;
        const char *batch_err = kvr_parse_batch(p, body, blen, 8, &ops, &nops);
        check_tree(blen);
        if (!batch_err) {
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
