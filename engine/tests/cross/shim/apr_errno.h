/* Minimal stand-in for APR's apr_errno.h, so engine/fileio.c compiles for
 * another CPU without that CPU's APR headers (cross check only). */
#ifndef SHIM_APR_ERRNO_H
#define SHIM_APR_ERRNO_H
typedef int apr_status_t;
#define APR_SUCCESS 0
#define APR_OS_START_ERROR 20000
#define APR_EOF (APR_OS_START_ERROR + 14)
#define APR_FROM_OS_ERROR(e) (e)
#define APR_ENOSPC ENOSPC
#define APR_EAGAIN EAGAIN
#endif
