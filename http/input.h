/* input.h -- what a handler reads from its request: the key of
 * ?key=..., the body (bounded), and the size checks every key and value
 * passes, in one place, whichever endpoint it came through. */
#ifndef KVLSM_INPUT_H
#define KVLSM_INPUT_H

#include "httpd.h"
#include "engine/kvlsm.h"
#include "http/answer.h"

/* JSON may spell a byte as \u00XX: six bytes on the wire for one stored. */
#define JSON_INFLATION 6
#define BODY_SLACK 1024

/* ?key=..., checked (text, size): 1, or 0 with *rj filled. */
int kvh_query_key(request_rec *r, const kv_options_t *o, char **key, size_t *klen,
                  reject_t *rj);
/* The whole body, NUL-terminated, valid until the request ends: 1, or 0
 * with *rj filled.  At most limit bytes (why names the directive behind
 * it), LimitRequestBody and KVLSMMaxInflight (413 beyond, before reading
 * when Content-Length says so).  The child holds at most KVLSMMaxInflight
 * bytes of bodies at once: a body that would take it past (counted on its
 * Content-Length, or as its chunks arrive) gets 503 with Retry-After. */
int kvh_read_body(request_rec *r, apr_size_t limit, const char *why, char **body,
                  apr_size_t *len, reject_t *rj);
/* A key and (unless vlen is -1) a value within the configured sizes: 1,
 * or 0 with *rj filled (413).  what prefixes the message ("ops[3]: "),
 * or is "". */
int kvh_check_sizes(request_rec *r, const kv_options_t *o, const char *what,
                    size_t klen, apr_ssize_t vlen, reject_t *rj);

#endif
