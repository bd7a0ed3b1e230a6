/* datadir.c -- preparing the data directories at start-up (datadir.h).
 * Runs in the parent, as root when Apache starts as root; the children
 * run as User/Group, so what matters is what that user can do. */
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "httpd.h"
#include "apr_file_info.h"
#include "apr_strings.h"
#include "http_config.h"
#include "http_log.h"
#include "unixd.h"

#include "http/datadir.h"

APLOG_USE_MODULE(kvlsm);

apr_status_t kvlsm_datadir_prepare(apr_pool_t *p, server_rec *s, const char *dir)
{
    apr_status_t rv = apr_dir_make_recursive(dir, APR_FPROT_OS_DEFAULT, p);
    if (rv != APR_SUCCESS && !APR_STATUS_IS_EEXIST(rv)) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, APLOGNO(10901)
                     "KVLSMDataDir %s: cannot create the directory", dir);
        return rv;
    }
    if (geteuid() == 0) {
        /* Children run as User/Group: hand them the directory and what
         * is in it (the engine keeps no subdirectories). */
        uid_t uid = ap_unixd_config.user_id;
        gid_t gid = ap_unixd_config.group_id;
        if (chown(dir, uid, gid) < 0) {
            rv = APR_FROM_OS_ERROR(errno);
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, APLOGNO(10902)
                         "KVLSMDataDir %s: cannot give it to the child user %s",
                         dir, ap_unixd_config.user_name);
            return rv;
        }
        apr_dir_t *d;
        apr_finfo_t fi;
        if (apr_dir_open(&d, dir, p) == APR_SUCCESS) {
            while (apr_dir_read(&fi, APR_FINFO_NAME | APR_FINFO_TYPE, d) == APR_SUCCESS) {
                if (fi.filetype != APR_REG)
                    continue;
                const char *f = apr_pstrcat(p, dir, "/", fi.name, NULL);
                if (chown(f, uid, gid) < 0)
                    ap_log_error(APLOG_MARK, APLOG_WARNING, APR_FROM_OS_ERROR(errno), s,
                                 APLOGNO(10903) "KVLSMDataDir: cannot chown %s", f);
            }
            apr_dir_close(d);
        }
    }
    else if (access(dir, W_OK | X_OK) < 0) {
        rv = APR_FROM_OS_ERROR(errno);
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, APLOGNO(10904)
                     "KVLSMDataDir %s: not writable by the user Apache runs as", dir);
        return rv;
    }
    return APR_SUCCESS;
}
