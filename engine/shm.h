/* shm.h -- what the processes sharing a data directory share in memory:
 * the file SHM, mapped by every process, holding the log lock (a robust,
 * process-shared mutex: taking it costs no system call, and the kernel
 * hands it on if its holder dies), the log's published end and synced
 * end, and the flags that make a failure everyone's business.
 * Every user holds a shared flock on SHM; a process that opens the
 * directory and finds no other user (after a reboot, say) re-initialises
 * the mapping, so a mutex left locked by a dead machine never blocks.
 * The rules for each field are the protocol of docs/DESIGN.md ("The
 * published end"); this file only stores them. */
#ifndef KV_SHM_H
#define KV_SHM_H

#include <pthread.h>
#include <stdint.h>
#include <apr_errno.h>

/* A position in the shared log: log number and byte offset, packed so
 * that one atomic load reads both and positions compare as integers.
 * Offsets stay below 2^36 (a log is sealed at the memtable size, which
 * the engine caps at 1 GiB); log numbers below 2^28. */
#define LOGPOS_OFF_BITS 36
#define LOGPOS_MAX_LOG (((uint64_t)1 << (64 - LOGPOS_OFF_BITS)) - 1)
static inline uint64_t logpos(uint64_t log, uint64_t off)
{
    return (log << LOGPOS_OFF_BITS) | off;
}
static inline uint64_t logpos_log(uint64_t p)
{
    return p >> LOGPOS_OFF_BITS;
}
static inline uint64_t logpos_off(uint64_t p)
{
    return p & (((uint64_t)1 << LOGPOS_OFF_BITS) - 1);
}

typedef struct {
    char magic[8];              /* "KVLSMSHM" */
    uint32_t version;
    uint32_t size;              /* sizeof(shm_t) when initialised */
    pthread_mutex_t log_mu;     /* robust, process-shared */
    /* The published end: every byte of the shared log before it is a
     * whole record some writer appended and nobody will take back;
     * nothing after it is.  Stored only by a log-lock holder, after the
     * append reached the kernel; loaded by anyone. */
    uint64_t end;
    /* The synced end: every published byte before it is on stable
     * storage.  Raised (never lowered) by whoever completes an
     * fdatasync; a rotation raises it past the sealed log. */
    uint64_t synced;
    /* The mapping is new: the end is unknown until the first lock holder
     * has scanned the logs (done in kv_db_open). */
    uint32_t recover;
    /* The log may hold bytes past the end (a failed cut-back, a holder
     * that died): the next lock holder cuts them before appending. */
    uint32_t repair;
    /* An fdatasync of a log failed (its errno): the kernel may have
     * dropped the pages, and a later fdatasync would report success over
     * them, so every process refuses writes until the directory is
     * reopened with nobody else using it (the mapping is then new). */
    uint32_t sync_failed;
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
 * holding it: the caller must then repair the log (cut it back to the
 * published end) and only then call shm_consistent. */
apr_status_t shm_lock(shm_handle_t *h, int *holder_died);
/* After a dead holder: mark the lock usable again. */
apr_status_t shm_consistent(shm_handle_t *h);
void shm_unlock(shm_handle_t *h);

static inline uint64_t shm_end(const shm_handle_t *h)
{
    return __atomic_load_n(&h->m->end, __ATOMIC_ACQUIRE);
}
/* Log lock held. */
static inline void shm_publish(shm_handle_t *h, uint64_t end)
{
    __atomic_store_n(&h->m->end, end, __ATOMIC_RELEASE);
}
static inline uint64_t shm_synced(const shm_handle_t *h)
{
    return __atomic_load_n(&h->m->synced, __ATOMIC_ACQUIRE);
}
/* Raise the synced end to at least p. */
static inline void shm_raise_synced(shm_handle_t *h, uint64_t p)
{
    uint64_t cur = shm_synced(h);
    while (cur < p && !__atomic_compare_exchange_n(&h->m->synced, &cur, p, 0,
                                                   __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        ;
}
static inline int shm_sync_failed(const shm_handle_t *h)
{
    return (int)__atomic_load_n(&h->m->sync_failed, __ATOMIC_ACQUIRE);
}

#endif
