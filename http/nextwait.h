/* nextwait.h -- KVLSMNextRequestWait: a worker waits briefly for a
 * keep-alive connection's next request before giving it back to the
 * event MPM's listener.  See nextwait.c. */
#ifndef KVLSM_NEXTWAIT_H
#define KVLSM_NEXTWAIT_H

#include "httpd.h"

/* The default wait: 2 ms. */
#define KVH_NEXT_REQUEST_WAIT_DEFAULT ((apr_interval_time_t)2000)
/* The longest wait the directive accepts: 100 ms. */
#define KVH_NEXT_REQUEST_WAIT_MAX ((apr_interval_time_t)100000)

/* Register the connection input filter (register_hooks). */
void kvh_nextwait_register(void);
/* Read the MPM's shape (child_init). */
void kvh_nextwait_child_init(void);
/* Called by the handler for each store request: wait for r's
 * connection's next request once r's answer is out. */
void kvh_nextwait_arm(request_rec *r);

#endif
