/* quick.h -- the opt-in fast paths: the store's requests answered from
 * the quick_handler hook (KVLSMQuickHandler on), and connections kept on
 * their worker thread (KVLSMPinConnections on).  See quick.c. */
#ifndef KVLSM_QUICK_H
#define KVLSM_QUICK_H

#include "httpd.h"

/* The handler name of SetHandler kvlsm. */
#define KVLSM_HANDLER_NAME "kvlsm"

/* The quick_handler hook: answers a plain request for a store URL whose
 * server has KVLSMQuickHandler on and to which no Require applies;
 * DECLINED for everything else. */
int kvh_quick_handler(request_rec *r, int lookup);

/* Called by the handler for each store request: with KVLSMPinConnections
 * on, keep r's HTTP/1.x connection on its worker from the next request. */
void kvh_pin_connection(request_rec *r);

#endif
