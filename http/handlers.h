/* handlers.h -- what the module's endpoint handlers share: JSON answers
 * and errors (mod_kvlsm.c), reading the key and the body of a request,
 * and the endpoints that live in their own files (scan.c, batch.c,
 * stats.c).  Apache-side code: these include httpd.h. */
#ifndef KVLSM_HANDLERS_H
#define KVLSM_HANDLERS_H

#include "httpd.h"
#include "engine/kvlsm.h"

/* JSON may spell a byte as \u00XX: six bytes on the wire for one stored. */
#define JSON_INFLATION 6
#define BODY_SLACK 1024

/* A rejected request: status and message for the JSON answer. */
typedef struct {
    int status;
    const char *msg;
} reject_t;

/* Fill *rj; returns 0, so `return kvh_reject(...)` reads as "rejected". */
int kvh_reject(reject_t *rj, int status, const char *msg);
/* Answer with status and a JSON body (a newline is added). */
int kvh_send_json(request_rec *r, int status, const char *json);
/* 200 with root printed as the body; root is deleted either way. */
struct cJSON;
int kvh_send_cjson(request_rec *r, struct cJSON *root, const char *what);
/* {"error":msg[,"key":key]} with status. */
int kvh_send_error(request_rec *r, int status, const char *msg,
                   const char *key, size_t klen);
/* An engine failure: logged, and answered without internals. */
int kvh_engine_error(request_rec *r, apr_status_t rv, const char *what,
                     const char *key, size_t klen);
/* ?key=..., checked: 1, or 0 with *rj filled. */
int kvh_query_key(request_rec *r, const kv_options_t *o, char **key, size_t *klen,
                  reject_t *rj);
/* The whole body, at most limit bytes: 1, or 0 with *rj filled. */
int kvh_read_body(request_rec *r, apr_size_t limit, char **body, apr_size_t *len,
                  reject_t *rj);

int kvh_scan(request_rec *r, kv_db_t *db, const kv_options_t *o);    /* GET /scan */
int kvh_batch(request_rec *r, kv_db_t *db, const kv_options_t *o);   /* POST /batch */
int kvh_stats(request_rec *r, kv_db_t *db);                          /* GET /stats */
/* One store's section on mod_status's server-status page. */
void kvh_status_section(request_rec *r, int flags, const char *dir, kv_db_t *db);

#endif
