/* datadir.h -- start-up's look at each KVLSMDataDir, before any child
 * runs.  The checks run as the child user (User/Group; a forked process
 * drops to it when Apache starts as root), because that user, not root,
 * opens the store: every parent directory must be searchable by it, and
 * the directory itself writable.  A failure names the directory and the
 * component at fault, and fails `apachectl configtest` or the start. */
#ifndef KVLSM_DATADIR_H
#define KVLSM_DATADIR_H

#include "httpd.h"

/* check_config: can the child user reach dir, and can dir be created if
 * it is missing?  Touches nothing.  APR_SUCCESS, or the error, logged. */
apr_status_t kvlsm_datadir_check(apr_pool_t *p, server_rec *s, const char *dir);

/* post_config: create dir, hand it to the child user, and prove that
 * user can create a file in it.  APR_SUCCESS, or the error, logged. */
apr_status_t kvlsm_datadir_prepare(apr_pool_t *p, server_rec *s, const char *dir);

#endif
