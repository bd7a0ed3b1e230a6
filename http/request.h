/* request.h -- turning HTTP request bits into engine arguments: form
 * decoding of the query string, UTF-8 checks, strict parsing of the JSON
 * bodies of /set and /batch, and writing JSON strings for answers.  Plain
 * C with APR pools and cJSON, no Apache headers, so it is unit-tested and
 * fuzzed without a server. */
#ifndef KVLSM_REQUEST_H
#define KVLSM_REQUEST_H

#include <stddef.h>
#include <apr_pools.h>
#include <apr.h>

/* Find the first parameter `name` in a query string and decode it as a
 * form would encode it ('+' is a space, %XX a byte).  Returns 1 and sets
 * *out and *len (a NUL-terminated copy in p), 0 if absent, -1 if its %-escapes
 * are malformed. */
int kvr_query_param(apr_pool_t *p, const char *args, const char *name,
                    char **out, size_t *len);

/* 1 if s[0..n) is well-formed UTF-8 (no overlongs, surrogates or code
 * points past U+10FFFF) with no NUL byte, else 0. */
int kvr_text_ok(const char *s, size_t n);

/* A parsed /set body. */
typedef struct {
    const char *key;
    size_t klen;
    const char *val;
    size_t vlen;
    int has_ttl;
    long long ttl;
} kvr_set_t;

/* Parse a /set body: exactly one JSON object, nothing after it but
 * whitespace, with string "key" (non-empty) and string "value", and an
 * optional "ttl" (whole seconds >= 1), and no other field, none twice.
 * Rejects raw NUL bytes, invalid UTF-8 and \u0000 escapes (cJSON would
 * silently cut the string there).  The body's shape is checked before a
 * tree is built, so parsing costs at most a small multiple of its size.
 * Returns NULL on success, else a message for a 400 answer (out->key is
 * set when a valid key was read, so the answer can name it).  out points
 * into the parsed tree, which lives until p is cleared. */
const char *kvr_parse_set(apr_pool_t *p, const char *body, size_t len,
                          kvr_set_t *out);

/* One operation of a /batch body. */
typedef struct {
    int del;          /* 1: delete kv.key; 0: set it (kv.val, kv.ttl) */
    kvr_set_t kv;
} kvr_op_t;

/* Parse a /batch body: {"ops":[{"op":"set","key":..,"value":..[,"ttl":..]},
 * {"op":"del","key":..},...]} with 1 to max_ops operations, each checked
 * as /set checks its body, and no field but these (the shape is checked
 * before a tree is built, as for /set).  Returns NULL and the operations,
 * or a message for a 400 answer naming the first bad operation
 * ("ops[3]: ..."). */
const char *kvr_parse_batch(apr_pool_t *p, const char *body, size_t len, int max_ops,
                            kvr_op_t **ops, int *nops);

/* Parse an If-Match / If-None-Match value: "*", or a comma-separated list
 * of entity tags.  Our tags are strong and hold a version ("123"); the
 * versions found go to seqs (at most max), weak or foreign tags are
 * skipped (they can never match).  Returns 1, or 0 if malformed. */
int kvr_parse_etags(const char *h, int *star, apr_uint64_t *seqs, int max, int *n);

/* Writing JSON without a tree: the bytes of s[0..n) as a JSON string,
 * quotes included, escaped as cJSON escapes them (", \\, control bytes;
 * other bytes as they are); and writing it at out, returning the end. */
size_t kvr_json_len(const char *s, size_t n);
char *kvr_json_put(char *out, const char *s, size_t n);
/* {"k1":v1[,"k2":v2]} in p, written once (v2 only if k2 is not NULL). */
char *kvr_json_kv(apr_pool_t *p, const char *k1, const char *v1, size_t v1len,
                  const char *k2, const char *v2, size_t v2len);

#endif
