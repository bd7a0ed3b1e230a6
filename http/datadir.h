/* datadir.h -- start-up's look at each KVLSMDataDir, before any child
 * runs: create it, hand it to the child user, and say plainly what is
 * wrong when the children could not use it. */
#ifndef KVLSM_DATADIR_H
#define KVLSM_DATADIR_H

#include "httpd.h"

/* Make dir exist and be usable by the child user: APR_SUCCESS, or the
 * error, logged naming the directory and the failing component. */
apr_status_t kvlsm_datadir_prepare(apr_pool_t *p, server_rec *s, const char *dir);

#endif
