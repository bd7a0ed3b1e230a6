/* quick.c -- the two opt-in fast paths.
 *
 * KVLSMQuickHandler on: the store's requests answered from
 * Apache's quick_handler hook (as mod_cache answers from its cache), so
 * they skip ap_process_request_internal: URI normalization, the
 * translate_name, map_to_storage, header_parser, access, authn, authz,
 * type_checker and fixups phases.  What that gives up is listed in README
 * ("The quick handler"); a request the fast path cannot answer exactly as
 * the normal path would is DECLINED here and takes the normal path.  This
 * file owns only that choice; the answer is the handler's (ap_invoke_handler
 * runs the insert_filter hooks and the kvlsm handler, as for any request).
 *
 * KVLSMPinConnections on: an HTTP/1.x connection that used the store gets
 * the flag input filters that "clog" the stream set (as mod_ssl's once
 * did: c->clogging_input_filters), so the event MPM hands it from its
 * next request on to mod_http's synchronous loop: one worker thread
 * serves it and waits for its next request in a blocking read (at most
 * KeepAliveTimeout), as under the worker MPM, instead of giving it back to
 * the listener thread and taking it from a queue again after every
 * answer.  The prefork and worker MPMs serve every connection so anyway. */
#include <string.h>

#include "httpd.h"
#include "apr_tables.h"
#include "http_config.h"
#include "http_core.h"
#include "http_request.h"
#include "ap_expr.h"

#include "http/answer.h"
#include "http/config.h"
#include "http/quick.h"

/* Would ap_normalize_path and the URL unescaping leave this path as it
 * is?  No %-escape, no empty segment (//), no . or .. segment.  Any other
 * path takes the normal path, where Apache normalizes it first. */
static int path_is_plain(const char *u)
{
    if (u[0] != '/')
        return 0;
    for (const char *s = u; *s; s++) {
        if (*s == '%')
            return 0;
        if (s[0] == '/' && (s[1] == '/'
                            || (s[1] == '.' && (s[2] == '/' || s[2] == '\0'))
                            || (s[1] == '.' && s[2] == '.' && (s[3] == '/' || s[3] == '\0'))))
            return 0;
    }
    return 1;
}

int kvh_quick_handler(request_rec *r, int lookup)
{
    if (lookup || r->main || r->prev || r->proxyreq)
        return DECLINED;
    kvlsm_server_conf *c = kvlsm_conf(r->server);
    if (c->quick_handler != 1 || !r->uri || !path_is_plain(r->uri))
        return DECLINED;
    /* The normal path's first step, done here; the walks cache their
     * result, so a request declined below does not pay for it twice. */
    if (ap_location_walk(r) != OK || ap_if_walk(r) != OK)
        return DECLINED;
    core_dir_config *d = ap_get_core_module_config(r->per_dir_config);
    if (!d->expr_handler)
        return DECLINED;
    const char *err = NULL;
    const char *h = ap_expr_str_exec(r, d->expr_handler, &err);
    if (err || !h || strcmp(h, KVLSM_HANDLER_NAME) != 0)
        return DECLINED;
    /* A Require (mod_authz_core's, from any enclosing section, <Limit>ed
     * or not) that applies to this method: the normal path enforces it.
     * ap_some_auth_required asks mod_authz_core exactly that. */
    if (ap_some_auth_required(r))
        return DECLINED;
    /* What the fixups phase (core's SetHandler) and map_to_storage would
     * have done for the store's URL. */
    r->handler = KVLSM_HANDLER_NAME;
    kvh_mark_request(r);
    return ap_invoke_handler(r);
}

void kvh_pin_connection(request_rec *r)
{
    conn_rec *c = r->connection;
    if (c->clogging_input_filters || kvlsm_conf(r->server)->pin_connections != 1)
        return;
    /* Not an HTTP/2 stream (its connection is mod_http2's), nor a
     * connection about to switch protocols. */
    if (c->master || r->proto_num >= HTTP_VERSION(2, 0) || apr_table_get(r->headers_in, "Upgrade"))
        return;
    c->clogging_input_filters = 1;
}
