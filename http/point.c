/* point.c -- the point operations: GET /get, POST /set and DELETE /del,
 * one key each, with If-Match / If-None-Match (precond.h) on the writes.
 * The version of a key is its ETag. */
#include <string.h>

#include "apr_strings.h"
#include "http_protocol.h"

#include "http/handlers.h"
#include "http/input.h"
#include "http/precond.h"
#include "http/request.h"

static void set_etag(request_rec *r, apr_uint64_t seq)
{
    apr_table_setn(r->headers_out, "ETag", apr_psprintf(r->pool, "\"%" APR_UINT64_T_FMT "\"", seq));
}

int kvh_get(request_rec *r, kv_db_t *db, const kv_options_t *o)
{
    char *key;
    size_t klen;
    reject_t rj;
    if (!kvh_query_key(r, o, &key, &klen, &rj))
        return kvh_send_reject(r, &rj, NULL, 0);
    kv_value_t v;
    apr_status_t rv = kv_get(db, key, klen, r->pool, &v);
    if (rv == KV_NOTFOUND)
        return kvh_send_error(r, HTTP_NOT_FOUND, "not found", key, klen);
    if (rv != APR_SUCCESS)
        return kvh_engine_error(r, rv, "get", key, klen);
    if (!kvr_text_ok(v.data, v.len))
        return kvh_engine_error(r, KV_CORRUPT, "get (stored value is not UTF-8 text)", key, klen);
    set_etag(r, v.seq);
    char *json = kvr_json_kv(r->pool, "key", key, klen, "value", v.data, v.len);
    if (v.expire_at <= 0)
        return kvh_send_json(r, HTTP_OK, json);
    /* Seconds left, at least 1: it reads as missing from expire_at on.
     * Sent after the object without its '}', so the value is not copied
     * again. */
    apr_int64_t left = v.expire_at - (apr_int64_t)apr_time_sec(apr_time_now());
    char *tail = apr_psprintf(r->pool, ",\"ttl\":%" APR_INT64_T_FMT "}", left > 1 ? left : 1);
    apr_size_t n = strlen(json) - 1, tn = strlen(tail);
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_pool_create(json, n, r->pool, bb->bucket_alloc));
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_pool_create(tail, tn, r->pool, bb->bucket_alloc));
    return kvh_send_brigade(r, HTTP_OK, bb, (apr_off_t)(n + tn));
}

int kvh_set(request_rec *r, kv_db_t *db, const kv_options_t *o)
{
    char *body;
    apr_size_t blen;
    apr_size_t limit = (o->max_key_bytes + o->max_value_bytes) * JSON_INFLATION + BODY_SLACK;
    reject_t rj;
    if (!kvh_read_body(r, limit, "KVLSMMaxKeySize and KVLSMMaxValueSize, as JSON", &body, &blen, &rj))
        return kvh_send_reject(r, &rj, NULL, 0);
    kvr_set_t s;
    const char *err = kvr_parse_set(r->pool, body, blen, &s);
    if (err)
        return kvh_send_error(r, HTTP_BAD_REQUEST, err, s.key, s.klen);
    if (!kvh_check_sizes(r, o, "", s.klen, (apr_ssize_t)s.vlen, &rj))
        return kvh_send_reject(r, &rj, s.klen > o->max_key_bytes ? NULL : s.key, s.klen);
    precond_t pc;
    if (!precond_read(r, &pc, &rj))
        return kvh_send_reject(r, &rj, s.key, s.klen);
    kv_write_opts_t wo = { KV_IF_ANY, 0, 0 };
    if (s.has_ttl)
        wo.expire_at = (apr_int64_t)apr_time_sec(r->request_time) + s.ttl;
    apr_uint64_t seq = 0;
    apr_status_t rv = KV_CONFLICT;
    for (int i = 0; rv == KV_CONFLICT && i < PRECOND_TRIES; i++) {
        if (!precond_to_write(r, db, s.key, s.klen, &pc, &wo, &rv))
            return precond_failed(r, s.key, s.klen);
        if (rv == APR_SUCCESS)
            rv = kv_put(db, s.key, s.klen, s.val, s.vlen, &wo, &seq);
        if (rv == KV_CONFLICT && precond_direct(&pc))
            return precond_failed(r, s.key, s.klen);
    }
    if (rv == KV_CONFLICT)
        return kvh_send_error(r, HTTP_SERVICE_UNAVAILABLE, "the key kept changing; try again", s.key, s.klen);
    if (rv != APR_SUCCESS)
        return kvh_engine_error(r, rv, "set", s.key, s.klen);
    set_etag(r, seq);
    return kvh_send_json(r, HTTP_OK, kvr_json_kv(r->pool, "key", s.key, s.klen, NULL, NULL, 0));
}

int kvh_del(request_rec *r, kv_db_t *db, const kv_options_t *o)
{
    char *key;
    size_t klen;
    reject_t rj;
    if (!kvh_query_key(r, o, &key, &klen, &rj))
        return kvh_send_reject(r, &rj, NULL, 0);
    precond_t pc;
    if (!precond_read(r, &pc, &rj))
        return kvh_send_reject(r, &rj, key, klen);
    kv_value_t old;
    kv_write_opts_t wo = { KV_IF_ANY, 0, 0 };
    apr_status_t rv = KV_CONFLICT;
    for (int i = 0; rv == KV_CONFLICT && i < PRECOND_TRIES; i++) {
        if (!precond_to_write(r, db, key, klen, &pc, &wo, &rv))
            return precond_failed(r, key, klen);
        if (rv == APR_SUCCESS)
            rv = kv_delete(db, key, klen, &wo, r->pool, &old);
        /* If-Match on a missing key fails the precondition (RFC 9110). */
        if ((rv == KV_CONFLICT && precond_direct(&pc)) || (rv == KV_NOTFOUND && pc.has_match))
            return precond_failed(r, key, klen);
    }
    if (rv == KV_CONFLICT)
        return kvh_send_error(r, HTTP_SERVICE_UNAVAILABLE, "the key kept changing; try again", key, klen);
    if (rv == KV_NOTFOUND)
        return kvh_send_error(r, HTTP_NOT_FOUND, "not found", key, klen);
    if (rv != APR_SUCCESS)
        return kvh_engine_error(r, rv, "delete", key, klen);
    return kvh_send_json(r, HTTP_OK, kvr_json_kv(r->pool, "key", key, klen, "value", old.data, old.len));
}
