/* answer.h -- how the store answers: JSON bodies and JSON errors with the
 * right status, engine failures logged and answered without internals,
 * and the output filter that turns the errors Apache answers itself on
 * the store's URLs (Require, LimitRequestBody, ...) into JSON.  Handlers
 * call down into these; nothing here knows an endpoint. */
#ifndef KVLSM_ANSWER_H
#define KVLSM_ANSWER_H

#include "httpd.h"
#include "engine/kvlsm.h"

/* A rejected request: status and message for the JSON answer. */
typedef struct {
    int status;
    const char *msg;
} reject_t;

/* Fill *rj; returns 0, so `return kvh_reject(...)` reads as "rejected". */
int kvh_reject(reject_t *rj, int status, const char *msg);

/* Child-init: remember this child's pid for the X-KVLSM-Pid header. */
void kvh_answer_child_init(void);

/* Answer with status and a JSON body (a newline is added); json must
 * live as long as the request (r->pool, or static). */
int kvh_send_json(request_rec *r, int status, const char *json);
/* The same with a body already in bb (len bytes), passed as it is. */
int kvh_send_brigade(request_rec *r, int status, apr_bucket_brigade *bb, apr_off_t len);
/* 200 with root printed as the body; root is deleted either way. */
struct cJSON;
int kvh_send_cjson(request_rec *r, struct cJSON *root, const char *what);
/* {"error":msg[,"key":key]} with status. */
int kvh_send_error(request_rec *r, int status, const char *msg,
                   const char *key, size_t klen);
/* The answer for a rejected request. */
int kvh_send_reject(request_rec *r, const reject_t *rj, const char *key, size_t klen);
/* 405 with an Allow header. */
int kvh_method_not_allowed(request_rec *r, const char *allow);
/* An engine failure: logged, and answered without internals. */
int kvh_engine_error(request_rec *r, apr_status_t rv, const char *what,
                     const char *key, size_t klen);

/* The JSON error filter: registered once, added to a request marked with
 * the note "kvlsm" (kvh_mark_request). */
void kvh_mark_request(request_rec *r);
void kvh_register_error_filter(void);
void kvh_insert_error_filter(request_rec *r);

#endif
