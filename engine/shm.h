/* shm.h -- what the processes sharing a data directory share in memory:
 * the file SHM, mapped by every process, holding the log lock (a robust,
 * process-shared mutex: taking it costs no system call, and the kernel
 * hands it on if its holder dies) and a counter of committed log writes,
 * so a reader learns with one memory load whether anyone wrote.
 * Every user holds a shared flock on SHM; a process that opens the
 * directory and finds no other user (after a reboot, say) re-initialises
 * the mapping, so a mutex left locked by a dead machine never blocks. */
#ifndef KV_SHM_H
#define KV_SHM_H

#include <pthread.h>
#include <stdint.h>
#include <apr_errno.h>

typedef struct {
    char magic[8];              /* "KVLSMSHM" */
    uint32_t version;
    uint32_t size;              /* sizeof(shm_t) when initialised */
    pthread_mutex_t log_mu;     /* robust, process-shared */
    uint64_t commits;           /* bumped after every log write, atomically */
    uint32_t recover;           /* set when initialised: the first writer
                                   re-reads the log and cuts a torn tail */
} shm_t;

typedef struct {
    int fd;
    shm_t *m;
} shm_handle_t;

/* Map dir/SHM, initialising it if no other process uses it.  lock_fd is
 * the directory's LOCK file, which serialises initialisation. */
apr_status_t shm_attach(shm_handle_t *h, const char *dir, int lock_fd);
void shm_detach(shm_handle_t *h);

/* Take the log lock.  *holder_died is set when the previous holder died
 * holding it: the caller must then re-read the log from the file (a torn
 * or unpublished record may follow). */
apr_status_t shm_lock(shm_handle_t *h, int *holder_died);
void shm_unlock(shm_handle_t *h);

static inline uint64_t shm_commits(const shm_handle_t *h)
{
    return __atomic_load_n(&h->m->commits, __ATOMIC_ACQUIRE);
}
/* Count a write made under the lock; returns the new count. */
static inline uint64_t shm_commit(shm_handle_t *h)
{
    return __atomic_add_fetch(&h->m->commits, 1, __ATOMIC_ACQ_REL);
}

#endif
