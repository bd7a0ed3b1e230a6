/* snapshot.c -- GET <mount>/snapshot: an online backup of the store as a
 * tar archive (POSIX ustar) streamed while writes go on.  The engine
 * (kv_snapshot_open) picks the files of one consistent point and keeps
 * them alive with hard links; this file only writes the archive: a
 * 512-byte header per file, its first `bytes` bytes as a file bucket
 * (sendfile or mmap when the core allows, never a copy of the file in
 * memory), zeros to the next 512-byte boundary, a flush, the next file;
 * two zero blocks end it.  So a child holds one file open and a few
 * buckets at a time, whatever the store's size.  The snapshot lives in the
 * request pool: its cleanup removes the links when the request ends,
 * however it ends (a client gone mid-stream included).
 * Errors before the first byte are JSON answers; after it, the connection
 * is cut, so the client sees fewer bytes than Content-Length promised. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "httpd.h"
#include "apr_strings.h"
#include "apr_user.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "util_filter.h"

#include "http/answer.h"
#include "http/handlers.h"

APLOG_USE_MODULE(kvlsm);

#define TAR_BLOCK 512
/* ustar's size field: 11 octal digits. */
#define TAR_MAX_SIZE ((apr_uint64_t)077777777777)

static const char zeros[2 * TAR_BLOCK];

/* Who the archive says owns its files: the child user, so that `tar -x`
 * run as root gives them back to that user. */
typedef struct {
    apr_uid_t uid;
    apr_gid_t gid;
    char *uname, *gname;
} owner_t;

static void octal(char *field, size_t width, apr_uint64_t v)
{
    /* width - 1 digits, zero-padded, then NUL. */
    field[width - 1] = '\0';
    for (size_t i = width - 1; i-- > 0; v >>= 3)
        field[i] = (char)('0' + (v & 7));
}

/* The ustar header of one regular file. */
static void tar_header(char h[TAR_BLOCK], const char *name, apr_uint64_t size,
                       apr_int64_t mtime, const owner_t *o)
{
    memset(h, 0, TAR_BLOCK);
    apr_cpystrn(h, name, 100);
    octal(h + 100, 8, 0644);
    octal(h + 108, 8, (apr_uint64_t)o->uid);
    octal(h + 116, 8, (apr_uint64_t)o->gid);
    octal(h + 124, 12, size);
    octal(h + 136, 12, mtime > 0 ? (apr_uint64_t)mtime : 0);
    h[156] = '0';                       /* regular file */
    memcpy(h + 257, "ustar", 6);        /* magic, NUL-terminated */
    memcpy(h + 263, "00", 2);           /* version */
    apr_cpystrn(h + 265, o->uname ? o->uname : "", 32);
    apr_cpystrn(h + 297, o->gname ? o->gname : "", 32);
    octal(h + 329, 8, 0);               /* devmajor */
    octal(h + 337, 8, 0);               /* devminor */
    /* The checksum counts its own field as eight spaces. */
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < TAR_BLOCK; i++)
        sum += (unsigned char)h[i];
    octal(h + 148, 7, sum);             /* six digits and a NUL ... */
    h[155] = ' ';                       /* ... then a space */
}

static apr_uint64_t padding(apr_uint64_t n)
{
    return (TAR_BLOCK - n % TAR_BLOCK) % TAR_BLOCK;
}

static apr_status_t open_member(request_rec *r, const kv_snapshot_file_t *f,
                                apr_pool_t *p, apr_file_t **fd)
{
    core_dir_config *d = ap_get_core_module_config(r->per_dir_config);
    apr_int32_t flags = APR_FOPEN_READ | APR_FOPEN_BINARY;
#if APR_HAS_SENDFILE
    if (d->enable_sendfile == ENABLE_SENDFILE_ON)
        flags |= APR_FOPEN_SENDFILE_ENABLED;
#else
    (void)d;
#endif
    return apr_file_open(fd, f->path, flags, 0, p);
}

/* Header, data and padding of one member, then a flush: the core writes
 * it out before we open the next file. */
static apr_status_t send_member(request_rec *r, apr_bucket_brigade *bb,
                                const kv_snapshot_file_t *f, apr_file_t *fd,
                                const owner_t *o, apr_pool_t *p)
{
    apr_bucket_alloc_t *ba = r->connection->bucket_alloc;
    char *h = apr_palloc(p, TAR_BLOCK);
    tar_header(h, f->name, f->bytes, f->mtime, o);
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_pool_create(h, TAR_BLOCK, p, ba));
    if (f->bytes > 0) {
        apr_bucket *e = apr_brigade_insert_file(bb, fd, 0, (apr_off_t)f->bytes, p);
#if APR_HAS_MMAP
        core_dir_config *d = ap_get_core_module_config(r->per_dir_config);
        if (d->enable_mmap == ENABLE_MMAP_OFF)
            (void)apr_bucket_file_enable_mmap(e, 0);
#else
        (void)e;
#endif
    }
    apr_uint64_t pad = padding(f->bytes);
    if (pad)
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_immortal_create(zeros, (apr_size_t)pad, ba));
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_flush_create(ba));
    apr_status_t rv = ap_pass_brigade(r->output_filters, bb);
    apr_brigade_cleanup(bb);
    return rv;
}

/* Bytes were sent: all we can do is cut the connection, so the client
 * gets a short archive (fewer bytes than Content-Length) it cannot take
 * for a whole one. */
static int cut_stream(request_rec *r, apr_status_t rv, const char *what,
                      const char *name, apr_off_t sent, apr_off_t total)
{
    conn_rec *c = r->connection;
    if (c->aborted)
        ap_log_rerror(APLOG_MARK, APLOG_INFO, rv, r, APLOGNO(10951)
                      "kvlsm: snapshot: the client went away after %" APR_OFF_T_FMT
                      " of %" APR_OFF_T_FMT " bytes", sent, total);
    else
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, APLOGNO(10952)
                      "kvlsm: snapshot: %s %s failed after %" APR_OFF_T_FMT " of %" APR_OFF_T_FMT
                      " bytes: the connection is cut, the client has a truncated archive",
                      what, name, sent, total);
    c->keepalive = AP_CONN_CLOSE;
    c->aborted = 1;
    /* The headers went out with the first bytes: nothing else to answer. */
    return AP_FILTER_ERROR;
}

int kvh_snapshot(request_rec *r, kv_db_t *db, const kv_options_t *opts)
{
    (void)opts;
    apr_time_t t0 = apr_time_now();
    kv_snapshot_t *snap;
    apr_status_t rv = kv_snapshot_open(&snap, db, r->pool);
    if (APR_STATUS_IS_EAGAIN(rv)) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, rv, r, APLOGNO(10950)
                      "kvlsm: snapshot: flushes and compactions removed its files on every attempt");
        apr_table_setn(r->err_headers_out, "Retry-After", "1");
        return kvh_send_error(r, HTTP_SERVICE_UNAVAILABLE,
                              "the store changed under every attempt at a snapshot; try again", NULL, 0);
    }
    if (rv == KV_SYNCFAIL) {
        /* Its files are the page cache of a disk that lost writes it had
         * taken: no archive until every child has let go of the store. */
        char buf[256];
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, APLOGNO(10955)
                      "kvlsm: snapshot refused: %s; restart Apache once the disk is sound",
                      kv_strerror(rv, buf, sizeof buf));
        return kvh_send_error(r, HTTP_SERVICE_UNAVAILABLE,
                              "the store's disk failed a sync; snapshots are refused until it is restarted",
                              NULL, 0);
    }
    if (rv == APR_FROM_OS_ERROR(EPERM))
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, APLOGNO(10953)
                      "kvlsm: snapshot: cannot hard-link the store's files: are they all owned "
                      "by the child user (a restore left as root)?");
    if (rv != APR_SUCCESS)
        return kvh_engine_error(r, rv, "snapshot", NULL, 0);
    const kv_snapshot_info_t *info = kv_snapshot_info(snap);

    apr_off_t total = 2 * TAR_BLOCK;
    for (int i = 0; i < info->nfiles; i++) {
        if (info->files[i].bytes > TAR_MAX_SIZE)
            return kvh_engine_error(r, APR_FROM_OS_ERROR(EFBIG), "snapshot (a file too large for ustar)", NULL, 0);
        total += (apr_off_t)(TAR_BLOCK + info->files[i].bytes + padding(info->files[i].bytes));
    }
    owner_t o = { 0 };
    apr_uid_current(&o.uid, &o.gid, r->pool);
    if (apr_uid_name_get(&o.uname, o.uid, r->pool) != APR_SUCCESS)
        o.uname = NULL;
    if (apr_gid_name_get(&o.gname, o.gid, r->pool) != APR_SUCCESS)
        o.gname = NULL;

    /* The first file is opened before anything is sent, so that a
     * failure there still gets a proper answer. */
    apr_pool_t *fp;
    apr_file_t *fd;
    apr_pool_create(&fp, r->pool);
    if ((rv = open_member(r, &info->files[0], fp, &fd)) != APR_SUCCESS) {
        apr_pool_destroy(fp);
        return kvh_engine_error(r, rv, "snapshot (opening its first file)", NULL, 0);
    }

    char stamp[APR_RFC822_DATE_LEN];
    apr_time_exp_t tm;
    apr_size_t len;
    apr_time_exp_gmt(&tm, t0);
    apr_strftime(stamp, &len, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    ap_set_content_type(r, "application/x-tar");
    ap_set_content_length(r, total);
    apr_table_setn(r->headers_out, "Content-Disposition",
                   apr_psprintf(r->pool, "attachment; filename=\"kvlsm-snapshot-%s.tar\"", stamp));
    apr_table_setn(r->headers_out, "X-KVLSM-Pid", apr_psprintf(r->pool, "%ld", (long)getpid()));
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    if (r->header_only) {
        apr_pool_destroy(fp);
        return OK;
    }

    apr_bucket_brigade *bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    apr_off_t sent = 0;
    for (int i = 0; i < info->nfiles; i++) {
        const kv_snapshot_file_t *f = &info->files[i];
        if (i > 0) {
            apr_pool_create(&fp, r->pool);
            if ((rv = open_member(r, f, fp, &fd)) != APR_SUCCESS) {
                apr_pool_destroy(fp);
                return cut_stream(r, rv, "opening", f->path, sent, total);
            }
        }
        rv = send_member(r, bb, f, fd, &o, fp);
        apr_pool_destroy(fp);
        if (rv != APR_SUCCESS)
            return cut_stream(r, rv, "sending", f->path, sent, total);
        sent += (apr_off_t)(TAR_BLOCK + f->bytes + padding(f->bytes));
    }
    apr_bucket_alloc_t *ba = r->connection->bucket_alloc;
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_immortal_create(zeros, sizeof zeros, ba));
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(ba));
    if ((rv = ap_pass_brigade(r->output_filters, bb)) != APR_SUCCESS)
        return cut_stream(r, rv, "ending", "the archive", sent, total);
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, APLOGNO(10954)
                  "kvlsm: snapshot: %d files, %" APR_OFF_T_FMT " bytes in %" APR_TIME_T_FMT
                  " ms (%d attempt%s)", info->nfiles, total, apr_time_as_msec(apr_time_now() - t0),
                  info->attempts, info->attempts == 1 ? "" : "s");
    return OK;
}
