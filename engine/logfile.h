/* logfile.h -- an open log file of this process: reference counted
 * (versions and syncing writers hold on to it across a rotation), opened
 * only when it exists unless the caller is the writer creating it, and
 * synced only through log_sync, which turns a failed fdatasync into the
 * store-wide refusal of writes (shm.h: sync_failed). */
#ifndef KV_LOGFILE_H
#define KV_LOGFILE_H

#include <stdint.h>
#include <apr_errno.h>

struct kv_db_t;

typedef struct {
    int refs;
    int fd;
    uint64_t number;
} wal_file_t;

/* Open log `number` of db's directory.  create: make it empty (a writer
 * preparing a rotation; the directory is synced).  APR_ENOENT if it does
 * not exist and !create. */
apr_status_t wal_file_open(struct kv_db_t *db, uint64_t number, int create,
                           wal_file_t **out);
void wal_file_ref(wal_file_t *w);
void wal_file_unref(wal_file_t *w);

/* fdatasync w.  Never retried into a success: once any process's sync of
 * a log failed, this and every later call return KV_SYNCFAIL without
 * syncing.  Syncs of one process are serialised, so no thread of it can
 * sync after another's failure and before the failure is recorded.
 * Across processes one window remains: Linux reports a writeback error
 * once to each open description, and one opened after another process
 * saw the error (microseconds before that process stores sync_failed)
 * would not see it, so its sync could succeed over dropped pages. */
apr_status_t log_sync(struct kv_db_t *db, wal_file_t *w);

#endif
