/* shm.c -- attaching to the directory's shared memory and the robust log
 * lock (shm.h).  What the fields mean is the caller's business. */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "shm.h"
#include "fileio.h"
#include "filename.h"

#define SHM_MAGIC "KVLSMSHM"
#define SHM_VERSION 2
#define SHM_BYTES 4096

/* Version 2's fields keep their offsets for as long as the version is 2
 * (docs/FORMAT.md, "SHM"): builds of version 2 share one mapping, and
 * the released ones accept it only if `size` is exactly this struct's.
 * Shown for the platform it was released on; elsewhere the same C
 * declaration gives the same layout for every build of one ABI. */
#if defined(__x86_64__) && defined(__GLIBC__)
_Static_assert(offsetof(shm_t, version) == 8 && offsetof(shm_t, size) == 12
               && offsetof(shm_t, log_mu) == 16 && offsetof(shm_t, end) == 56
               && offsetof(shm_t, synced) == 64 && offsetof(shm_t, recover) == 72
               && offsetof(shm_t, repair) == 76 && offsetof(shm_t, sync_failed) == 80
               && sizeof(shm_t) == 88, "SHM version 2 layout");
#endif
_Static_assert(sizeof(shm_t) <= SHM_BYTES, "SHM fits its page");

static apr_status_t init_mapping(shm_t *m)
{
    pthread_mutexattr_t a;
    memset(m, 0, sizeof(*m));
    if (pthread_mutexattr_init(&a) != 0)
        return APR_EGENERAL;
    int rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (!rc)
        rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (!rc)
        rc = pthread_mutex_init(&m->log_mu, &a);
    pthread_mutexattr_destroy(&a);
    if (rc)
        return APR_FROM_OS_ERROR(rc);
    m->version = SHM_VERSION;
    m->recover = 1;
    m->size = (uint32_t)sizeof(shm_t);
    /* The magic last: a mapping with it is complete. */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    memcpy(m->magic, SHM_MAGIC, 8);
    return APR_SUCCESS;
}

apr_status_t shm_attach(shm_handle_t *h, const char *dir, int lock_fd)
{
    char path[4096];
    fn_named(path, sizeof(path), dir, FN_SHM);
    h->m = NULL;
    h->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (h->fd < 0)
        return APR_FROM_OS_ERROR(errno);
    apr_status_t rv = fio_lock(lock_fd, 1);
    if (rv) {
        close(h->fd);
        return rv;
    }
    uint64_t size;
    if ((rv = fio_file_size(h->fd, &size)) == APR_SUCCESS && size < SHM_BYTES
        && ftruncate(h->fd, SHM_BYTES) < 0)
        rv = APR_FROM_OS_ERROR(errno);
    if (rv == APR_SUCCESS) {
        void *p = mmap(NULL, SHM_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, h->fd, 0);
        if (p == MAP_FAILED)
            rv = APR_FROM_OS_ERROR(errno);
        else
            h->m = p;
    }
    if (rv == APR_SUCCESS) {
        /* Nobody else holds it (all users hold it shared): we may, and
         * must, start it afresh.  Under LOCK, so no one else is between
         * these two flock calls.  In use, it must be version 2 with at
         * least our fields: a later build of version 2 may append fields
         * (and raise size), which we leave alone; another version is
         * another protocol, never shared (docs/FORMAT.md, "SHM"). */
        int alone = flock(h->fd, LOCK_EX | LOCK_NB) == 0;
        if (alone || memcmp(h->m->magic, SHM_MAGIC, 8) != 0
            || h->m->version != SHM_VERSION || h->m->size < sizeof(shm_t)
            || h->m->size > SHM_BYTES) {
            if (!alone)
                rv = APR_EGENERAL;   /* in use by a different format */
            else
                rv = init_mapping(h->m);
        }
        if (rv == APR_SUCCESS && flock(h->fd, LOCK_SH) < 0)
            rv = APR_FROM_OS_ERROR(errno);
    }
    fio_unlock(lock_fd);
    if (rv != APR_SUCCESS)
        shm_detach(h);
    return rv;
}

void shm_detach(shm_handle_t *h)
{
    if (h->m)
        munmap(h->m, SHM_BYTES);
    if (h->fd >= 0)
        close(h->fd);   /* drops our shared flock */
    h->m = NULL;
    h->fd = -1;
}

apr_status_t shm_lock(shm_handle_t *h, int *holder_died)
{
    *holder_died = 0;
    /* A wait bounded to a second at a time: when a holder's process dies,
     * the kernel wakes one waiter, and if that waiter dies with the same
     * process before taking the lock, the others would sleep on over a
     * free lock (seen as hangs after kill -9 in the linearizability test
     * of the previous engine).  Waking up to try again costs nothing in
     * the common case: a free lock is taken by trylock. */
    int rc = pthread_mutex_trylock(&h->m->log_mu);
    while (rc == EBUSY || rc == ETIMEDOUT) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        rc = pthread_mutex_timedlock(&h->m->log_mu, &ts);
    }
    if (rc == EOWNERDEAD) {
        /* Not marked consistent here: the caller repairs the log first,
         * so a repair that fails is never forgotten (shm.h). */
        *holder_died = 1;
        rc = 0;
    }
    return rc ? APR_FROM_OS_ERROR(rc) : APR_SUCCESS;
}

apr_status_t shm_consistent(shm_handle_t *h)
{
    int rc = pthread_mutex_consistent(&h->m->log_mu);
    return rc ? APR_FROM_OS_ERROR(rc) : APR_SUCCESS;
}

void shm_unlock(shm_handle_t *h)
{
    pthread_mutex_unlock(&h->m->log_mu);
}
