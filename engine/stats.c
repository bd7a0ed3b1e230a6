/* stats.c -- attaching to the store-wide counters (stats.h): creating,
 * checking and growing the file STATS, and reading its slots.  What each
 * slot counts is the caller's business; the bytes are in docs/FORMAT.md
 * ("STATS"). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "stats.h"
#include "fileio.h"
#include "filename.h"

#define STATS_MAGIC "KVLSMSTA"
#define STATS_MAJOR 1
/* Bounds on what a file may claim, so a damaged header cannot make us
 * map or walk something absurd. */
#define STATS_MAX_HEADER (1u << 20)
#define STATS_MAX_STRIPES 1024u
#define STATS_MAX_STRIPE (1u << 20)
#define STATS_MAX_FILE ((uint64_t)64 << 20)

/* The header's fields keep these offsets forever (docs/FORMAT.md). */
_Static_assert(offsetof(stats_header_t, major) == 8, "STATS layout");
_Static_assert(offsetof(stats_header_t, header_bytes) == 12, "STATS layout");
_Static_assert(offsetof(stats_header_t, stripes) == 16, "STATS layout");
_Static_assert(offsetof(stats_header_t, stripe_bytes) == 20, "STATS layout");
_Static_assert(offsetof(stats_header_t, slots) == 24, "STATS layout");
_Static_assert(offsetof(stats_header_t, incompat) == 28, "STATS layout");
_Static_assert(offsetof(stats_header_t, compat) == 32, "STATS layout");
_Static_assert(offsetof(stats_header_t, created) == 40, "STATS layout");
_Static_assert(offsetof(stats_header_t, boot_id) == 48, "STATS layout");
_Static_assert(sizeof(stats_header_t) <= STATS_HEADER_BYTES, "STATS header");
_Static_assert(ST_NSLOTS * 8 <= STATS_STRIPE_BYTES, "STATS slots fit a stripe");
_Static_assert((STATS_STRIPES & (STATS_STRIPES - 1)) == 0, "stripes: a power of two");

const uint64_t stats_latency_bound_ns[KV_LATENCY_BUCKETS] = {
    100000, 250000, 500000,                 /* 0.1, 0.25, 0.5 ms */
    1000000, 2500000, 5000000,              /* 1, 2.5, 5 ms */
    10000000, 25000000, 50000000,           /* 10, 25, 50 ms */
    100000000, 250000000, 500000000,        /* 0.1, 0.25, 0.5 s */
    1000000000, 2500000000, 5000000000,     /* 1, 2.5, 5 s */
    10000000000                             /* 10 s */
};

unsigned stats_thread_stripe(void)
{
    static unsigned next;
    static __thread unsigned mine;
    if (!mine)
        mine = __atomic_add_fetch(&next, 1, __ATOMIC_RELAXED) | 0x80000000u;
    return mine & 0x7fffffffu;
}

/* The kernel's id of this boot (36 characters of text), or "" if unknown:
 * pages of a shared file mapping outlive every process that mapped them,
 * but not a reboot. */
static void boot_id(char out[40])
{
    memset(out, 0, 40);
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, out, 39);
    close(fd);
    if (n < 0)
        n = 0;
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
        n--;
    memset(out + n, 0, (size_t)(40 - n));
}

static uint64_t file_bytes(const stats_header_t *hd)
{
    return (uint64_t)hd->header_bytes + (uint64_t)hd->stripes * hd->stripe_bytes;
}

/* Does this code understand the header, and can it count all its slots
 * in the file of `size` bytes?  (A file it cannot use is left alone.) */
static apr_status_t check_header(const stats_header_t *hd, uint64_t size)
{
    if (memcmp(hd->magic, STATS_MAGIC, 8) != 0)
        return KV_CORRUPT;
    if (hd->major != STATS_MAJOR || hd->incompat != 0)
        return APR_ENOTIMPL;            /* a layout of another kind */
    if (hd->header_bytes < offsetof(stats_header_t, boot_id) || hd->header_bytes > STATS_MAX_HEADER
        || hd->header_bytes % 64 || hd->stripes == 0 || hd->stripes > STATS_MAX_STRIPES
        || (hd->stripes & (hd->stripes - 1)) || hd->stripe_bytes < 64
        || hd->stripe_bytes > STATS_MAX_STRIPE || hd->stripe_bytes % 64
        || file_bytes(hd) > STATS_MAX_FILE || file_bytes(hd) > size
        || hd->slots > hd->stripe_bytes / 8)
        return KV_CORRUPT;
    if (hd->stripe_bytes / 8 < ST_NSLOTS)
        return APR_ENOTIMPL;            /* an older file with fewer slots per stripe */
    return APR_SUCCESS;
}

static void use_mapping(stats_handle_t *h, void *p, size_t bytes)
{
    const stats_header_t *hd = p;
    h->map = p;
    h->map_bytes = bytes;
    h->base = (char *)p + hd->header_bytes;
    h->stripe_bytes = hd->stripe_bytes;
    h->stripe_mask = hd->stripes - 1;
    h->created = hd->created;
    h->shared = 1;
}

/* Nobody else has STATS open: start it afresh, zeroed (truncated and
 * extended), every block allocated so that no write through the mapping
 * can meet a full disk (that would be SIGBUS, not an error). */
static apr_status_t init_file(stats_handle_t *h)
{
    stats_header_t want = { .major = STATS_MAJOR, .header_bytes = STATS_HEADER_BYTES,
                            .stripes = STATS_STRIPES, .stripe_bytes = STATS_STRIPE_BYTES,
                            .slots = ST_NSLOTS };
    size_t bytes = (size_t)file_bytes(&want);
    if (ftruncate(h->fd, 0) < 0 || ftruncate(h->fd, (off_t)bytes) < 0)
        return APR_FROM_OS_ERROR(errno);
    int rc = posix_fallocate(h->fd, 0, (off_t)bytes);
    if (rc)
        return APR_FROM_OS_ERROR(rc);
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, h->fd, 0);
    if (p == MAP_FAILED)
        return APR_FROM_OS_ERROR(errno);
    stats_header_t *hd = p;
    want.created = (uint64_t)time(NULL);
    boot_id(want.boot_id);
    memcpy(hd, &want, sizeof(want));
    /* The magic last: a file with it is complete. */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    memcpy(hd->magic, STATS_MAGIC, 8);
    use_mapping(h, p, bytes);
    return APR_SUCCESS;
}

/* Use STATS as it is if this code understands it, raising its slot count
 * to what this build counts into.  alone: nobody else has it open, and it
 * is used only if its counts started in this boot (APR_EAGAIN if not:
 * the caller lays it out afresh). */
static apr_status_t join_file(stats_handle_t *h, int alone)
{
    uint64_t size;
    stats_header_t hd;
    apr_status_t rv = fio_file_size(h->fd, &size);
    if (rv)
        return rv;
    if (size < sizeof(hd))
        return KV_CORRUPT;
    if ((rv = fio_pread_full(h->fd, &hd, sizeof(hd), 0)) || (rv = check_header(&hd, size)))
        return rv;
    if (alone) {
        char now[40];
        boot_id(now);
        if (!now[0] || hd.header_bytes < offsetof(stats_header_t, boot_id) + 40
            || memcmp(hd.boot_id, now, 40) != 0)
            return APR_EAGAIN;
    }
    size_t bytes = (size_t)file_bytes(&hd);
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, h->fd, 0);
    if (p == MAP_FAILED)
        return APR_FROM_OS_ERROR(errno);
    /* Check again what we mapped (the pread was of the same bytes, and
     * nobody changes the geometry of a file in use, but it is cheap). */
    if ((rv = check_header(p, size))) {
        munmap(p, bytes);
        return rv;
    }
    stats_header_t *m = p;
    if (__atomic_load_n(&m->slots, __ATOMIC_ACQUIRE) < ST_NSLOTS)
        __atomic_store_n(&m->slots, ST_NSLOTS, __ATOMIC_RELEASE);   /* LOCK held */
    use_mapping(h, p, bytes);
    return APR_SUCCESS;
}

/* Counting into this process's memory: one stripe, as many slots as a
 * page holds. */
static apr_status_t use_private(stats_handle_t *h, apr_status_t why)
{
    void *p = NULL;
    if (posix_memalign(&p, 4096, STATS_STRIPE_BYTES) != 0)
        return APR_ENOMEM;
    memset(p, 0, STATS_STRIPE_BYTES);
    h->map = p;
    h->map_bytes = 0;
    h->base = p;
    h->stripe_bytes = STATS_STRIPE_BYTES;
    h->stripe_mask = 0;
    h->shared = 0;
    h->created = (uint64_t)time(NULL);
    h->why = why;
    return APR_SUCCESS;
}

apr_status_t stats_attach(stats_handle_t *h, const char *dir, int lock_fd)
{
    char path[4096];
    memset(h, 0, sizeof(*h));
    fn_named(path, sizeof(path), dir, FN_STATS);
    h->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (h->fd < 0)
        return use_private(h, APR_FROM_OS_ERROR(errno));
    apr_status_t rv = fio_lock(lock_fd, 1);
    if (rv == APR_SUCCESS) {
        /* Every user holds a shared flock on STATS: if the exclusive try
         * succeeds nobody else has it mapped, and we may lay it out
         * afresh, which we do if its counts did not start in this boot
         * (after a reboot it holds whatever was written back, which may
         * be older than what a scraper saw) or we cannot use it.  Under
         * LOCK, so nobody comes between the two flock calls. */
        int alone = flock(h->fd, LOCK_EX | LOCK_NB) == 0;
        rv = join_file(h, alone);
        if (rv != APR_SUCCESS && alone)
            rv = init_file(h);
        if (rv == APR_SUCCESS && flock(h->fd, LOCK_SH) < 0)
            rv = APR_FROM_OS_ERROR(errno);
        fio_unlock(lock_fd);
    }
    if (rv == APR_SUCCESS)
        return APR_SUCCESS;
    if (h->map)
        munmap(h->map, h->map_bytes);
    h->map = NULL;
    close(h->fd);      /* drops any flock of ours: the file is not ours to use */
    h->fd = -1;
    return use_private(h, rv);
}

void stats_detach(stats_handle_t *h)
{
    if (h->map && h->shared)
        munmap(h->map, h->map_bytes);
    else
        free(h->map);
    if (h->fd >= 0)
        close(h->fd);   /* drops our shared flock */
    h->map = NULL;
    h->base = NULL;
    h->fd = -1;
}

uint64_t stats_read(const stats_handle_t *h, unsigned id)
{
    uint64_t sum = 0;
    for (unsigned s = 0; s <= h->stripe_mask; s++)
        sum += __atomic_load_n((const uint64_t *)(h->base + (size_t)s * h->stripe_bytes) + id,
                               __ATOMIC_RELAXED);
    return sum;
}

void stats_observe_ns(stats_handle_t *h, uint64_t ns)
{
    unsigned b = 0;
    while (b < KV_LATENCY_BUCKETS && ns > stats_latency_bound_ns[b])
        b++;
    /* One stripe for both adds: the same cache line, usually. */
    char *stripe = h->base + (size_t)(stats_stripe() & h->stripe_mask) * h->stripe_bytes;
    __atomic_fetch_add((uint64_t *)stripe + ST_LATENCY_BUCKET0 + b, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add((uint64_t *)stripe + ST_LATENCY_SUM_NS, ns, __ATOMIC_RELAXED);
}
