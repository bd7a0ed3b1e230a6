/* precond.h -- If-Match and If-None-Match on writes (RFC 9110): reading
 * the headers, and turning them into the engine's condition for one
 * attempt of a conditional write. */
#ifndef KVLSM_PRECOND_H
#define KVLSM_PRECOND_H

#include "httpd.h"
#include "engine/kvlsm.h"
#include "http/answer.h"

#define PRECOND_MAX_TAGS 16
/* Attempts of a write whose condition the engine cannot check itself,
 * before the client is told to try again. */
#define PRECOND_TRIES 64

typedef struct {
    int has_match, match_star, nmatch;
    int has_none, none_star, nnone;
    apr_uint64_t match[PRECOND_MAX_TAGS], none[PRECOND_MAX_TAGS];
} precond_t;

/* Read the headers; 0 with *rj filled if one is malformed. */
int precond_read(request_rec *r, precond_t *pc, reject_t *rj);

/* The forms the engine checks itself: no condition, If-Match with one
 * tag (the version must be it), If-None-Match: * (the key must be
 * absent).  A conflict on these is final (412). */
int precond_direct(const precond_t *pc);

/* The engine condition for one attempt.  A direct form maps onto one.
 * Any other form reads the current version, checks it here, and writes
 * on condition that it is still that version: a racing write makes the
 * engine refuse (KV_CONFLICT) and the caller tries again.  Returns 0 when
 * the preconditions fail now (412); *rv is set if reading failed. */
int precond_to_write(request_rec *r, kv_db_t *db, const char *key, size_t klen,
                     const precond_t *pc, kv_write_opts_t *wo, apr_status_t *rv);

/* The 412 answer. */
int precond_failed(request_rec *r, const char *key, size_t klen);

#endif
