/* batch.c -- POST /batch: up to 1000 sets and deletes applied all or
 * nothing, as one log record (so a reader, in this child or another,
 * sees all of them or none).  Every operation is checked before anything
 * is written: one bad operation rejects the whole batch. */
#include <string.h>
#include "apr_strings.h"
#include "http_protocol.h"
#include "http/config.h"
#include "http/handlers.h"
#include "http/input.h"
#include "http/request.h"

#define BATCH_MAX_OPS 1000

int kvh_batch(request_rec *r, kv_db_t *db, const kv_options_t *o)
{
    /* KVLSMMaxBatchSize as it is, even below one largest value: an
     * operator who lowers it means it (such a value still goes by /set). */
    apr_size_t limit = kvlsm_conf_limits(kvlsm_conf(r->server)).max_batch_bytes;
    char *body;
    apr_size_t blen;
    reject_t rj;
    if (!kvh_read_body(r, limit, "KVLSMMaxBatchSize", &body, &blen, &rj))
        return kvh_send_reject(r, &rj, NULL, 0);
    kvr_op_t *ops;
    int n;
    const char *err = kvr_parse_batch(r->pool, body, blen, BATCH_MAX_OPS, &ops, &n);
    if (err)
        return kvh_send_error(r, HTTP_BAD_REQUEST, err, NULL, 0);
    kv_batch_t *b;
    apr_status_t rv = kv_batch_create(&b, r->pool);
    if (rv != APR_SUCCESS)
        return kvh_engine_error(r, rv, "batch", NULL, 0);
    apr_int64_t now = (apr_int64_t)apr_time_sec(r->request_time);
    for (int i = 0; i < n; i++) {
        const kvr_set_t *kv = &ops[i].kv;
        if (!kvh_check_sizes(r, o, apr_psprintf(r->pool, "ops[%d]: ", i), kv->klen,
                             ops[i].del ? -1 : (apr_ssize_t)kv->vlen, &rj))
            return kvh_send_reject(r, &rj, kv->key, kv->klen);
        rv = ops[i].del ? kv_batch_delete(b, kv->key, kv->klen)
                        : kv_batch_put(b, kv->key, kv->klen, kv->val, kv->vlen,
                                       kv->has_ttl ? now + kv->ttl : 0);
        if (rv != APR_SUCCESS)
            return kvh_engine_error(r, rv, "batch", kv->key, kv->klen);
    }
    apr_uint64_t first;
    if ((rv = kv_write_batch(db, b, &first)) != APR_SUCCESS)
        return kvh_engine_error(r, rv, "batch", NULL, 0);
    return kvh_send_json(r, HTTP_OK, apr_psprintf(r->pool, "{\"applied\":%d}", n));
}
