/* handlers.h -- the store's endpoints, one function each, all of one
 * shape so that mod_kvlsm.c's endpoint table can carry them: called with
 * the request (method already checked), the open store and its options,
 * they answer and return OK.  What they share is below them: answer.h
 * (answers), input.h (reading requests), request.h (parsing). */
#ifndef KVLSM_HANDLERS_H
#define KVLSM_HANDLERS_H

#include "httpd.h"
#include "engine/kvlsm.h"

typedef int kvh_endpoint_fn(request_rec *r, kv_db_t *db, const kv_options_t *o);

kvh_endpoint_fn kvh_get;     /* GET /get      point.c */
kvh_endpoint_fn kvh_set;     /* POST /set     point.c */
kvh_endpoint_fn kvh_del;     /* DELETE /del   point.c */
kvh_endpoint_fn kvh_scan;    /* GET /scan     scan.c */
kvh_endpoint_fn kvh_batch;   /* POST /batch   batch.c */
kvh_endpoint_fn kvh_stats;   /* GET /stats    stats.c */
kvh_endpoint_fn kvh_snapshot; /* GET /snapshot snapshot.c: a tar archive */
kvh_endpoint_fn kvh_metrics; /* GET /metrics  metrics.c */

/* One store's section on mod_status's server-status page (stats.c). */
void kvh_status_section(request_rec *r, int flags, const char *dir, kv_db_t *db);

#endif
