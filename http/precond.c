/* precond.c -- conditional writes (precond.h).  Entity tags are the
 * key's version (its sequence number), strong, as GET returns them. */
#include <string.h>

#include "http_protocol.h"
#include "http/precond.h"
#include "http/request.h"

int precond_read(request_rec *r, precond_t *pc, reject_t *rj)
{
    memset(pc, 0, sizeof(*pc));
    const char *m = apr_table_get(r->headers_in, "If-Match");
    const char *nm = apr_table_get(r->headers_in, "If-None-Match");
    if (m && !(pc->has_match = kvr_parse_etags(m, &pc->match_star, pc->match,
                                               PRECOND_MAX_TAGS, &pc->nmatch)))
        return kvh_reject(rj, HTTP_BAD_REQUEST, "malformed If-Match: use * or \"<etag>\"");
    if (nm && !(pc->has_none = kvr_parse_etags(nm, &pc->none_star, pc->none,
                                               PRECOND_MAX_TAGS, &pc->nnone)))
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

int precond_direct(const precond_t *pc)
{
    return (!pc->has_match && !pc->has_none)
           || (pc->has_match && !pc->match_star && pc->nmatch == 1 && !pc->has_none)
           || (pc->has_none && pc->none_star && !pc->has_match);
}

int precond_to_write(request_rec *r, kv_db_t *db, const char *key, size_t klen,
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

int precond_failed(request_rec *r, const char *key, size_t klen)
{
    return kvh_send_error(r, HTTP_PRECONDITION_FAILED, "precondition failed: the key's version "
                          "does not match If-Match / If-None-Match", key, klen);
}
