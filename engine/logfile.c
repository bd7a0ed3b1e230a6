/* logfile.c -- open log files and their syncs (logfile.h). */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include "db_impl.h"
#include "fileio.h"
#include "filename.h"

apr_status_t wal_file_open(kv_db_t *db, uint64_t number, int create, wal_file_t **out)
{
    char path[4096];
    fn_numbered(path, sizeof(path), db->dir, number, "log");
    int fd;
    apr_status_t rv = fio_open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_TRUNC : 0),
                               0644, &fd);
    if (rv)
        return rv;
    if (create && (rv = fio_fsync_dir(db->dir))) {
        close(fd);
        return rv;
    }
    wal_file_t *w = malloc(sizeof(*w));
    if (!w) {
        close(fd);
        return APR_ENOMEM;
    }
    w->refs = 1;
    w->fd = fd;
    w->number = number;
    *out = w;
    return APR_SUCCESS;
}

void wal_file_ref(wal_file_t *w)
{
    __atomic_fetch_add(&w->refs, 1, __ATOMIC_RELAXED);
}

void wal_file_unref(wal_file_t *w)
{
    if (w && __atomic_sub_fetch(&w->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        close(w->fd);
        free(w);
    }
}

apr_status_t log_sync(kv_db_t *db, wal_file_t *w)
{
    pthread_mutex_lock(&db->fsync_mu);
    apr_status_t rv = shm_sync_failed(&db->shm) ? KV_SYNCFAIL : fio_fdatasync(w->fd);
    if (rv && rv != KV_SYNCFAIL)
        __atomic_store_n(&db->shm.m->sync_failed, (uint32_t)rv, __ATOMIC_RELEASE);
    if (rv == APR_SUCCESS)
        STAT_ADD(db, syncs, 1);
    pthread_mutex_unlock(&db->fsync_mu);
    return rv;
}
