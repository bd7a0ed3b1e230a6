/* quick.h -- the opt-in fast path (KVLSMQuickHandler on): the store's
 * requests answered from the quick_handler hook.  See quick.c. */
#ifndef KVLSM_QUICK_H
#define KVLSM_QUICK_H

#include "httpd.h"

/* The handler name of SetHandler kvlsm. */
#define KVLSM_HANDLER_NAME "kvlsm"

/* The quick_handler hook: answers a plain request for a store URL whose
 * server has KVLSMQuickHandler on and to which no Require applies;
 * DECLINED for everything else. */
int kvh_quick_handler(request_rec *r, int lookup);

#endif
