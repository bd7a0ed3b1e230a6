/* stats.h -- the store-wide counters: the file STATS in the data
 * directory, mapped by every process that has the store open, holding
 * monotonic 64-bit counters in slots with stable ids (flushes, gets,
 * bytes written, the request-latency histogram, ...).  It does not hold
 * anything the protocol depends on: SHM (shm.h) does, and is left as the
 * released version 2 laid it out.
 *
 * Each slot exists once per *stripe*, and the stripes are a page apart: a
 * thread adds to the stripe of the CPU it runs on, so processes counting
 * on different CPUs never write the same cache line; a slot's value is
 * the sum of its stripes.  Counting is one relaxed atomic add, no lock
 * and no system call.  Bytes and compatibility rules: docs/FORMAT.md
 * ("STATS"); why it is built so: docs/DESIGN.md ("Store-wide counters"). */
#ifndef KV_STATS_H
#define KV_STATS_H

#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <apr_errno.h>
#include "kvlsm.h"

/* The slots, with ids that never change: a later version appends ids
 * and never renumbers or reuses one (docs/FORMAT.md lists them).  Each
 * counter of KV_STATS_COUNTERS has one. */
#define STATS_COUNTER_SLOTS(X) \
    X(flushes, 0) X(compactions, 1) X(write_stalls, 2) X(write_stall_us, 3) \
    X(gets, 4) X(sets, 5) X(dels, 6) X(batches, 7) \
    X(bytes_read, 8) X(bytes_written, 9) X(syncs, 10) X(bg_errors, 11)

enum {
#define STATS_ID(name, id) ST_##name = id,
    STATS_COUNTER_SLOTS(STATS_ID)
#undef STATS_ID
    ST_LATENCY_SUM_NS = 12,     /* the sum of the observed latencies, ns */
    ST_LATENCY_BUCKET0 = 13,    /* KV_LATENCY_BUCKETS + 1 slots, one per
                                   bucket (not cumulative), the last one
                                   for observations over the last bound */
    ST_NSLOTS = ST_LATENCY_BUCKET0 + KV_LATENCY_BUCKETS + 1
};

/* What this build creates (a file made by another version may differ in
 * all three; the header says, and this code follows it). */
#define STATS_HEADER_BYTES 4096u
#define STATS_STRIPES 64u
#define STATS_STRIPE_BYTES 4096u

/* The header at the start of STATS.  Fields are only ever appended
 * (header_bytes says how much header there is; a reader ignores what it
 * does not know); none moves. */
typedef struct {
    char magic[8];          /* "KVLSMSTA", written last at initialisation */
    uint32_t major;         /* 1; another value: a layout this code must not use */
    uint32_t header_bytes;  /* where stripe 0 starts */
    uint32_t stripes;       /* a power of two */
    uint32_t stripe_bytes;  /* stripe i at header_bytes + i * stripe_bytes;
                               stripe_bytes / 8 slots fit in one */
    uint32_t slots;         /* ids below this have been counted into;
                               raised (never lowered) under LOCK */
    uint32_t incompat;      /* features a reader must know to use the file: none yet */
    uint64_t compat;        /* features a reader may ignore: none yet */
    uint64_t created;       /* unix seconds when the counters started from 0 */
    char boot_id[40];       /* the kernel's boot id when they did (NUL-padded
                               text); counts made since a reboot may be lost */
} stats_header_t;

typedef struct {
    int fd;                 /* STATS (holding our shared flock), or -1 */
    void *map;              /* the file's mapping, or private memory */
    size_t map_bytes;
    char *base;             /* stripe 0 */
    size_t stripe_bytes;
    unsigned stripe_mask;   /* stripes - 1 */
    int shared;             /* 1: the store's STATS; 0: this process's own */
    uint64_t created;
    apr_status_t why;       /* when not shared: what stopped it */
} stats_handle_t;

/* Map dir/STATS, creating it if missing, raising its slot count if it has
 * fewer than this build uses.  The counters go on from where the last
 * user left them, however it ended, as long as the machine has not
 * rebooted since they started (the page cache held every add); after a
 * reboot, or when the file is unusable and nobody else has it open, it is
 * laid out afresh and they start from 0.  lock_fd is the directory's
 * LOCK, taken for all of that.  When the file cannot be used (no room on
 * the disk to allocate it, a layout this code does not know, too few
 * slots), the handle counts into memory of this process instead (shared
 * 0, why says why) and the store works as before; only ENOMEM fails. */
apr_status_t stats_attach(stats_handle_t *h, const char *dir, int lock_fd);
void stats_detach(stats_handle_t *h);

/* The stripe of the CPU the caller runs on (a thread's own, round robin,
 * when the CPU is unknown).  Moving to another CPU between this and the
 * add costs a shared cache line, never a count. */
unsigned stats_thread_stripe(void);
static inline unsigned stats_stripe(void)
{
    int cpu = sched_getcpu();
    return cpu >= 0 ? (unsigned)cpu : stats_thread_stripe();
}

static inline void stats_add(stats_handle_t *h, unsigned id, uint64_t n)
{
    char *stripe = h->base + (size_t)(stats_stripe() & h->stripe_mask) * h->stripe_bytes;
    __atomic_fetch_add((uint64_t *)stripe + id, n, __ATOMIC_RELAXED);
}

/* The sum of a slot's stripes.  Two reads, the second begun after the
 * first ended, in any processes: the second is not smaller. */
uint64_t stats_read(const stats_handle_t *h, unsigned id);

/* Count one observation of `ns` nanoseconds into the histogram. */
void stats_observe_ns(stats_handle_t *h, uint64_t ns);
/* The histogram's bucket bounds in nanoseconds (KV_LATENCY_BUCKETS). */
extern const uint64_t stats_latency_bound_ns[KV_LATENCY_BUCKETS];

#endif
