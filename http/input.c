/* input.c -- reading a request's key and body, the size checks, and the
 * child's budget for bodies in flight (input.h).  Decoding and JSON parsing are request.c's; this file is the
 * part that talks to Apache. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "httpd.h"
#include "http_core.h"
#include "apr_strings.h"
#include "http_protocol.h"
#include "http_request.h"
#include "util_filter.h"

#include "http/config.h"
#include "http/input.h"
#include "http/request.h"

int kvh_check_sizes(request_rec *r, const kv_options_t *o, const char *what,
                    size_t klen, apr_ssize_t vlen, reject_t *rj)
{
    if (klen > o->max_key_bytes)
        return kvh_reject(rj, HTTP_REQUEST_ENTITY_TOO_LARGE,
                          apr_psprintf(r->pool, "%skey longer than %" APR_SIZE_T_FMT " bytes",
                                       what, o->max_key_bytes));
    if (vlen >= 0 && (size_t)vlen > o->max_value_bytes)
        return kvh_reject(rj, HTTP_REQUEST_ENTITY_TOO_LARGE,
                          apr_psprintf(r->pool, "%svalue longer than %" APR_SIZE_T_FMT " bytes",
                                       what, o->max_value_bytes));
    return 1;
}

int kvh_query_key(request_rec *r, const kv_options_t *o, char **key, size_t *klen,
                  reject_t *rj)
{
    int found = kvr_query_param(r->pool, r->args, "key", key, klen);
    if (found < 0)
        return kvh_reject(rj, HTTP_BAD_REQUEST, "malformed %-escape in key");
    if (found == 0 || *klen == 0)
        return kvh_reject(rj, HTTP_BAD_REQUEST, "missing key: use ?key=...");
    if (!kvr_text_ok(*key, *klen))
        return kvh_reject(rj, HTTP_BAD_REQUEST, "key must be valid UTF-8 without U+0000");
    return kvh_check_sizes(r, o, "", *klen, -1, rj);
}

/* ---- bodies ------------------------------------------------------------
 * A body is read once, into one buffer: of its Content-Length (plus the
 * terminating NUL) when it has one, else grown by doubling as its chunks
 * arrive (realloc: glibc moves a large block by remapping it, not by
 * copying), up to the endpoint's limit.  Every byte of that buffer is counted against
 * the child's KVLSMMaxInflight before it is taken, and given back, with
 * the buffer, when the request's pool goes. */

/* Bytes of request bodies this child holds now, all its threads and
 * virtual hosts (each request compares it with its own server's
 * KVLSMMaxInflight). */
static atomic_size_t inflight_bytes;

typedef struct {
    char *buf;
    apr_size_t cap;           /* bytes allocated, all counted in inflight_bytes */
} body_t;

static apr_status_t body_release(void *data)
{
    body_t *b = data;
    free(b->buf);
    atomic_fetch_sub(&inflight_bytes, b->cap);
    b->buf = NULL;
    b->cap = 0;
    return APR_SUCCESS;
}

/* Grow b to cap bytes: 1, 0 if the child's budget has no room for them
 * now, -1 if out of memory (nothing changes unless 1). */
static int body_grow(body_t *b, apr_size_t cap, apr_size_t budget)
{
    apr_size_t more = cap - b->cap;
    if (atomic_fetch_add(&inflight_bytes, more) + more > budget) {
        atomic_fetch_sub(&inflight_bytes, more);
        return 0;
    }
    char *nb = realloc(b->buf, cap);
    if (!nb) {
        atomic_fetch_sub(&inflight_bytes, more);
        return -1;
    }
    b->buf = nb;
    b->cap = cap;
    return 1;
}

/* At most this much is asked of the input filters at a time: the core's
 * reads are greedy (it takes whatever the socket holds, up to what is
 * asked, in 8 KB buckets), so asking for all of a 6 MB body at once held
 * most of it twice, in buckets and in the buffer. */
#define READ_STEP ((apr_size_t)64 << 10)

/* Up to want bytes of the body into dst: *got of them, *eos once it ended. */
static apr_status_t read_some(request_rec *r, apr_bucket_brigade *bb, char *dst,
                              apr_size_t want, apr_size_t *got, int *eos)
{
    *got = 0;
    if (want > READ_STEP)
        want = READ_STEP;
    apr_status_t rv = ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES, APR_BLOCK_READ,
                                     (apr_off_t)want);
    for (apr_bucket *e = APR_BRIGADE_FIRST(bb); rv == APR_SUCCESS && e != APR_BRIGADE_SENTINEL(bb);
         e = APR_BUCKET_NEXT(e)) {
        if (APR_BUCKET_IS_EOS(e)) {
            *eos = 1;
            break;
        }
        const char *data;
        apr_size_t n;
        if ((rv = apr_bucket_read(e, &data, &n, APR_BLOCK_READ)) != APR_SUCCESS)
            break;
        if (n > want - *got)   /* the input filters honour readbytes; be sure */
            n = want - *got;
        memcpy(dst + *got, data, n);
        *got += n;
    }
    apr_brigade_cleanup(bb);
    return rv;
}

static int too_large(request_rec *r, apr_size_t limit, const char *why, reject_t *rj)
{
    return kvh_reject(rj, HTTP_REQUEST_ENTITY_TOO_LARGE,
                      apr_psprintf(r->pool, "request body too large: at most %" APR_SIZE_T_FMT
                                   " bytes (%s)", limit, why));
}

static int busy(request_rec *r, apr_size_t budget, reject_t *rj)
{
    apr_table_setn(r->err_headers_out, "Retry-After", "1");
    return kvh_reject(rj, HTTP_SERVICE_UNAVAILABLE,
                      apr_psprintf(r->pool, "this child holds as many request bodies as it may "
                                   "(KVLSMMaxInflight %" APR_SIZE_T_FMT " bytes); try again",
                                   budget));
}

int kvh_read_body(request_rec *r, apr_size_t limit, const char *why, char **body,
                  apr_size_t *len, reject_t *rj)
{
    apr_size_t budget = kvlsm_conf_limits(kvlsm_conf(r->server)).max_inflight_bytes;
    apr_off_t lrb = ap_get_limit_req_body(r);
    if (lrb > 0 && (apr_off_t)limit > lrb) {
        limit = (apr_size_t)lrb;
        why = "LimitRequestBody";
    }
    if (limit >= budget) {   /* the body and its NUL must fit in an idle child */
        limit = budget - 1;
        why = "KVLSMMaxInflight";
    }
    /* HTTP_IN has checked the framing: a valid Content-Length, or chunks. */
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    const char *te = apr_table_get(r->headers_in, "Transfer-Encoding");
    apr_off_t clen = -1;
    if (cl && !te) {
        char *end;
        if (apr_strtoff(&clen, cl, &end, 10) != APR_SUCCESS || *end || clen < 0)
            return kvh_reject(rj, HTTP_BAD_REQUEST, "malformed Content-Length");
        if ((apr_uint64_t)clen > limit)
            return too_large(r, limit, why, rj);
    }
    body_t *b = apr_pcalloc(r->pool, sizeof *b);
    apr_pool_cleanup_register(r->pool, b, body_release, apr_pool_cleanup_null);
    apr_size_t cap = clen >= 0 ? (apr_size_t)clen + 1 : (limit < 16383 ? limit + 1 : 16384);
    int ok = body_grow(b, cap, budget);
    if (ok <= 0)
        return ok == 0 ? busy(r, budget, rj)
                       : kvh_reject(rj, HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    apr_size_t n = 0;
    int eos = 0;
    while (!eos && (clen < 0 || n < (apr_size_t)clen)) {
        apr_size_t got;
        apr_status_t rv;
        if (n + 1 == b->cap) {
            if (n == limit) {
                /* Full at the limit: one byte more means too large. */
                char probe;
                rv = read_some(r, bb, &probe, 1, &got, &eos);
                if (rv == APR_SUCCESS && got)
                    return too_large(r, limit, why, rj);
            }
            else {
                apr_size_t ncap = b->cap > (limit + 1) / 2 ? limit + 1 : b->cap * 2;
                if ((ok = body_grow(b, ncap, budget)) <= 0)
                    return ok == 0 ? busy(r, budget, rj)
                                   : kvh_reject(rj, HTTP_INTERNAL_SERVER_ERROR, "out of memory");
                continue;
            }
        }
        else {
            rv = read_some(r, bb, b->buf + n, b->cap - 1 - n, &got, &eos);
            n += got;
        }
        if (rv != APR_SUCCESS)
            return ap_map_http_request_error(rv, HTTP_BAD_REQUEST) == HTTP_REQUEST_ENTITY_TOO_LARGE
                   ? too_large(r, limit, why, rj)
                   : kvh_reject(rj, HTTP_BAD_REQUEST, "could not read the request body");
        if (!got && !eos)   /* a blocking read that brought nothing: give up, never spin */
            return kvh_reject(rj, HTTP_BAD_REQUEST, "could not read the request body");
    }
    if (eos && clen >= 0 && n < (apr_size_t)clen)
        return kvh_reject(rj, HTTP_BAD_REQUEST, "could not read the request body");
    b->buf[n] = '\0';
    *body = b->buf;
    *len = n;
    return 1;
}
