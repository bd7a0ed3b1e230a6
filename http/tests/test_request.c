/* test_request.c -- the request parser: query-string decoding, UTF-8
 * checks and strict /set bodies, including every malformed shape the
 * HTTP tests also send. */
#include <criterion/criterion.h>
#include <apr_general.h>
#include <stdio.h>
#include <string.h>
#include <apr_strings.h>
#include <cjson/cJSON.h>
#include "http/request.h"

static apr_pool_t *p;
static void setup(void) { apr_initialize(); apr_pool_create(&p, NULL); }
static void teardown(void) { apr_pool_destroy(p); }
TestSuite(query, .init = setup, .fini = teardown);
TestSuite(body, .init = setup, .fini = teardown);
TestSuite(utf8, .init = setup, .fini = teardown);

Test(query, form_decoding_and_first_key_wins)
{
    char *v;
    size_t n;
    cr_assert_eq(kvr_query_param(p, "key=a+b%20c%2B", "key", &v, &n), 1);
    cr_assert_eq(n, 6);
    cr_assert_str_eq(v, "a b c+");
    cr_assert_eq(kvr_query_param(p, "x=1&key=first&key=second", "key", &v, &n), 1);
    cr_assert_str_eq(v, "first");
    cr_assert_eq(kvr_query_param(p, "k%65y=enc", "key", &v, &n), 1, "encoded names count");
    cr_assert_str_eq(v, "enc");
    cr_assert_eq(kvr_query_param(p, "keys=1&akey=2", "key", &v, &n), 0);
    cr_assert_eq(kvr_query_param(p, NULL, "key", &v, &n), 0);
    cr_assert_eq(kvr_query_param(p, "key", "key", &v, &n), 1);
    cr_assert_eq(n, 0);
    cr_assert_eq(kvr_query_param(p, "key=%zz", "key", &v, &n), -1);
    cr_assert_eq(kvr_query_param(p, "key=abc%4", "key", &v, &n), -1);
    cr_assert_eq(kvr_query_param(p, "key=%00", "key", &v, &n), 1);
    cr_assert_eq(n, 1, "a NUL decodes; the caller rejects it");
}

Test(utf8, accepts_valid_and_rejects_malformed)
{
    cr_assert(kvr_text_ok("plain", 5));
    cr_assert(kvr_text_ok("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9));
    cr_assert(!kvr_text_ok("a\0b", 3), "NUL");
    cr_assert(!kvr_text_ok("\xc3", 1), "truncated");
    cr_assert(!kvr_text_ok("\xc0\xaf", 2), "overlong");
    cr_assert(!kvr_text_ok("\xed\xa0\x80", 3), "surrogate");
    cr_assert(!kvr_text_ok("\xf4\x90\x80\x80", 4), "past U+10FFFF");
    cr_assert(!kvr_text_ok("\xff", 1));
    cr_assert(!kvr_text_ok("\x80", 1), "stray continuation");
}

static const char *parse(const char *body, kvr_set_t *s)
{
    return kvr_parse_set(p, body, strlen(body), s);
}

Test(body, valid_bodies)
{
    kvr_set_t s;
    cr_assert_null(parse("{\"key\":\"k\",\"value\":\"v\"}", &s));
    cr_assert_str_eq(s.key, "k");
    cr_assert_str_eq(s.val, "v");
    cr_assert_null(parse(" {\"value\":\"\",\"key\":\"\\u00e9\\n\"} \n", &s));
    cr_assert_eq(s.klen, 3);
    cr_assert_eq(s.vlen, 0);
    cr_assert_null(parse("{\"key\":\"k\",\"value\":\"v\",\"ttl\":30}", &s));
    cr_assert(s.has_ttl);
    cr_assert_eq(s.ttl, 30);
    cr_assert_null(parse("{\"key\":\"a\\\\u0000\",\"value\":\"x\"}", &s), "an escaped backslash is not a NUL escape");
    cr_assert_eq(s.klen, 7);
}

Test(body, malformed_bodies_are_rejected)
{
    kvr_set_t s;
    const char *bad[] = {
        "", "{", "[]", "\"str\"", "42", "null",
        "{\"key\":\"k\",\"value\":\"v\"} x", "{\"key\":\"k\",\"value\":\"v\"}{}",
        "{\"value\":\"v\"}", "{\"key\":\"\",\"value\":\"v\"}", "{\"key\":1,\"value\":\"v\"}",
        "{\"key\":\"k\"}", "{\"key\":\"k\",\"value\":1}", "{\"key\":\"k\",\"value\":null}",
        "{\"key\":\"k\",\"value\":{}}", "{\"key\":\"a\\u0000b\",\"value\":\"v\"}",
        "{\"key\":\"k\",\"value\":\"\\u0000\"}", "{\"key\":\"k\",\"value\":\"\xff\"}",
        "{\"key\":\"\\ud800\",\"value\":\"v\"}",
        "{\"key\":\"k\",\"value\":\"v\",\"ttl\":0}", "{\"key\":\"k\",\"value\":\"v\",\"ttl\":1.5}",
        "{\"key\":\"k\",\"value\":\"v\",\"ttl\":\"10\"}", "{\"key\":\"k\",\"value\":\"v\",\"ttl\":-3}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_not_null(parse(bad[i], &s), "accepted: %s", bad[i]);
    const char nul[] = "{\"key\":\"k\0\",\"value\":\"v\"}";
    cr_assert_not_null(kvr_parse_set(p, nul, sizeof nul - 1, &s), "raw NUL byte");
}

Test(body, answers_are_json)
{
    char *j = kvr_json_kv(p, "key", "a\"b", 3, "value", "\xc3\xa9\n", 3);
    cr_assert_str_eq(j, "{\"key\":\"a\\\"b\",\"value\":\"\xc3\xa9\\n\"}");
}

TestSuite(batch, .init = setup, .fini = teardown);

static const char *pbatch(const char *body, kvr_op_t **ops, int *n)
{
    return kvr_parse_batch(p, body, strlen(body), 3, ops, n);
}

Test(batch, valid_batches)
{
    kvr_op_t *ops;
    int n;
    cr_assert_null(pbatch("{\"ops\":[{\"op\":\"set\",\"key\":\"a\",\"value\":\"1\",\"ttl\":5},"
                          "{\"op\":\"del\",\"key\":\"b\"}, {\"op\":\"set\",\"key\":\"c\",\"value\":\"\"}]}",
                          &ops, &n));
    cr_assert_eq(n, 3);
    cr_assert(!ops[0].del && ops[0].kv.has_ttl && ops[0].kv.ttl == 5);
    cr_assert_str_eq(ops[0].kv.key, "a");
    cr_assert_str_eq(ops[0].kv.val, "1");
    cr_assert(ops[1].del);
    cr_assert_str_eq(ops[1].kv.key, "b");
    cr_assert_eq(ops[2].kv.vlen, 0);
}

Test(batch, malformed_batches_name_the_op)
{
    kvr_op_t *ops;
    int n;
    struct { const char *body, *err; } bad[] = {
        { "", "empty body" }, { "[]", "body must be a JSON object" },
        { "{}", "missing ops" }, { "{\"ops\":{}}", "ops must be an array" },
        { "{\"ops\":[]}", "ops must not be empty" },
        { "{\"ops\":[1,2,3,4]}", "too many ops: at most 3" },
        { "{\"ops\":[1]}", "ops[0]: must be an object" },
        { "{\"ops\":[{\"op\":\"set\",\"key\":\"a\",\"value\":\"1\"},{\"key\":\"b\"}]}", "ops[1]: \"op\"" },
        { "{\"ops\":[{\"op\":\"put\",\"key\":\"a\",\"value\":\"1\"}]}", "ops[0]: \"op\"" },
        { "{\"ops\":[{\"op\":\"set\",\"key\":\"a\"}]}", "ops[0]: missing value" },
        { "{\"ops\":[{\"op\":\"set\",\"key\":\"\",\"value\":\"1\"}]}", "ops[0]: key must not be empty" },
        { "{\"ops\":[{\"op\":\"del\",\"key\":\"a\",\"value\":\"1\"}]}", "ops[0]: a del takes only a key" },
        { "{\"ops\":[{\"op\":\"set\",\"key\":\"a\",\"value\":\"1\",\"ttl\":0}]}", "ops[0]: ttl" },
        { "{\"ops\":[{\"op\":\"set\",\"key\":\"a\\u0000\",\"value\":\"1\"}]}", "U+0000" },
        { "{\"ops\":[]} x", "trailing data" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *err = pbatch(bad[i].body, &ops, &n);
        cr_assert_not_null(err, "accepted: %s", bad[i].body);
        cr_assert(strstr(err, bad[i].err), "%s: said \"%s\"", bad[i].body, err);
        cr_assert_eq(n, 0);
    }
}

Test(query, entity_tags)
{
    int star, n;
    apr_uint64_t s[4];
    cr_assert_eq(kvr_parse_etags("\"12\"", &star, s, 4, &n), 1);
    cr_assert(!star && n == 1 && s[0] == 12);
    cr_assert_eq(kvr_parse_etags(" * ", &star, s, 4, &n), 1);
    cr_assert(star && n == 0);
    cr_assert_eq(kvr_parse_etags("\"1\", W/\"2\", \"x3\" ,\"4\"", &star, s, 4, &n), 1);
    cr_assert(!star && n == 2 && s[0] == 1 && s[1] == 4, "weak and foreign tags never match");
    const char *bad[] = { "", "12", "\"12", "\"1\",", "*, \"1\"", "\"1\" \"2\"", "W/12" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(kvr_parse_etags(bad[i], &star, s, 4, &n), 0, "accepted: %s", bad[i]);
}

/* kvr_json_kv escapes by hand what cJSON_PrintUnformatted escapes: the
 * answers must read byte for byte as they did through a cJSON tree. */
static void same_as_cjson(const char *v, size_t n)
{
    char *mine = kvr_json_kv(p, "key", "k", 1, "value", v, n);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "key", "k");
    cJSON_AddStringToObject(o, "value", apr_pstrmemdup(p, v, n));
    char *theirs = cJSON_PrintUnformatted(o);
    cr_assert_str_eq(mine, theirs, "value of %zu bytes", n);
    cJSON_free(theirs);
    cJSON_Delete(o);
}

Test(body, answers_escape_every_byte_as_cjson_does)
{
    for (int c = 1; c < 256; c++) {
        char s[3] = { 'a', (char)c, 'z' };
        same_as_cjson(s, 3);
        same_as_cjson(s + 1, 1);
    }
    same_as_cjson("", 0);
    unsigned seed = 13;
    for (int i = 0; i < 2000; i++) {
        char s[64];
        size_t n = (size_t)(i % 64);
        for (size_t k = 0; k < n; k++) {
            seed = seed * 1103515245u + 12345u;
            s[k] = (char)(1 + (seed >> 16) % 255);
        }
        same_as_cjson(s, n);
    }
    char *two = kvr_json_kv(p, "error", "not found", 9, NULL, NULL, 0);
    cr_assert_str_eq(two, "{\"error\":\"not found\"}");
}

/* ---- the shape check before cJSON ------------------------------------
 * cJSON's allocations are counted here (its hooks are process-wide, which
 * is fine in this test program): a refused body must not have cost a
 * tree, and an accepted one only a bounded one. */
static size_t tree_bytes, tree_allocs;
static void *counting_malloc(size_t n)
{
    tree_bytes += n;
    tree_allocs++;
    return malloc(n);
}
static void counting_setup(void)
{
    setup();
    cJSON_Hooks h = { counting_malloc, free };
    cJSON_InitHooks(&h);
}
static void counting_teardown(void)
{
    cJSON_InitHooks(NULL);
    teardown();
}
TestSuite(shape, .init = counting_setup, .fini = counting_teardown);

/* head, then unit n times, then tail, in p. */
static char *repeat(const char *head, const char *unit, size_t n, const char *tail, size_t *len)
{
    size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
    *len = hl + ul * n + tl;
    char *b = apr_palloc(p, *len + 1), *o = b;
    memcpy(o, head, hl);
    o += hl;
    for (size_t i = 0; i < n; i++, o += ul)
        memcpy(o, unit, ul);
    memcpy(o, tail, tl + 1);
    return b;
}

/* body (len bytes) is refused by the /batch parser (batch, allowing
 * max_ops operations) or the /set parser with an error saying `want`, and
 * cJSON was never run on it.  what names the case in a failure. */
static void refused_without_tree(int batch, const char *body, size_t len, int max_ops,
                                 const char *want, const char *what)
{
    kvr_set_t s;
    kvr_op_t *ops;
    int n;
    tree_allocs = 0;
    const char *err = batch ? kvr_parse_batch(p, body, len, max_ops, &ops, &n)
                            : kvr_parse_set(p, body, len, &s);
    cr_assert_not_null(err, "%s: accepted", what);
    cr_assert(strstr(err, want), "%s: said \"%s\"", what, err);
    cr_assert_eq(tree_allocs, 0, "%s: cJSON was run", what);
}

Test(shape, unknown_and_repeated_fields_are_refused_by_name)
{
    kvr_set_t s;
    struct { int batch; const char *body, *err; } bad[] = {
        { 0, "{\"key\":\"k\",\"value\":\"v\",\"pad\":[0,0]}",
          "unknown field \"pad\": a /set body holds only key, value and ttl" },
        { 0, "{\"pad\":1,\"key\":\"k\",\"value\":\"v\"}", "unknown field \"pad\"" },
        { 0, "{\"k\\u0065y\":\"k\",\"value\":\"v\"}", "unknown field \"k\\u0065y\"" },
        { 0, "{\"key\":\"k\",\"value\":\"v\",\"value\":\"w\"}", "duplicate field \"value\"" },
        { 0, "{\"key\":\"k\",\"value\":\"v\",\"ttl\":5,\"ttl\":5}", "duplicate field \"ttl\"" },
        { 0, "{\"key\":{\"a\":1},\"value\":\"v\"}", "key must be a string" },
        { 0, "{\"key\":\"k\",\"ttl\":[1]}", "ttl must be a whole number" },
        { 1, "{\"ops\":[{\"op\":\"del\",\"key\":\"a\"}],\"pad\":[0]}",
          "unknown field \"pad\": a /batch body holds only ops" },
        { 1, "{\"ops\":[{\"op\":\"del\",\"key\":\"a\"},{\"op\":\"del\",\"key\":\"b\",\"x\":[0]}]}",
          "ops[1]: unknown field \"x\": an operation holds only op, key, value and ttl" },
        { 1, "{\"ops\":[{\"op\":\"del\",\"key\":\"a\",\"key\":\"b\"}]}", "ops[0]: duplicate field \"key\"" },
        { 1, "{\"ops\":[{\"op\":[\"set\"],\"key\":\"a\"}]}", "ops[0]: \"op\" must be" },
        { 1, "{\"ops\":[[0,0]]}", "ops[0]: must be an object" },
        { 1, "{\"ops\":{\"op\":\"del\"}}", "ops must be an array" },
        { 1, "{\"ops\":[{\"op\":\"del\",\"key\":\"a\"}],\"ops\":[]}", "duplicate field \"ops\"" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        refused_without_tree(bad[i].batch, bad[i].body, strlen(bad[i].body), 3, bad[i].err, bad[i].body);
    /* A long unknown name is shown cut, at a character. */
    char body[200];
    snprintf(body, sizeof body, "{\"%s\xc3\xa9%s\":1}", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
    const char *err = kvr_parse_set(p, body, strlen(body), &s);
    cr_assert(strstr(err, "unknown field \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\""), "said %s", err);
    /* A byte-order mark is skipped, as cJSON skips it. */
    const char *bom = "\xEF\xBB\xBF{\"key\":\"k\",\"value\":\"v\"}";
    cr_assert_null(kvr_parse_set(p, bom, strlen(bom), &s));
}

/* The hostile shapes of t/memory.t, 1 MB each: refused without a tree. */
Test(shape, hostile_bodies_are_refused_before_any_tree)
{
    struct { int batch; const char *head, *unit, *tail, *err; } bad[] = {
        { 1, "{\"ops\":[{\"op\":\"del\",\"key\":\"a\"}],\"pad\":[", "0,", "0]}", "unknown field \"pad\"" },
        { 1, "{\"ops\":[{\"op\":\"del\",\"key\":\"a\"}],\"pad\":[", "[[[[[[[[]]]]]]]],", "0]}", "unknown field" },
        { 0, "{\"key\":\"k\",\"value\":", "[", "", "value must be a string" },
        { 0, "", "[", "", "body must be a JSON object" },
        { 0, "{\"key\":\"k\",\"value\":\"v\",\"x\":", "{\"a\":", "", "unknown field \"x\"" },
        { 1, "{\"ops\":[", "{\"op\":\"del\",\"key\":\"a\"},", "{}]}", "too many ops: at most 1000" },
        { 0, "{\"key\":\"k\",\"value\":\"v\",", "\"a\":0,", "\"b\":0}", "unknown field \"a\"" },
        { 0, "{\"key\":\"k\",\"value\":\"v\",", "\"ttl\":9,", "\"ttl\":9}", "duplicate field \"ttl\"" },
        { 0, "{\"key\":\"k\",\"value\":\"v\",\"junk\":\"", "x", "\"}", "unknown field \"junk\"" },
        { 1, "{\"ops\":[{\"op\":\"del\",\"key\":\"a\",\"x\":[", "0,", "0]}]}", "ops[0]: unknown field \"x\"" },
        /* cJSON skips any byte up to 0x20 as whitespace (found by the fuzzer). */
        { 1, "\x07[", "0,", "0]", "invalid JSON" },
        { 0, "\n\x01{\"key\":\"k\",\"value\":\"v\",\"pad\":[", "0,", "0]}", "invalid JSON" },
        { 0, "{\"key\":\"k\",\x01\"pad\":[", "0,", "0]}", "invalid JSON" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        size_t len;
        char *body = repeat(bad[i].head, bad[i].unit, (1u << 20) / strlen(bad[i].unit), bad[i].tail, &len);
        char what[32];
        snprintf(what, sizeof what, "shape %zu", i);
        refused_without_tree(bad[i].batch, body, len, 1000, bad[i].err, what);
    }
}

/* What passes costs a bounded tree: 1000 operations (the most there can
 * be) well under a megabyte, one large value about its own size. */
Test(shape, accepted_bodies_cost_a_bounded_tree)
{
    size_t len;
    char *body = repeat("{\"ops\":[", "{\"op\":\"set\",\"key\":\"k\",\"value\":\"v\",\"ttl\":5},", 999,
                        "{\"op\":\"del\",\"key\":\"k\"}]}", &len);
    kvr_op_t *ops;
    int n;
    tree_bytes = 0;
    cr_assert_null(kvr_parse_batch(p, body, len, 1000, &ops, &n));
    cr_assert_eq(n, 1000);
    cr_assert_lt(tree_bytes, 512u << 10, "1000 ops took %zu bytes of tree", tree_bytes);
    body = repeat("{\"key\":\"k\",\"value\":\"", "x", 1u << 20, "\"}", &len);
    kvr_set_t s;
    tree_bytes = 0;
    cr_assert_null(kvr_parse_set(p, body, len, &s));
    cr_assert_eq(s.vlen, 1u << 20);
    cr_assert_lt(tree_bytes, len + 4096, "a 1 MiB value took %zu bytes of tree", tree_bytes);
    /* The fields point into the tree, which lives as long as the pool. */
    cr_assert_eq(s.val[0], 'x');
    cr_assert_eq(s.val[s.vlen - 1], 'x');
}

/* Strings are written as cJSON writes them (the answers did not change
 * when the tree went), whatever the bytes. */
Test(shape, json_strings_match_cjson)
{
    cJSON_InitHooks(NULL);
    const char *samples[] = { "", "plain", "q\"b\\s/", "\b\f\n\r\t", "\x01\x1f\x7f", "caf\xc3\xa9 \xe2\x82\xac",
                              "a\x02\x03" "b\"\"\\\\c" };
    for (size_t i = 0; i < sizeof samples / sizeof *samples; i++) {
        const char *v = samples[i];
        size_t n = strlen(v);
        cJSON *str = cJSON_CreateString(v);
        char *want = cJSON_PrintUnformatted(str);
        char buf[64];
        char *end = kvr_json_put(buf, v, n);
        cr_assert_eq((size_t)(end - buf), kvr_json_len(v, n), "length of sample %zu", i);
        cr_assert_eq((size_t)(end - buf), strlen(want), "sample %zu: %s", i, want);
        cr_assert_eq(memcmp(buf, want, strlen(want)), 0, "sample %zu: %.*s vs %s", i, (int)(end - buf), buf, want);
        cJSON_free(want);
        cJSON_Delete(str);
    }
}
