/* scan.c -- GET /scan: keys in ascending byte order from one consistent
 * snapshot, bounded by prefix, start (inclusive) and end (exclusive), a
 * page of at most `limit` items at a time.  The `next` cursor is the last
 * key the page walked, in base64url (URL-safe as it stands); passed back
 * as `cursor`, the next page starts after that key.
 *
 * What one page may cost is bounded: its items take at most
 * scan_page_bytes() of JSON (the escaped size, counted before an item is
 * added, the first one included), and it walks at most limit +
 * SCAN_WALK_DEAD keys, so a long run of deleted or expired keys ends the
 * page early, with a cursor, instead of being walked in one request.  The
 * answer is written once, escaped as it goes, into buckets that are sent
 * as they are: no tree, no printing, no copies. */
#include <stdlib.h>
#include <string.h>
#include "apr_lib.h"
#include "apr_strings.h"
#include "http_protocol.h"
#include "http/handlers.h"
#include "http/input.h"
#include "http/request.h"

#define SCAN_DEFAULT_LIMIT 100
#define SCAN_MAX_LIMIT 1000
/* The JSON of a page's items: at most this (a page of 1000 one-megabyte
 * values would be a gigabyte), or one item of the largest size the
 * configuration allows, whichever is more. */
#define SCAN_PAGE_BYTES ((apr_size_t)8 << 20)
/* Keys a page may walk besides its items (deleted, expired). */
#define SCAN_WALK_DEAD 10000

static apr_size_t scan_page_bytes(const kv_options_t *o)
{
    apr_size_t one = (o->max_key_bytes + o->max_value_bytes) * JSON_INFLATION + BODY_SLACK;
    return one > SCAN_PAGE_BYTES ? one : SCAN_PAGE_BYTES;
}

/* ---- the answer, written once --------------------------------------- */

/* Heap buckets of 64 KiB filled in turn; an item larger than that gets a
 * bucket of its own size.  The brigade owns them (freed with it, on any
 * path). */
#define PAGE_CHUNK ((apr_size_t)64 << 10)

typedef struct {
    apr_bucket_brigade *bb;
    apr_bucket *cur;          /* the heap bucket being filled */
    char *base;
    apr_size_t cap;
    apr_off_t total;
} page_t;

/* n bytes at the end of the answer, to be written by the caller. */
static char *page_room(page_t *pg, apr_size_t n)
{
    if (!pg->cur || pg->cur->length + n > pg->cap) {
        apr_size_t cap = n > PAGE_CHUNK ? n : PAGE_CHUNK;
        char *b = malloc(cap);
        if (!b)
            return NULL;
        b[0] = '\0';   /* heap_create takes const memory; gcc wants it written */
        apr_bucket *e = apr_bucket_heap_create(b, cap, free, pg->bb->bucket_alloc);
        e->length = 0;   /* grows as it is filled */
        APR_BRIGADE_INSERT_TAIL(pg->bb, e);
        pg->cur = e;
        pg->base = b;
        pg->cap = cap;
    }
    char *at = pg->base + pg->cur->length;
    pg->cur->length += n;
    pg->total += (apr_off_t)n;
    return at;
}

static int page_put(page_t *pg, const char *s, apr_size_t n)
{
    char *at = page_room(pg, n);
    if (at)
        memcpy(at, s, n);
    return at != NULL;
}

/* The bytes of one item: {"key":K[,"value":V]}, a comma before all but the first. */
static apr_size_t item_bytes(int first, const char *k, apr_size_t kl, const kv_value_t *v)
{
    return !first + sizeof "{\"key\":}" - 1 + kvr_json_len(k, kl)
           + (v ? sizeof ",\"value\":" - 1 + kvr_json_len(v->data, v->len) : 0);
}

static int page_item(page_t *pg, int first, const char *k, apr_size_t kl, const kv_value_t *v,
                     apr_size_t n)
{
    char *o = page_room(pg, n), *start = o;
    if (!o)
        return 0;
    if (!first)
        *o++ = ',';
    memcpy(o, "{\"key\":", 7);
    o = kvr_json_put(o + 7, k, kl);
    if (v) {
        memcpy(o, ",\"value\":", 9);
        o = kvr_json_put(o + 9, v->data, v->len);
    }
    *o++ = '}';
    return (apr_size_t)(o - start) == n;
}

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
    page_t pg = { apr_brigade_create(r->pool, r->connection->bucket_alloc), NULL, NULL, 0, 0 };
    apr_size_t cap = scan_page_bytes(o), bytes = 0;
    kv_iter_t *it = NULL;
    apr_status_t rv = kv_iter_open(&it, db, r->pool);
    if (rv == APR_SUCCESS) {
        kv_iter_set_budget(it, (apr_uint64_t)limit + SCAN_WALK_DEAD);
        rv = kv_iter_seek(it, from, flen);
    }
    if (rv == APR_SUCCESS && !page_put(&pg, "{\"items\":[", 10))
        rv = APR_ENOMEM;
    long count = 0;
    int more = 0;
    /* The cursor if the page ends early: the last key added (copied: the
     * iterator's is gone once it moves). */
    char *last = NULL;
    size_t last_len = 0, last_cap = 0;
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
        if (with_values && !kvr_text_ok(v.data, v.len)) {
            char *bad = apr_pstrmemdup(r->pool, k, kl);   /* k goes with the iterator */
            kv_iter_close(it);
            return kvh_engine_error(r, KV_CORRUPT, "scan (stored value is not UTF-8 text)", bad, kl);
        }
        apr_size_t n = item_bytes(count == 0, k, kl, with_values ? &v : NULL);
        /* The first item always fits in a page of the configured sizes;
         * one larger (written before KVLSMMaxValueSize was lowered) goes
         * alone on its page. */
        if (count == limit || (count > 0 && bytes + n > cap)) {
            more = 1;
            break;
        }
        if (!page_item(&pg, count == 0, k, kl, with_values ? &v : NULL, n)) {
            rv = APR_ENOMEM;
            break;
        }
        bytes += n;
        if (kl + 1 > last_cap) {
            last_cap = kl + 1 > 2 * last_cap ? kl + 1 : 2 * last_cap;
            last = apr_palloc(r->pool, last_cap);
        }
        memcpy(last, k, kl);
        last_len = kl;
        count++;
    }
    if (rv == APR_SUCCESS)
        rv = kv_iter_status(it);
    char *next = NULL;
    if (rv == APR_SUCCESS && more)
        next = cursor_encode(r->pool, (const unsigned char *)last, last_len);
    else if (rv == APR_SUCCESS && kv_iter_exhausted(it)) {
        /* The walk stopped in a run of dead keys: go on after the last
         * one, unless it is already past the range. */
        const char *k;
        apr_size_t kl;
        kv_iter_key(it, &k, &kl);
        if (!(end && key_cmp(k, kl, end, elen) >= 0) && !(prefix && (kl < plen || memcmp(k, prefix, plen))))
            next = cursor_encode(r->pool, (const unsigned char *)k, kl);
    }
    kv_iter_close(it);
    if (rv != APR_SUCCESS)
        return kvh_engine_error(r, rv, "scan", NULL, 0);
    const char *tail = next ? apr_pstrcat(r->pool, "],\"next\":\"", next, "\"}", NULL) : "],\"next\":null}";
    if (!page_put(&pg, tail, strlen(tail)))
        return kvh_engine_error(r, APR_ENOMEM, "scan", NULL, 0);
    return kvh_send_brigade(r, HTTP_OK, pg.bb, pg.total);
}
