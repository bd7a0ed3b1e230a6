/* input.c -- reading a request's key and body, and the size checks
 * (input.h).  Decoding and JSON parsing are request.c's; this file is the
 * part that talks to Apache. */
#include <string.h>

#include "httpd.h"
#include "http_core.h"
#include "apr_strings.h"
#include "http_protocol.h"
#include "http_request.h"

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

int kvh_read_body(request_rec *r, apr_size_t limit, char **body, apr_size_t *len,
                  reject_t *rj)
{
    apr_off_t max = ap_get_limit_req_body(r);
    if (max > 0 && (apr_off_t)limit > max)
        limit = (apr_size_t)max;
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    if (cl && apr_atoi64(cl) > (apr_int64_t)limit)
        return kvh_reject(rj, HTTP_REQUEST_ENTITY_TOO_LARGE, "request body too large");
    if (ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK) != OK)
        return kvh_reject(rj, HTTP_BAD_REQUEST, "could not read the request body");
    apr_size_t cap = cl && apr_atoi64(cl) > 0 ? (apr_size_t)apr_atoi64(cl) + 1 : 8192, n = 0;
    char *buf = apr_palloc(r->pool, cap);
    if (ap_should_client_block(r)) {
        for (;;) {
            if (n + 1 >= cap) {
                apr_size_t ncap = cap * 2;
                char *nb = apr_palloc(r->pool, ncap);
                memcpy(nb, buf, n);
                buf = nb;
                cap = ncap;
            }
            long got = ap_get_client_block(r, buf + n, cap - n - 1);
            if (got == 0)
                break;
            if (got < 0)
                return kvh_reject(rj, r->status == HTTP_REQUEST_ENTITY_TOO_LARGE
                                  ? HTTP_REQUEST_ENTITY_TOO_LARGE : HTTP_BAD_REQUEST,
                              "could not read the request body");
            n += (apr_size_t)got;
            if (n > limit)
                return kvh_reject(rj, HTTP_REQUEST_ENTITY_TOO_LARGE, "request body too large");
        }
    }
    buf[n] = '\0';
    *body = buf;
    *len = n;
    return 1;
}
