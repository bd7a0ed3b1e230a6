/* metrics.h -- the store's figures for Prometheus (metrics.c): the
 * GET /metrics endpoint is in handlers.h with the others; here is what
 * feeds its request-latency histogram. */
#ifndef KVLSM_METRICS_H
#define KVLSM_METRICS_H

#include "httpd.h"
#include "engine/kvlsm.h"

/* r is about to be answered by the store db: once it is logged, its
 * duration (from reading its request line) goes into db's histogram. */
void kvh_metrics_track(request_rec *r, kv_db_t *db);
/* The log_transaction hook that does that. */
void kvh_metrics_register_hooks(void);

#endif
