/* store.h -- a child's handle on one data directory: opened in the
 * child-init hook and, when that open failed (EMFILE, EIO, a directory
 * fixed after start), opened again on a later request with exponential
 * backoff, so the child serves once it can, without a restart.  The
 * module keeps one per KVLSMDataDir. */
#ifndef KVLSM_STORE_H
#define KVLSM_STORE_H

#include "httpd.h"
#include "engine/kvlsm.h"

typedef struct kvlsm_store kvlsm_store_t;

/* Make the handle and try the first open (child-init: one thread).
 * Closed when pchild is destroyed. */
kvlsm_store_t *kvlsm_store_create(apr_pool_t *pchild, server_rec *s, const char *dir,
                                  const kv_options_t *o);
/* The open store, or NULL (after trying again if the backoff allows);
 * *retry_after: seconds until the next try when NULL. */
kv_db_t *kvlsm_store_get(kvlsm_store_t *st, apr_time_t *retry_after);

#endif
