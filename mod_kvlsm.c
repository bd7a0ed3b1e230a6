/* mod_kvlsm.c -- Apache glue for the kvlsm store: the KVLSM* directives,
 * the hooks (post_config prepares data directories, child_init opens the
 * engine in each child, map_to_storage keeps the store's URLs off the
 * filesystem) and the `kvlsm` handler that maps GET /get, POST /set and
 * DELETE /del onto the engine.  Storage lives in engine/, request parsing
 * in http/request.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "util_filter.h"
#include "mod_status.h"
#include "ap_expr.h"
#include "unixd.h"
#include "apr_hash.h"
#include "apr_strings.h"
#include "apr_lib.h"

#include "engine/kvlsm.h"
#include <cjson/cJSON.h>
#include "http/request.h"
#include "http/handlers.h"
#include "http/store.h"

module AP_MODULE_DECLARE_DATA kvlsm_module;

#define KVLSM_HANDLER "kvlsm"

typedef struct {
    const char *data_dir;
    apr_size_t memtable_bytes;
    int sync_mode;               /* kv_sync_mode_e, -1 unset */
    apr_int64_t sync_interval_ms;
    apr_int64_t max_key_bytes;
    apr_int64_t max_value_bytes;
    int compression;             /* kv_compression_e, -1 unset */
    apr_int64_t map_bytes;       /* -1 unset */
} kvlsm_server_conf;

/* This child's stores (kvlsm_store_t), by data directory. */
static apr_hash_t *open_stores;

/* ---- configuration ------------------------------------------------- */

static void *create_kvlsm_server_config(apr_pool_t *p, server_rec *s)
{
    (void)s;
    kvlsm_server_conf *c = apr_pcalloc(p, sizeof(*c));
    c->sync_mode = -1;
    c->sync_interval_ms = -1;
    c->max_key_bytes = -1;
    c->max_value_bytes = -1;
    c->compression = -1;
    c->map_bytes = -1;
    return c;
}

static void *merge_kvlsm_server_config(apr_pool_t *p, void *basev, void *addv)
{
    kvlsm_server_conf *base = basev, *add = addv, *c = apr_pcalloc(p, sizeof(*c));
    c->data_dir = add->data_dir ? add->data_dir : base->data_dir;
    c->memtable_bytes = add->memtable_bytes ? add->memtable_bytes : base->memtable_bytes;
    c->sync_mode = add->sync_mode >= 0 ? add->sync_mode : base->sync_mode;
    c->sync_interval_ms = add->sync_interval_ms >= 0 ? add->sync_interval_ms : base->sync_interval_ms;
    c->max_key_bytes = add->max_key_bytes >= 0 ? add->max_key_bytes : base->max_key_bytes;
    c->max_value_bytes = add->max_value_bytes >= 0 ? add->max_value_bytes : base->max_value_bytes;
    c->compression = add->compression >= 0 ? add->compression : base->compression;
    c->map_bytes = add->map_bytes >= 0 ? add->map_bytes : base->map_bytes;
    return c;
}

/* The effective engine options of a server (defaults filled in). */
static kv_options_t server_options(const kvlsm_server_conf *c)
{
    kv_options_t o;
    kv_options_default(&o);
    if (c->memtable_bytes)
        o.memtable_bytes = c->memtable_bytes;
    if (c->sync_mode >= 0)
        o.sync_mode = (kv_sync_mode_e)c->sync_mode;
    if (c->sync_interval_ms >= 0)
        o.sync_interval_ms = (apr_uint32_t)c->sync_interval_ms;
    if (c->max_key_bytes >= 0)
        o.max_key_bytes = (apr_size_t)c->max_key_bytes;
    if (c->max_value_bytes >= 0)
        o.max_value_bytes = (apr_size_t)c->max_value_bytes;
    if (c->compression >= 0)
        o.compression = (kv_compression_e)c->compression;
    if (c->map_bytes >= 0)
        o.map_bytes = (apr_size_t)c->map_bytes;
    return o;
}

/* "4096", "64K", "4M", "1G" -> bytes; -1 if malformed. */
static apr_int64_t parse_size(const char *arg)
{
    char *end;
    errno = 0;
    apr_int64_t n = apr_strtoi64(arg, &end, 10);
    if (errno || end == arg || n < 0)
        return -1;
    apr_int64_t mul = 1;
    if (*end == 'K' || *end == 'k')
        mul = 1024;
    else if (*end == 'M' || *end == 'm')
        mul = 1024 * 1024;
    else if (*end == 'G' || *end == 'g')
        mul = 1024 * 1024 * 1024;
    else if (*end != '\0')
        return -1;
    if (mul != 1 && end[1] != '\0')
        return -1;
    if (n > APR_INT64_MAX / mul)
        return -1;
    return n * mul;
}

static const char *range_error(cmd_parms *cmd, const char *arg, const char *range)
{
    return apr_psprintf(cmd->pool, "%s: '%s' is not valid: %s", cmd->cmd->name, arg, range);
}

static kvlsm_server_conf *sconf(cmd_parms *cmd)
{
    return ap_get_module_config(cmd->server->module_config, &kvlsm_module);
}

static const char *set_data_dir(cmd_parms *cmd, void *d, const char *arg)
{
    (void)d;
    const char *path = ap_server_root_relative(cmd->pool, arg);
    if (!path || !*arg)
        return apr_psprintf(cmd->pool, "%s: invalid path '%s'", cmd->cmd->name, arg);
    sconf(cmd)->data_dir = path;
    return NULL;
}

static const char *set_memtable_size(cmd_parms *cmd, void *d, const char *arg)
{
    (void)d;
    apr_int64_t n = parse_size(arg);
    if (n < 64 * 1024 || n > (apr_int64_t)1024 * 1024 * 1024)
        return range_error(cmd, arg, "give a size from 64K to 1G (bytes, or with a K, M or G suffix)");
    sconf(cmd)->memtable_bytes = (apr_size_t)n;
    return NULL;
}

#define NELEMS(a) ((int)(sizeof(a) / sizeof *(a)))

/* Directive keywords, indexed by the engine's enum values. */
static const char *const sync_names[] = { "off", "interval", "always" };      /* kv_sync_mode_e */
static const char *const compression_names[] = { "none", "lz4", "zstd" };     /* kv_compression_e */

/* The index of arg among n names (any case), or -1. */
static int keyword(const char *arg, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (!strcasecmp(arg, names[i]))
            return i;
    return -1;
}

static const char *set_sync(cmd_parms *cmd, void *d, const char *arg)
{
    (void)d;
    int m = keyword(arg, sync_names, NELEMS(sync_names));
    if (m < 0)
        return range_error(cmd, arg, "use always, interval or off");
    sconf(cmd)->sync_mode = m;
    return NULL;
}

static const char *set_compression(cmd_parms *cmd, void *d, const char *arg)
{
    (void)d;
    int m = keyword(arg, compression_names, NELEMS(compression_names));
    if (m < 0)
        return range_error(cmd, arg, "use none, lz4 or zstd");
    sconf(cmd)->compression = m;
    return NULL;
}

static const char *set_sync_interval(cmd_parms *cmd, void *d, const char *arg)
{
    (void)d;
    apr_int64_t n = parse_size(arg);
    if (n < 1 || n > 3600000 || !apr_isdigit(arg[strlen(arg) - 1]))
        return range_error(cmd, arg, "give milliseconds from 1 to 3600000");
    sconf(cmd)->sync_interval_ms = n;
    return NULL;
}

static const char *set_max_key(cmd_parms *cmd, void *d, const char *arg)
{
    (void)d;
    apr_int64_t n = parse_size(arg);
    if (n < 1 || n > 65535)
        return range_error(cmd, arg, "give a size from 1 to 65535 bytes");
    sconf(cmd)->max_key_bytes = n;
    return NULL;
}

static const char *set_max_value(cmd_parms *cmd, void *d, const char *arg)
{
    (void)d;
    apr_int64_t n = parse_size(arg);
    if (n < 1 || n > (apr_int64_t)256 * 1024 * 1024)
        return range_error(cmd, arg, "give a size from 1 byte to 256M (bytes, or with a K or M suffix)");
    sconf(cmd)->max_value_bytes = n;
    return NULL;
}

static const char *set_map_size(cmd_parms *cmd, void *d, const char *arg)
{
    (void)d;
    apr_int64_t n = parse_size(arg);
    if (n < 0 || n > (apr_int64_t)64 * 1024 * 1024 * 1024)
        return range_error(cmd, arg, "give a size from 0 (never map) to 64G (bytes, or with a K, M or G suffix)");
    sconf(cmd)->map_bytes = n;
    return NULL;
}

/* ---- start-up ------------------------------------------------------ */

/* Make dir exist and belong to (or be writable by) the child user. */
static apr_status_t prepare_dir(apr_pool_t *p, server_rec *s, const char *dir)
{
    apr_status_t rv = apr_dir_make_recursive(dir, APR_FPROT_OS_DEFAULT, p);
    if (rv != APR_SUCCESS && !APR_STATUS_IS_EEXIST(rv)) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, APLOGNO(10901)
                     "KVLSMDataDir %s: cannot create the directory", dir);
        return rv;
    }
    if (geteuid() == 0) {
        /* Children run as User/Group: hand them the directory and what
         * is in it (the engine keeps no subdirectories). */
        uid_t uid = ap_unixd_config.user_id;
        gid_t gid = ap_unixd_config.group_id;
        if (chown(dir, uid, gid) < 0) {
            rv = APR_FROM_OS_ERROR(errno);
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, APLOGNO(10902)
                         "KVLSMDataDir %s: cannot give it to the child user %s",
                         dir, ap_unixd_config.user_name);
            return rv;
        }
        apr_dir_t *d;
        apr_finfo_t fi;
        if (apr_dir_open(&d, dir, p) == APR_SUCCESS) {
            while (apr_dir_read(&fi, APR_FINFO_NAME | APR_FINFO_TYPE, d) == APR_SUCCESS) {
                if (fi.filetype != APR_REG)
                    continue;
                const char *f = apr_pstrcat(p, dir, "/", fi.name, NULL);
                if (chown(f, uid, gid) < 0)
                    ap_log_error(APLOG_MARK, APLOG_WARNING, APR_FROM_OS_ERROR(errno), s,
                                 APLOGNO(10903) "KVLSMDataDir: cannot chown %s", f);
            }
            apr_dir_close(d);
        }
    }
    else if (access(dir, W_OK | X_OK) < 0) {
        rv = APR_FROM_OS_ERROR(errno);
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, APLOGNO(10904)
                     "KVLSMDataDir %s: not writable by the user Apache runs as", dir);
        return rv;
    }
    return APR_SUCCESS;
}

static int kvlsm_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                             apr_pool_t *ptemp, server_rec *s)
{
    (void)plog;
    /* The first pass only checks the configuration: do nothing yet. */
    void *data = NULL;
    const char *key = "kvlsm_post_config";
    apr_pool_userdata_get(&data, key, s->process->pool);
    if (!data) {
        apr_pool_userdata_set((const void *)1, key, apr_pool_cleanup_null, s->process->pool);
        if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG)
            return OK;
    }
    (void)pconf;
    apr_hash_t *seen = apr_hash_make(ptemp);
    for (server_rec *v = s; v; v = v->next) {
        kvlsm_server_conf *c = ap_get_module_config(v->module_config, &kvlsm_module);
        if (!c->data_dir || apr_hash_get(seen, c->data_dir, APR_HASH_KEY_STRING))
            continue;
        apr_hash_set(seen, c->data_dir, APR_HASH_KEY_STRING, c);
        if (prepare_dir(ptemp, v, c->data_dir) != APR_SUCCESS)
            return HTTP_INTERNAL_SERVER_ERROR;
        kv_options_t o = server_options(c);
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, v, APLOGNO(10905)
                     "kvlsm: store %s for %s:%u: memtable %" APR_SIZE_T_FMT
                     " bytes, sync %s (interval %u ms), max key %" APR_SIZE_T_FMT
                     " bytes, max value %" APR_SIZE_T_FMT " bytes, compression %s,"
                     " mapped SST bytes %" APR_SIZE_T_FMT,
                     c->data_dir, v->server_hostname ? v->server_hostname : "*",
                     (unsigned)v->port, o.memtable_bytes, sync_names[o.sync_mode],
                     (unsigned)o.sync_interval_ms, o.max_key_bytes, o.max_value_bytes,
                     compression_names[o.compression], o.map_bytes);
    }
    return OK;
}

/* The engine found a damaged file: say which, so the operator can run
 * kvlsm-check on it. */
static void log_corruption(void *baton, const char *path, apr_uint64_t offset)
{
    ap_log_error(APLOG_MARK, APLOG_CRIT, 0, (server_rec *)baton, APLOGNO(10910)
                 "kvlsm: damaged file %s (at offset %" APR_UINT64_T_FMT "): the store "
                 "refuses to serve it; check it with kvlsm-check", path, offset);
}

static void kvlsm_child_init(apr_pool_t *pchild, server_rec *s)
{
    open_stores = apr_hash_make(pchild);
    for (server_rec *v = s; v; v = v->next) {
        kvlsm_server_conf *c = ap_get_module_config(v->module_config, &kvlsm_module);
        if (!c->data_dir || apr_hash_get(open_stores, c->data_dir, APR_HASH_KEY_STRING))
            continue;
        kv_options_t o = server_options(c);
        o.on_corruption = log_corruption;
        o.corruption_baton = v;
        /* Opened now; if that fails, again on a later request (store.c).
         * The store closes itself in a cleanup of pchild. */
        kvlsm_store_t *st = kvlsm_store_create(pchild, v, c->data_dir, &o);
        apr_hash_set(open_stores, c->data_dir, APR_HASH_KEY_STRING, st);
    }
}

/* ---- requests --------------------------------------------------------*/

/* Is this request for a location with SetHandler kvlsm?  Evaluated before
 * the directory walk so the store's URLs never touch the filesystem. */
static int kvlsm_map_to_storage(request_rec *r)
{
    int rv = ap_location_walk(r);
    if (rv != OK)
        return rv;
    core_dir_config *d = ap_get_core_module_config(r->per_dir_config);
    if (!d->expr_handler)
        return DECLINED;
    const char *err = NULL;
    const char *h = ap_expr_str_exec(r, d->expr_handler, &err);
    if (err || !h || strcmp(h, KVLSM_HANDLER) != 0)
        return DECLINED;
    /* No file behind these URLs: skip <Directory> and file walks.  Mark
     * the request, so errors Apache itself answers (Require, ...) are
     * JSON too. */
    apr_table_setn(r->notes, "kvlsm", "1");
    return OK;
}

/* Errors Apache answers itself on the store's URLs (403 from Require,
 * 413 from LimitRequestBody, ...): send {"error":...} as JSON instead of
 * Apache's HTML page. */
#define KVLSM_ERROR_FILTER "KVLSM_JSON_ERROR"

static apr_status_t kvlsm_error_filter(ap_filter_t *f, apr_bucket_brigade *bb)
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

static void kvlsm_insert_error_filter(request_rec *r)
{
    if (apr_table_get(r->notes, "kvlsm"))
        ap_add_output_filter(KVLSM_ERROR_FILTER, NULL, r, r->connection);
}

int kvh_send_json(request_rec *r, int status, const char *json)
{
    r->status = status;
    ap_set_content_type(r, "application/json");
    apr_table_setn(r->headers_out, "X-KVLSM-Pid", apr_psprintf(r->pool, "%ld", (long)getpid()));
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    size_t n = strlen(json);
    ap_set_content_length(r, (apr_off_t)n + 1);
    ap_rwrite(json, (int)n, r);
    ap_rputc('\n', r);
    /* Returning OK with r->status set sends our body with that status. */
    return OK;
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

/* Engine failures: log them, and answer without leaking internals. */
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

static int method_not_allowed(request_rec *r, const char *allow)
{
    apr_table_setn(r->headers_out, "Allow", allow);
    return kvh_send_error(r, HTTP_METHOD_NOT_ALLOWED,
                      apr_psprintf(r->pool, "method %s not allowed here; use %s", r->method, allow),
                      NULL, 0);
}

int kvh_reject(reject_t *rj, int status, const char *msg)
{
    rj->status = status;
    rj->msg = msg;
    return 0;
}

/* The key from ?key=..., checked.  1 if good, else 0 with *rj filled. */
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
    if (*klen > o->max_key_bytes)
        return kvh_reject(rj, HTTP_REQUEST_ENTITY_TOO_LARGE,
                      apr_psprintf(r->pool, "key longer than %" APR_SIZE_T_FMT " bytes",
                                   o->max_key_bytes));
    return 1;
}

/* Read the whole body, at most limit bytes (and LimitRequestBody).
 * 1 if read, else 0 with *rj filled. */
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

static int handle_get(request_rec *r, kv_db_t *db, const kv_options_t *o)
{
    char *key;
    size_t klen;
    reject_t rj;
    if (!kvh_query_key(r, o, &key, &klen, &rj))
        return kvh_send_error(r, rj.status, rj.msg, NULL, 0);
    kv_value_t v;
    apr_status_t rv = kv_get(db, key, klen, r->pool, &v);
    if (rv == KV_NOTFOUND)
        return kvh_send_error(r, HTTP_NOT_FOUND, "not found", key, klen);
    if (rv != APR_SUCCESS)
        return kvh_engine_error(r, rv, "get", key, klen);
    if (!kvr_text_ok(v.data, v.len))
        return kvh_engine_error(r, KV_CORRUPT, "get (stored value is not UTF-8 text)", key, klen);
    apr_table_setn(r->headers_out, "ETag", apr_psprintf(r->pool, "\"%" APR_UINT64_T_FMT "\"", v.seq));
    char *json = kvr_json_kv(r->pool, "key", key, klen, "value", v.data, v.len);
    if (json && v.expire_at > 0) {
        /* Seconds left, at least 1: it reads as missing from expire_at on. */
        apr_int64_t left = v.expire_at - (apr_int64_t)apr_time_sec(apr_time_now());
        json = apr_psprintf(r->pool, "%.*s,\"ttl\":%" APR_INT64_T_FMT "}",
                            (int)strlen(json) - 1, json, left > 1 ? left : 1);
    }
    return kvh_send_json(r, HTTP_OK, json);
}

/* ---- conditional writes: If-Match and If-None-Match ------------------ */

#define MAX_TAGS 16
#define CAS_TRIES 64

typedef struct {
    int has_match, match_star, nmatch;
    int has_none, none_star, nnone;
    apr_uint64_t match[MAX_TAGS], none[MAX_TAGS];
} precond_t;

/* Read the headers; 0 with *rj filled if one is malformed. */
static int read_preconditions(request_rec *r, precond_t *pc, reject_t *rj)
{
    memset(pc, 0, sizeof(*pc));
    const char *m = apr_table_get(r->headers_in, "If-Match");
    const char *nm = apr_table_get(r->headers_in, "If-None-Match");
    if (m && !(pc->has_match = kvr_parse_etags(m, &pc->match_star, pc->match, MAX_TAGS, &pc->nmatch)))
        return kvh_reject(rj, HTTP_BAD_REQUEST, "malformed If-Match: use * or \"<etag>\"");
    if (nm && !(pc->has_none = kvr_parse_etags(nm, &pc->none_star, pc->none, MAX_TAGS, &pc->nnone)))
        return kvh_reject(rj, HTTP_BAD_REQUEST, "malformed If-None-Match: use * or \"<etag>\"");
    return 1;
}

static int tag_in(const apr_uint64_t *tags, int n, apr_uint64_t seq)
{
    for (int i = 0; i < n; i++)
        if (tags[i] == seq)
            return 1;
    return 0;
}

/* The forms the engine checks itself: no condition, If-Match with one
 * tag (the version must be it), If-None-Match: * (the key must be absent). */
static int precond_direct(const precond_t *pc)
{
    return (!pc->has_match && !pc->has_none)
           || (pc->has_match && !pc->match_star && pc->nmatch == 1 && !pc->has_none)
           || (pc->has_none && pc->none_star && !pc->has_match);
}

/* Turn the preconditions into an engine condition for one attempt.  A
 * direct form maps onto one.  Any other form reads the current version,
 * checks it here, and writes on condition that it is still that version:
 * a racing write makes the engine refuse (KV_CONFLICT) and the caller
 * tries again.  Returns 0 when the preconditions fail now (412); *rv is
 * set if reading failed. */
static int precond_to_write(request_rec *r, kv_db_t *db, const char *key, size_t klen,
                            const precond_t *pc, kv_write_opts_t *wo, apr_status_t *rv)
{
    *rv = APR_SUCCESS;
    wo->cond = KV_IF_ANY;
    if (!pc->has_match && !pc->has_none)
        return 1;
    if (precond_direct(pc)) {
        wo->cond = pc->has_match ? KV_IF_SEQ : KV_IF_ABSENT;
        wo->if_seq = pc->has_match ? pc->match[0] : 0;
        return 1;
    }
    kv_value_t cur;
    apr_status_t g = kv_get(db, key, klen, r->pool, &cur);
    if (g != APR_SUCCESS && g != KV_NOTFOUND) {
        *rv = g;
        return 1;
    }
    int exists = g == APR_SUCCESS;
    if (pc->has_match && !(exists && (pc->match_star || tag_in(pc->match, pc->nmatch, cur.seq))))
        return 0;
    if (pc->has_none && exists && (pc->none_star || tag_in(pc->none, pc->nnone, cur.seq)))
        return 0;
    wo->cond = exists ? KV_IF_SEQ : KV_IF_ABSENT;
    wo->if_seq = exists ? cur.seq : 0;
    return 1;
}

static int precondition_failed(request_rec *r, const char *key, size_t klen)
{
    return kvh_send_error(r, HTTP_PRECONDITION_FAILED, "precondition failed: the key's version "
                          "does not match If-Match / If-None-Match", key, klen);
}

static int handle_set(request_rec *r, kv_db_t *db, const kv_options_t *o)
{
    char *body;
    apr_size_t blen;
    apr_size_t limit = (o->max_key_bytes + o->max_value_bytes) * JSON_INFLATION + BODY_SLACK;
    reject_t rj;
    if (!kvh_read_body(r, limit, &body, &blen, &rj))
        return kvh_send_error(r, rj.status, rj.msg, NULL, 0);
    kvr_set_t s;
    const char *err = kvr_parse_set(r->pool, body, blen, &s);
    if (err)
        return kvh_send_error(r, HTTP_BAD_REQUEST, err, s.key, s.klen);
    if (s.klen > o->max_key_bytes)
        return kvh_send_error(r, HTTP_REQUEST_ENTITY_TOO_LARGE,
                          apr_psprintf(r->pool, "key longer than %" APR_SIZE_T_FMT " bytes",
                                       o->max_key_bytes), NULL, 0);
    if (s.vlen > o->max_value_bytes)
        return kvh_send_error(r, HTTP_REQUEST_ENTITY_TOO_LARGE,
                          apr_psprintf(r->pool, "value longer than %" APR_SIZE_T_FMT " bytes",
                                       o->max_value_bytes), s.key, s.klen);
    precond_t pc;
    if (!read_preconditions(r, &pc, &rj))
        return kvh_send_error(r, rj.status, rj.msg, s.key, s.klen);
    kv_write_opts_t wo = { KV_IF_ANY, 0, 0 };
    if (s.has_ttl)
        wo.expire_at = (apr_int64_t)apr_time_sec(r->request_time) + s.ttl;
    apr_uint64_t seq = 0;
    apr_status_t rv = KV_CONFLICT;
    for (int i = 0; rv == KV_CONFLICT && i < CAS_TRIES; i++) {
        if (!precond_to_write(r, db, s.key, s.klen, &pc, &wo, &rv))
            return precondition_failed(r, s.key, s.klen);
        if (rv == APR_SUCCESS)
            rv = kv_put(db, s.key, s.klen, s.val, s.vlen, &wo, &seq);
        if (rv == KV_CONFLICT && precond_direct(&pc))
            return precondition_failed(r, s.key, s.klen);
    }
    if (rv == KV_CONFLICT)
        return kvh_send_error(r, HTTP_SERVICE_UNAVAILABLE, "the key kept changing; try again", s.key, s.klen);
    if (rv != APR_SUCCESS)
        return kvh_engine_error(r, rv, "set", s.key, s.klen);
    apr_table_setn(r->headers_out, "ETag", apr_psprintf(r->pool, "\"%" APR_UINT64_T_FMT "\"", seq));
    return kvh_send_json(r, HTTP_OK, kvr_json_kv(r->pool, "key", s.key, s.klen, NULL, NULL, 0));
}

static int handle_del(request_rec *r, kv_db_t *db, const kv_options_t *o)
{
    char *key;
    size_t klen;
    reject_t rj;
    if (!kvh_query_key(r, o, &key, &klen, &rj))
        return kvh_send_error(r, rj.status, rj.msg, NULL, 0);
    precond_t pc;
    if (!read_preconditions(r, &pc, &rj))
        return kvh_send_error(r, rj.status, rj.msg, key, klen);
    kv_value_t old;
    kv_write_opts_t wo = { KV_IF_ANY, 0, 0 };
    apr_status_t rv = KV_CONFLICT;
    for (int i = 0; rv == KV_CONFLICT && i < CAS_TRIES; i++) {
        if (!precond_to_write(r, db, key, klen, &pc, &wo, &rv))
            return precondition_failed(r, key, klen);
        if (rv == APR_SUCCESS)
            rv = kv_delete(db, key, klen, &wo, r->pool, &old);
        /* If-Match on a missing key fails the precondition (RFC 9110). */
        if ((rv == KV_CONFLICT && precond_direct(&pc)) || (rv == KV_NOTFOUND && pc.has_match))
            return precondition_failed(r, key, klen);
    }
    if (rv == KV_CONFLICT)
        return kvh_send_error(r, HTTP_SERVICE_UNAVAILABLE, "the key kept changing; try again", key, klen);
    if (rv == KV_NOTFOUND)
        return kvh_send_error(r, HTTP_NOT_FOUND, "not found", key, klen);
    if (rv != APR_SUCCESS)
        return kvh_engine_error(r, rv, "delete", key, klen);
    return kvh_send_json(r, HTTP_OK, kvr_json_kv(r->pool, "key", key, klen, "value", old.data, old.len));
}

/* The endpoint name: the URI below the mount point.  The mount point is
 * the path of the innermost section with core directives in it (the one
 * holding SetHandler kvlsm), as core's merged per-dir config records it. */
static const char *endpoint(request_rec *r)
{
    core_dir_config *d = ap_get_core_module_config(r->per_dir_config);
    const char *loc = d && d->d && !d->r && !d->d_is_fnmatch && d->d[0] == '/' ? d->d : "/";
    size_t n = strlen(loc);
    while (n > 0 && loc[n - 1] == '/')
        n--;
    if (strncmp(r->uri, loc, n) == 0 && (r->uri[n] == '/' || r->uri[n] == '\0'))
        return r->uri + n;
    /* A regex mount (<LocationMatch>): take the last path segment. */
    const char *slash = strrchr(r->uri, '/');
    return slash ? slash : r->uri;
}

static int kvlsm_handler(request_rec *r)
{
    if (!r->handler || strcmp(r->handler, KVLSM_HANDLER) != 0)
        return DECLINED;
    static const struct {
        const char *path;
        int method;
        const char *allow;
    } eps[] = {
        { "/get", M_GET, "GET, HEAD" }, { "/set", M_POST, "POST" },
        { "/del", M_DELETE, "DELETE" }, { "/scan", M_GET, "GET, HEAD" },
        { "/batch", M_POST, "POST" }, { "/stats", M_GET, "GET, HEAD" },
    };
    const char *ep = endpoint(r);
    int which = -1;
    for (int i = 0; i < NELEMS(eps); i++)
        if (!strcmp(ep, eps[i].path))
            which = i;
    if (which < 0)
        return kvh_send_error(r, HTTP_NOT_FOUND, "no such endpoint: use /get, /set, /del, "
                              "/scan, /batch or /stats", NULL, 0);
    if (r->method_number != eps[which].method)
        return method_not_allowed(r, eps[which].allow);
    kvlsm_server_conf *c = ap_get_module_config(r->server->module_config, &kvlsm_module);
    if (!c->data_dir) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, APLOGNO(10909)
                      "kvlsm: SetHandler kvlsm is used but KVLSMDataDir is not set for %s",
                      r->server->server_hostname);
        return kvh_send_error(r, HTTP_SERVICE_UNAVAILABLE, "store unavailable: no KVLSMDataDir", NULL, 0);
    }
    kvlsm_store_t *st = open_stores ? apr_hash_get(open_stores, c->data_dir, APR_HASH_KEY_STRING) : NULL;
    apr_time_t retry = apr_time_from_sec(1);
    kv_db_t *db = st ? kvlsm_store_get(st, &retry) : NULL;
    if (!db) {
        apr_table_setn(r->err_headers_out, "Retry-After",
                       apr_psprintf(r->pool, "%" APR_TIME_T_FMT, apr_time_sec(retry)));
        return kvh_send_error(r, HTTP_SERVICE_UNAVAILABLE, "store unavailable", NULL, 0);
    }
    kv_options_t o = server_options(c);
    switch (which) {
    case 0: return handle_get(r, db, &o);
    case 1: return handle_set(r, db, &o);
    case 2: return handle_del(r, db, &o);
    case 3: return kvh_scan(r, db, &o);
    case 4: return kvh_batch(r, db, &o);
    default: return kvh_stats(r, db);
    }
}

/* ---- the module ------------------------------------------------------ */

static const command_rec kvlsm_cmds[] = {
    AP_INIT_TAKE1("KVLSMDataDir", set_data_dir, NULL, RSRC_CONF,
                  "Directory of the key-value store (created if missing)"),
    AP_INIT_TAKE1("KVLSMMemtableSize", set_memtable_size, NULL, RSRC_CONF,
                  "Memtable flush threshold: 64K to 1G (default 4M)"),
    AP_INIT_TAKE1("KVLSMSync", set_sync, NULL, RSRC_CONF,
                  "Durability: always | interval | off (default interval)"),
    AP_INIT_TAKE1("KVLSMSyncInterval", set_sync_interval, NULL, RSRC_CONF,
                  "Milliseconds between background fdatasyncs in interval mode (default 1000)"),
    AP_INIT_TAKE1("KVLSMCompression", set_compression, NULL, RSRC_CONF,
                  "SST data block compression: none | lz4 | zstd (default none)"),
    AP_INIT_TAKE1("KVLSMMapSize", set_map_size, NULL, RSRC_CONF,
                  "SST bytes each child may read through memory mappings instead of pread:"
                  " 0 (default, never) to 64G, K, M or G suffix allowed"),
    AP_INIT_TAKE1("KVLSMMaxKeySize", set_max_key, NULL, RSRC_CONF,
                  "Longest key in bytes, 1 to 65535 (default 4096)"),
    AP_INIT_TAKE1("KVLSMMaxValueSize", set_max_value, NULL, RSRC_CONF,
                  "Longest value in bytes, K or M suffix allowed, up to 256M (default 1M)"),
    { NULL, { NULL }, NULL, 0, 0, NULL }
};

/* mod_status: a section per store this child has open. */
static int kvlsm_status_hook(request_rec *r, int flags)
{
    if (!open_stores)
        return OK;
    for (apr_hash_index_t *hi = apr_hash_first(r->pool, open_stores); hi; hi = apr_hash_next(hi)) {
        const void *dir;
        void *st;
        apr_time_t retry;
        apr_hash_this(hi, &dir, NULL, &st);
        kv_db_t *db = kvlsm_store_get(st, &retry);
        if (db)
            kvh_status_section(r, flags, dir, db);
    }
    return OK;
}

static void kvlsm_register_hooks(apr_pool_t *p)
{
    APR_OPTIONAL_HOOK(ap, status_hook, kvlsm_status_hook, NULL, NULL, APR_HOOK_MIDDLE);
    (void)p;
    ap_hook_post_config(kvlsm_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(kvlsm_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_map_to_storage(kvlsm_map_to_storage, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_handler(kvlsm_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_insert_error_filter(kvlsm_insert_error_filter, NULL, NULL, APR_HOOK_MIDDLE);
    ap_register_output_filter(KVLSM_ERROR_FILTER, kvlsm_error_filter, NULL, AP_FTYPE_RESOURCE);
}

AP_DECLARE_MODULE(kvlsm) = {
    STANDARD20_MODULE_STUFF,
    NULL,
    NULL,
    create_kvlsm_server_config,
    merge_kvlsm_server_config,
    kvlsm_cmds,
    kvlsm_register_hooks,
    AP_MODULE_FLAG_NONE
};
