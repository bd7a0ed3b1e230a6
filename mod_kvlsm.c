/* mod_kvlsm.c -- the kvlsm module: its hooks (check_config and
 * post_config check and prepare the data directories as the child user
 * would use them, child_init opens each store in a child,
 * map_to_storage keeps the store's URLs off the filesystem, the handler
 * dispatches through the endpoint table; the opt-in fast paths,
 * KVLSMQuickHandler's quick_handler and KVLSMPinConnections, are in
 * http/quick.c, the short wait for a connection's next request in
 * http/nextwait.c), the table itself, and the module declaration.
 * Directives are in http/config.c, answers in http/answer.c, the
 * endpoints in http/point.c, scan.c, batch.c, stats.c, snapshot.c and
 * metrics.c; the storage engine is engine/. */
#include <string.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "mod_status.h"
#include "ap_expr.h"
#include "apr_hash.h"
#include "apr_strings.h"

#include "engine/kvlsm.h"
#include "http/answer.h"
#include "http/config.h"
#include "http/datadir.h"
#include "http/handlers.h"
#include "http/quick.h"
#include "http/nextwait.h"
#include "http/metrics.h"
#include "http/store.h"

#define KVLSM_HANDLER "kvlsm"
#define NELEMS(a) ((int)(sizeof(a) / sizeof *(a)))

/* This child's stores (kvlsm_store_t), by data directory. */
static apr_hash_t *open_stores;

/* ---- start-up -------------------------------------------------------- */

/* Before anything starts (and on `apachectl configtest`): can each
 * store's child user reach its directory? */
static int kvlsm_check_config(apr_pool_t *pconf, apr_pool_t *plog,
                              apr_pool_t *ptemp, server_rec *s)
{
    (void)pconf;
    (void)plog;
    apr_hash_t *seen = apr_hash_make(ptemp);
    int rc = OK;
    for (server_rec *v = s; v; v = v->next) {
        kvlsm_server_conf *c = kvlsm_conf(v);
        if (!c->data_dir || apr_hash_get(seen, c->data_dir, APR_HASH_KEY_STRING))
            continue;
        apr_hash_set(seen, c->data_dir, APR_HASH_KEY_STRING, c);
        if (kvlsm_datadir_check(ptemp, v, c->data_dir) != APR_SUCCESS)
            rc = HTTP_INTERNAL_SERVER_ERROR;
    }
    return rc;
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
        kvlsm_server_conf *c = kvlsm_conf(v);
        if (!c->data_dir || apr_hash_get(seen, c->data_dir, APR_HASH_KEY_STRING))
            continue;
        apr_hash_set(seen, c->data_dir, APR_HASH_KEY_STRING, c);
        if (kvlsm_datadir_prepare(ptemp, v, c->data_dir) != APR_SUCCESS)
            return HTTP_INTERNAL_SERVER_ERROR;
        kv_options_t o = kvlsm_conf_options(c);
        kvlsm_limits_t l = kvlsm_conf_limits(c);
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, v, APLOGNO(10905)
                     "kvlsm: store %s for %s:%u: memtable %" APR_SIZE_T_FMT
                     " bytes, sync %s (interval %u ms), max key %" APR_SIZE_T_FMT
                     " bytes, max value %" APR_SIZE_T_FMT " bytes, compression %s,"
                     " mapped SST bytes %" APR_SIZE_T_FMT ", max batch %" APR_SIZE_T_FMT
                     " bytes, request bodies in flight per child %" APR_SIZE_T_FMT " bytes",
                     c->data_dir, v->server_hostname ? v->server_hostname : "*",
                     (unsigned)v->port, o.memtable_bytes, kvlsm_sync_name(o.sync_mode),
                     (unsigned)o.sync_interval_ms, o.max_key_bytes, o.max_value_bytes,
                     kvlsm_compression_name(o.compression), o.map_bytes,
                     l.max_batch_bytes, l.max_inflight_bytes);
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
    kvh_answer_child_init();
    kvh_nextwait_child_init();
    for (server_rec *v = s; v; v = v->next) {
        kvlsm_server_conf *c = kvlsm_conf(v);
        if (!c->data_dir || apr_hash_get(open_stores, c->data_dir, APR_HASH_KEY_STRING))
            continue;
        kv_options_t o = kvlsm_conf_options(c);
        o.on_corruption = log_corruption;
        o.corruption_baton = v;
        /* Opened now; if that fails, again on a later request (store.c).
         * The store closes itself in a cleanup of pchild. */
        kvlsm_store_t *st = kvlsm_store_create(pchild, v, c->data_dir, &o);
        apr_hash_set(open_stores, c->data_dir, APR_HASH_KEY_STRING, st);
    }
}

/* ---- requests -------------------------------------------------------- */

/* The endpoints: path below the mount point, method, and handler. */
static const struct {
    const char *path;
    int method;
    const char *allow;
    kvh_endpoint_fn *fn;
} endpoints[] = {
    { "/get", M_GET, "GET, HEAD", kvh_get },
    { "/set", M_POST, "POST", kvh_set },
    { "/del", M_DELETE, "DELETE", kvh_del },
    { "/scan", M_GET, "GET, HEAD", kvh_scan },
    { "/batch", M_POST, "POST", kvh_batch },
    { "/stats", M_GET, "GET, HEAD", kvh_stats },
    { "/snapshot", M_GET, "GET, HEAD", kvh_snapshot },
    { "/metrics", M_GET, "GET, HEAD", kvh_metrics },
};

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
    kvh_mark_request(r);
    return OK;
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
    if (strncmp(r->uri, loc, n) == 0 && r->uri[n] == '/')
        return r->uri + n;
    /* A regex mount (<LocationMatch>), or a section of one endpoint's own
     * inside the mount (<Location /snapshot> with its own Require: the
     * URI is then the innermost section's path itself): the last path
     * segment names the endpoint. */
    const char *slash = strrchr(r->uri, '/');
    return slash ? slash : r->uri;
}

static int kvlsm_handler(request_rec *r)
{
    if (!r->handler || strcmp(r->handler, KVLSM_HANDLER) != 0)
        return DECLINED;
    kvh_pin_connection(r);
    kvh_nextwait_arm(r);
    const char *ep = endpoint(r);
    int which = -1;
    for (int i = 0; i < NELEMS(endpoints) && which < 0; i++)
        if (!strcmp(ep, endpoints[i].path))
            which = i;
    if (which < 0)
        return kvh_send_error(r, HTTP_NOT_FOUND, "no such endpoint: use /get, /set, /del, "
                              "/scan, /batch, /stats, /snapshot or /metrics", NULL, 0);
    if (r->method_number != endpoints[which].method)
        return kvh_method_not_allowed(r, endpoints[which].allow);
    kvlsm_server_conf *c = kvlsm_conf(r->server);
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
    kv_options_t o = kvlsm_conf_options(c);
    kvh_metrics_track(r, db);
    return endpoints[which].fn(r, db, &o);
}

/* ---- the module ------------------------------------------------------ */

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
    (void)p;
    APR_OPTIONAL_HOOK(ap, status_hook, kvlsm_status_hook, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(kvlsm_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(kvlsm_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(kvlsm_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    /* Opt-in (KVLSMQuickHandler on); after mod_cache's (APR_HOOK_FIRST). */
    ap_hook_quick_handler(kvh_quick_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_map_to_storage(kvlsm_map_to_storage, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_handler(kvlsm_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_insert_error_filter(kvh_insert_error_filter, NULL, NULL, APR_HOOK_MIDDLE);
    kvh_register_error_filter();
    kvh_nextwait_register();
    kvh_metrics_register_hooks();
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
