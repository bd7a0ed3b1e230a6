/* answer.c -- JSON answers and errors (answer.h).  Every answer of the
 * store goes through kvh_send_json, which sets the headers all answers
 * share (the type, X-KVLSM-Pid, Cache-Control: no-store). */
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "httpd.h"
#include "apr_lib.h"
#include "apr_strings.h"
#include "http_config.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "util_filter.h"

#include "http/answer.h"
#include "http/request.h"

APLOG_USE_MODULE(kvlsm);

int kvh_reject(reject_t *rj, int status, const char *msg)
{
    rj->status = status;
    rj->msg = msg;
    return 0;
}

/* This child's pid as the X-KVLSM-Pid header says it, written once in
 * child-init (getpid is a system call; the answer needs it every time). */
static char pid_header[24];

void kvh_answer_child_init(void)
{
    apr_snprintf(pid_header, sizeof pid_header, "%ld", (long)getpid());
}

int kvh_send_brigade(request_rec *r, int status, apr_bucket_brigade *bb, apr_off_t len)
{
    r->status = status;
    ap_set_content_type(r, "application/json");
    apr_table_setn(r->headers_out, "X-KVLSM-Pid", pid_header[0] ? pid_header
                   : apr_psprintf(r->pool, "%ld", (long)getpid()));
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    ap_set_content_length(r, len + 1);
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_immortal_create("\n", 1, bb->bucket_alloc));
    /* A client gone away is not an error of ours: nothing to log. */
    (void)ap_pass_brigade(r->output_filters, bb);
    /* Returning OK with r->status set sends our body with that status. */
    return OK;
}

int kvh_send_json(request_rec *r, int status, const char *json)
{
    /* A pool bucket: the body goes out as it is, never copied (the
     * network filters set such a bucket aside without a copy, and the
     * request's pool outlives the write). */
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    size_t n = strlen(json);
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_pool_create(json, n, r->pool, bb->bucket_alloc));
    return kvh_send_brigade(r, status, bb, (apr_off_t)n);
}

int kvh_send_cjson(request_rec *r, cJSON *root, const char *what)
{
    char *json = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!json)
        return kvh_engine_error(r, APR_ENOMEM, what, NULL, 0);
    char *copy = apr_pstrdup(r->pool, json);
    cJSON_free(json);
    return kvh_send_json(r, HTTP_OK, copy);
}

int kvh_send_error(request_rec *r, int status, const char *msg,
                   const char *key, size_t klen)
{
    char *json = key ? kvr_json_kv(r->pool, "error", msg, strlen(msg), "key", key, klen)
                     : kvr_json_kv(r->pool, "error", msg, strlen(msg), NULL, NULL, 0);
    return kvh_send_json(r, status, json ? json : "{\"error\":\"out of memory\"}");
}

int kvh_send_reject(request_rec *r, const reject_t *rj, const char *key, size_t klen)
{
    return kvh_send_error(r, rj->status, rj->msg, key, klen);
}

int kvh_method_not_allowed(request_rec *r, const char *allow)
{
    apr_table_setn(r->headers_out, "Allow", allow);
    return kvh_send_error(r, HTTP_METHOD_NOT_ALLOWED,
                          apr_psprintf(r->pool, "method %s not allowed here; use %s", r->method, allow),
                          NULL, 0);
}

int kvh_engine_error(request_rec *r, apr_status_t rv, const char *what,
                     const char *key, size_t klen)
{
    char buf[256];
    if (APR_STATUS_IS_ENOSPC(rv)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, APLOGNO(10907)
                      "kvlsm: %s failed: no space left", what);
        return kvh_send_error(r, HTTP_INSUFFICIENT_STORAGE, "no space left on the store's disk", key, klen);
    }
    if (rv == KV_TOOLARGE)
        return kvh_send_error(r, HTTP_REQUEST_ENTITY_TOO_LARGE, "key or value too large", key, klen);
    if (rv == KV_CLOSED)
        return kvh_send_error(r, HTTP_SERVICE_UNAVAILABLE, "store unavailable", key, klen);
    if (rv == KV_SYNCFAIL) {
        /* The disk lost writes it had taken: nothing more is written until
         * every child has let go of the store (a full restart). */
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, APLOGNO(10930)
                      "kvlsm: %s refused: %s; restart Apache once the disk is sound",
                      what, kv_strerror(rv, buf, sizeof buf));
        return kvh_send_error(r, HTTP_SERVICE_UNAVAILABLE,
                              "the store's disk failed a sync; writes are refused until it is restarted",
                              key, klen);
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, APLOGNO(10908)
                  "kvlsm: %s failed: %s", what, kv_strerror(rv, buf, sizeof buf));
    return kvh_send_error(r, HTTP_INTERNAL_SERVER_ERROR,
                          rv == KV_CORRUPT ? "store data is damaged" : "internal store error",
                          key, klen);
}

/* ---- errors Apache answers itself ------------------------------------ */

#define KVLSM_ERROR_FILTER "KVLSM_JSON_ERROR"

/* On an error page for one of the store's URLs: drop Apache's HTML and
 * send {"error":"<reason phrase>"} instead. */
static apr_status_t error_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    request_rec *r = f->r;
    int *sent = f->ctx;
    if (!sent)
        sent = f->ctx = apr_pcalloc(r->pool, sizeof(int));
    apr_bucket *e = APR_BRIGADE_FIRST(bb);
    while (e != APR_BRIGADE_SENTINEL(bb)) {
        apr_bucket *next = APR_BUCKET_NEXT(e);
        if (APR_BUCKET_IS_EOS(e)) {
            if (!*sent) {
                const char *line = ap_get_status_line(r->status);
                const char *reason = line && strlen(line) > 4 ? line + 4 : "error";
                char *msg = apr_pstrdup(r->pool, reason);
                for (char *c = msg; *c; c++)
                    *c = (char)apr_tolower(*c);
                char *json = apr_pstrcat(r->pool,
                    kvr_json_kv(r->pool, "error", msg, strlen(msg), NULL, NULL, 0), "\n", NULL);
                APR_BUCKET_INSERT_BEFORE(e, apr_bucket_pool_create(json, strlen(json), r->pool,
                                                                   f->c->bucket_alloc));
                *sent = 1;
            }
        }
        else if (!APR_BUCKET_IS_METADATA(e)) {
            apr_bucket_delete(e);
        }
        e = next;
    }
    ap_set_content_type(r, "application/json");
    return ap_pass_brigade(f->next, bb);
}

void kvh_mark_request(request_rec *r)
{
    apr_table_setn(r->notes, "kvlsm", "1");
}

void kvh_register_error_filter(void)
{
    ap_register_output_filter(KVLSM_ERROR_FILTER, error_filter, NULL, AP_FTYPE_RESOURCE);
}

void kvh_insert_error_filter(request_rec *r)
{
    if (apr_table_get(r->notes, "kvlsm"))
        ap_add_output_filter(KVLSM_ERROR_FILTER, NULL, r, r->connection);
}
