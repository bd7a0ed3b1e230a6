/* scan.c -- GET /scan: keys in ascending byte order from one consistent
 * snapshot, bounded by prefix, start (inclusive) and end (exclusive), a
 * page of at most `limit` items at a time.  The `next` cursor is the last
 * key of the page in base64url (URL-safe as it stands); passed back as
 * `cursor`, the next page starts after that key. */
#include <string.h>
#include <cjson/cJSON.h>
#include "apr_lib.h"
#include "apr_strings.h"
#include "http_protocol.h"
#include "http/handlers.h"
#include "http/input.h"
#include "http/request.h"

#define SCAN_DEFAULT_LIMIT 100
#define SCAN_MAX_LIMIT 1000
/* A page also ends once its values pass this many bytes (a page of 1000
 * one-megabyte values would be a gigabyte). */
#define SCAN_PAGE_BYTES (8u << 20)

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *cursor_encode(apr_pool_t *p, const unsigned char *k, size_t n)
{
    char *out = apr_palloc(p, (n + 2) / 3 * 4 + 1), *o = out;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)k[i] << 16 | (i + 1 < n ? (unsigned)k[i + 1] << 8 : 0)
                     | (i + 2 < n ? k[i + 2] : 0);
        *o++ = b64url[v >> 18 & 63];
        *o++ = b64url[v >> 12 & 63];
        if (i + 1 < n)
            *o++ = b64url[v >> 6 & 63];
        if (i + 2 < n)
            *o++ = b64url[v & 63];
    }
    *o = '\0';
    return out;
}

/* 0 if s is not base64url without padding. */
static int cursor_decode(apr_pool_t *p, const char *s, size_t n, char **out, size_t *olen)
{
    if (n % 4 == 1)
        return 0;
    char *buf = apr_palloc(p, n * 3 / 4 + 1);
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        const char *c = memchr(b64url, s[i], 64);
        if (!c || !s[i])
            return 0;
        acc = acc << 6 | (unsigned)(c - b64url);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (char)(acc >> bits & 0xff);
        }
    }
    if (acc & ((1u << bits) - 1))   /* leftover bits must be zero */
        return 0;
    buf[o] = '\0';
    *out = buf;
    *olen = o;
    return 1;
}

static int key_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    return c ? c : (an > bn) - (an < bn);
}

/* An optional text parameter: 1 present, 0 absent, else rejected. */
static int text_param(request_rec *r, const char *name, char **v, size_t *n, reject_t *rj)
{
    int found = kvr_query_param(r->pool, r->args, name, v, n);
    if (found < 0)
        return kvh_reject(rj, HTTP_BAD_REQUEST, apr_psprintf(r->pool, "malformed %%-escape in %s", name)) - 1;
    if (found && !kvr_text_ok(*v, *n))
        return kvh_reject(rj, HTTP_BAD_REQUEST,
                          apr_psprintf(r->pool, "%s must be valid UTF-8 without U+0000", name)) - 1;
    return found;
}

int kvh_scan(request_rec *r, kv_db_t *db, const kv_options_t *o)
{
    (void)o;
    reject_t rj;
    char *prefix = NULL, *start = NULL, *end = NULL, *lim = NULL, *cur = NULL, *vals = NULL;
    size_t plen = 0, slen = 0, elen = 0, llen = 0, clen = 0, vlen = 0;
    if (text_param(r, "prefix", &prefix, &plen, &rj) < 0 || text_param(r, "start", &start, &slen, &rj) < 0
        || text_param(r, "end", &end, &elen, &rj) < 0 || text_param(r, "limit", &lim, &llen, &rj) < 0
        || text_param(r, "cursor", &cur, &clen, &rj) < 0 || text_param(r, "values", &vals, &vlen, &rj) < 0)
        return kvh_send_reject(r, &rj, NULL, 0);
    long limit = SCAN_DEFAULT_LIMIT;
    if (lim) {
        char *stop;
        limit = llen && llen < 6 && apr_isdigit(lim[0]) ? strtol(lim, &stop, 10) : 0;
        if (limit < 1 || limit > SCAN_MAX_LIMIT || *stop)
            return kvh_send_error(r, HTTP_BAD_REQUEST,
                                  "limit must be a whole number from 1 to 1000", NULL, 0);
    }
    int with_values = 1;
    if (vals && (strcmp(vals, "0") == 0 || strcmp(vals, "1") == 0))
        with_values = vals[0] == '1';
    else if (vals)
        return kvh_send_error(r, HTTP_BAD_REQUEST, "values must be 0 or 1", NULL, 0);
    char *after = NULL;
    size_t alen = 0;
    if (cur && !cursor_decode(r->pool, cur, clen, &after, &alen))
        return kvh_send_error(r, HTTP_BAD_REQUEST, "malformed cursor: pass back a \"next\" as it came", NULL, 0);

    /* Seek to the greatest of start, prefix and the cursor. */
    const char *from = NULL;
    size_t flen = 0;
    if (start) {
        from = start;
        flen = slen;
    }
    if (prefix && (!from || key_cmp(prefix, plen, from, flen) > 0)) {
        from = prefix;
        flen = plen;
    }
    if (after && (!from || key_cmp(after, alen, from, flen) > 0)) {
        from = after;
        flen = alen;
    }
    kv_iter_t *it = NULL;
    apr_status_t rv = kv_iter_open(&it, db, r->pool);
    if (rv == APR_SUCCESS)
        rv = kv_iter_seek(it, from, flen);
    cJSON *root = cJSON_CreateObject(), *items = cJSON_AddArrayToObject(root, "items");
    if (rv == APR_SUCCESS && !items)
        rv = APR_ENOMEM;
    long count = 0;
    size_t bytes = 0;
    int more = 0;
    const char *last = NULL;
    size_t last_len = 0;
    for (; rv == APR_SUCCESS && kv_iter_valid(it); rv = kv_iter_next(it)) {
        const char *k;
        apr_size_t kl;
        kv_iter_key(it, &k, &kl);
        if (after && key_cmp(k, kl, after, alen) <= 0)
            continue;
        if ((end && key_cmp(k, kl, end, elen) >= 0) || (prefix && (kl < plen || memcmp(k, prefix, plen))))
            break;
        kv_value_t v;
        kv_iter_value(it, &v);
        if (count == limit || (count > 0 && bytes + v.len > SCAN_PAGE_BYTES)) {
            more = 1;
            break;
        }
        cJSON *item = cJSON_CreateObject();
        cJSON_AddItemToArray(items, item);
        last = apr_pstrmemdup(r->pool, k, kl);
        last_len = kl;
        cJSON_AddStringToObject(item, "key", last);
        if (with_values) {
            if (!kvr_text_ok(v.data, v.len)) {
                cJSON_Delete(root);
                return kvh_engine_error(r, KV_CORRUPT, "scan (stored value is not UTF-8 text)", last, kl);
            }
            cJSON_AddStringToObject(item, "value", apr_pstrmemdup(r->pool, v.data, v.len));
            bytes += v.len;
        }
        count++;
    }
    if (rv == APR_SUCCESS)
        rv = kv_iter_status(it);
    kv_iter_close(it);
    if (rv != APR_SUCCESS) {
        cJSON_Delete(root);
        return kvh_engine_error(r, rv, "scan", NULL, 0);
    }
    if (more)
        cJSON_AddStringToObject(root, "next", cursor_encode(r->pool, (const unsigned char *)last, last_len));
    else
        cJSON_AddNullToObject(root, "next");
    return kvh_send_cjson(r, root, "scan");
}
