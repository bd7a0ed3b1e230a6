/* kvlsm.h -- the storage engine's only public header.
 *
 * A log-structured merge-tree key-value store in one data directory, safe
 * for several processes (Apache children) and many threads at once.  Keys
 * and values are arbitrary byte strings.  Every function that can fail
 * returns an apr_status_t; results come back through out-parameters and
 * live in the caller's pool.  The engine never prints and never exits. */
#ifndef KVLSM_H
#define KVLSM_H

#include <apr_pools.h>
#include <apr_errno.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- error codes (APR's user-error range) ---------------------------- */
#define KV_NOTFOUND  (APR_OS_START_USERERR + 7701) /* no such key */
#define KV_CORRUPT   (APR_OS_START_USERERR + 7702) /* a checksum or format check failed */
#define KV_TOOLARGE  (APR_OS_START_USERERR + 7703) /* key or value over the limit */
#define KV_CONFLICT  (APR_OS_START_USERERR + 7704) /* a write condition did not hold */
#define KV_INVALID   (APR_OS_START_USERERR + 7705) /* bad argument (empty key, ...) */
#define KV_CLOSED    (APR_OS_START_USERERR + 7706) /* the handle is closing */
#define KV_SYNCFAIL  (APR_OS_START_USERERR + 7707) /* a log fdatasync failed: writes are
                                                      refused until the store is reopened */
/* Running out of space is reported as APR_ENOSPC (APR_STATUS_IS_ENOSPC),
 * other I/O failures as the operating system's code. */

/* Describe any status code (engine or APR) into buf; returns buf. */
const char *kv_strerror(apr_status_t rv, char *buf, apr_size_t bufsize);

/* ---- options ---------------------------------------------------------- */
typedef enum {
    KV_SYNC_OFF = 0,      /* acknowledge once write() returned; the kernel syncs */
    KV_SYNC_INTERVAL = 1, /* plus an fdatasync every sync_interval_ms (a thread of its own) */
    KV_SYNC_ALWAYS = 2    /* fdatasync before acknowledging (group commit) */
} kv_sync_mode_e;

typedef enum {
    KV_COMPRESS_NONE = 0,
    KV_COMPRESS_LZ4 = 1,
    KV_COMPRESS_ZSTD = 2   /* level 1 */
} kv_compression_e;

typedef struct {
    apr_size_t memtable_bytes;     /* memtable memory (or log size) that seals it; default 4 MiB */
    kv_sync_mode_e sync_mode;      /* default KV_SYNC_INTERVAL */
    apr_uint32_t sync_interval_ms; /* default 1000 */
    apr_size_t max_key_bytes;      /* default 4096; hard limit 65535 */
    apr_size_t max_value_bytes;    /* default 1 MiB; hard limit 256 MiB */
    int background;                /* 1 (default): run the flush/compaction thread, and under
                                      KV_SYNC_INTERVAL the syncer; 0: neither (no interval sync) */
    kv_compression_e compression;  /* for SST data blocks written from now on;
                                      default none (files of any kind are read) */
    /* SST data this process may read through read-only mappings instead
     * of pread: a lookup in a mapped file makes no system call, but the
     * pages it touches count in the process's resident set (up to this
     * many bytes), and a disk error on a mapped page is SIGBUS rather
     * than an error code.  Whole files are mapped, first come, while they
     * fit; the rest are read with pread.  0: never map.  Default
     * KV_MAP_ALL: every file (the pages are the page cache, shared with
     * every other process and reclaimable, not private memory). */
    apr_size_t map_bytes;
    /* Called (from any thread) when a file fails a checksum, with its path
     * and the offset of the damage, so the embedder can log it.  NULL: none. */
    void (*on_corruption)(void *baton, const char *path, apr_uint64_t offset);
    void *corruption_baton;
} kv_options_t;

/* The default mapping budget: every SST on 64-bit builds; on 32-bit,
 * where address space is short, 256 MiB. */
#if APR_SIZEOF_VOIDP >= 8
#define KV_MAP_ALL ((apr_size_t)1 << 46)
#else
#define KV_MAP_ALL ((apr_size_t)256 << 20)
#endif

void kv_options_default(kv_options_t *opts);

/* ---- handle ----------------------------------------------------------- */
typedef struct kv_db_t kv_db_t;

/* Open (creating if needed) the store in dir.  The handle lives in pool;
 * a cleanup on pool closes it.  Several processes may open one directory. */
apr_status_t kv_db_open(kv_db_t **db, const char *dir,
                        const kv_options_t *opts, apr_pool_t *pool);

/* Stop the background threads, sync the log, release files.  Idempotent. */
apr_status_t kv_db_close(kv_db_t *db);

/* ---- reads -------------------------------------------------------------*/
typedef struct {
    const char *data;      /* kv_get/kv_delete: a NUL-terminated copy in the
                              pool; kv_iter_value: not terminated, valid
                              until the iterator moves */
    apr_size_t len;
    apr_uint64_t seq;      /* version: the write's sequence number */
    apr_int64_t expire_at; /* unix seconds after which it reads as missing; 0 = never */
} kv_value_t;

/* KV_NOTFOUND if the key is absent, deleted or expired. */
apr_status_t kv_get(kv_db_t *db, const void *key, apr_size_t klen,
                    apr_pool_t *pool, kv_value_t *out);

/* ---- writes ----------------------------------------------------------- */
typedef enum {
    KV_IF_ANY = 0,      /* unconditional */
    KV_IF_SEQ = 1,      /* only if the key exists with version if_seq */
    KV_IF_ABSENT = 2,   /* only if the key does not exist */
    KV_BLIND = 3        /* delete without reading: no old value, and no
                           KV_NOTFOUND for a missing key (as a put) */
} kv_cond_e;

typedef struct {
    kv_cond_e cond;
    apr_uint64_t if_seq;
    apr_int64_t expire_at; /* put only: 0 = never expires */
} kv_write_opts_t;

/* Store a value.  On success *seq (if not NULL) is the new version.  A
 * failed condition is KV_CONFLICT and writes nothing.  opts may be NULL. */
apr_status_t kv_put(kv_db_t *db, const void *key, apr_size_t klen,
                    const void *val, apr_size_t vlen,
                    const kv_write_opts_t *opts, apr_uint64_t *seq);

/* Delete a key and return the value it had (into pool), atomically: of
 * two concurrent deletes exactly one gets the value, the other
 * KV_NOTFOUND.  old may be NULL.  opts may be NULL (expire_at ignored). */
apr_status_t kv_delete(kv_db_t *db, const void *key, apr_size_t klen,
                       const kv_write_opts_t *opts, apr_pool_t *pool,
                       kv_value_t *old);

/* An atomic batch: all its operations land as one log record. */
typedef struct kv_batch_t kv_batch_t;
apr_status_t kv_batch_create(kv_batch_t **b, apr_pool_t *pool);
apr_status_t kv_batch_put(kv_batch_t *b, const void *key, apr_size_t klen,
                          const void *val, apr_size_t vlen,
                          apr_int64_t expire_at);
apr_status_t kv_batch_delete(kv_batch_t *b, const void *key, apr_size_t klen);
int kv_batch_count(const kv_batch_t *b);
/* Apply the batch; *first_seq (if not NULL) is the first op's version. */
apr_status_t kv_write_batch(kv_db_t *db, kv_batch_t *b, apr_uint64_t *first_seq);

/* ---- ordered iteration --------------------------------------------------
 * An iterator reads one consistent snapshot taken when it was opened, in
 * ascending byte order of keys, skipping deleted and expired keys.  It
 * lives in pool (closed by a cleanup) or until kv_iter_close. */
typedef struct kv_iter_t kv_iter_t;
apr_status_t kv_iter_open(kv_iter_t **it, kv_db_t *db, apr_pool_t *pool);  /* *it NULL on failure */
/* Position on the first key >= key (key NULL: the first key).  A new
 * iterator must be positioned with kv_iter_seek before use. */
apr_status_t kv_iter_seek(kv_iter_t *it, const void *key, apr_size_t klen);
int kv_iter_valid(const kv_iter_t *it);
apr_status_t kv_iter_next(kv_iter_t *it);
/* Valid until the next move of the iterator (the key is NUL-terminated). */
void kv_iter_key(const kv_iter_t *it, const char **key, apr_size_t *klen);
void kv_iter_value(const kv_iter_t *it, kv_value_t *out);
apr_status_t kv_iter_status(const kv_iter_t *it);
void kv_iter_close(kv_iter_t *it);
/* Bound the work of each seek and the moves after it: once max_keys keys
 * (live, deleted or expired; versions of one key count once) have been
 * passed since the seek, a move that has not found a live key yet stops:
 * kv_iter_valid is 0, kv_iter_exhausted 1, and kv_iter_key names the last
 * key passed, so a seek just after it resumes the walk.  Without a bound
 * (max_keys 0, the default) a run of deleted keys is walked to its end. */
void kv_iter_set_budget(kv_iter_t *it, apr_uint64_t max_keys);
int kv_iter_exhausted(const kv_iter_t *it);

/* ---- maintenance and figures ------------------------------------------ */
/* Seal the current memtable and write it to an SST now (waits for it). */
apr_status_t kv_db_flush(kv_db_t *db);
/* Run compactions until no level is over its target (waits). */
apr_status_t kv_db_compact(kv_db_t *db);

#define KV_MAX_LEVELS 7
#define KV_LATENCY_BUCKETS 16

typedef struct {
    /* the directory, as this process sees it */
    apr_uint64_t sst_files, sst_bytes;
    apr_uint64_t level_files[KV_MAX_LEVELS], level_bytes[KV_MAX_LEVELS];
    apr_uint64_t memtable_bytes;  /* active + immutable memtables */
    apr_uint64_t wal_bytes;       /* logs not yet flushed */
    apr_uint64_t last_seq;
    apr_uint64_t sst_mapped_bytes; /* SST bytes this process reads through mappings */
    apr_uint64_t sst_private_bytes; /* this process's own memory for SST indexes
                                       (and for the filters of unmapped files) */
    /* Counters (KV_STATS_COUNTERS) and the latency histogram: store-wide
     * when counters_shared, what every process that has the directory
     * open counts into (the file STATS), monotonic, kept across every
     * process's exit, from 0 since the file was laid out (counters_since:
     * its first use after a reboot); otherwise this handle's own
     * since it opened (STATS could not be used: no room to create it, a
     * layout this build does not know). */
    apr_uint64_t flushes, compactions, write_stalls, write_stall_us;
    apr_uint64_t gets, sets, dels, batches;
    apr_uint64_t bytes_read, bytes_written;
    apr_uint64_t syncs;
    apr_uint64_t bg_errors;       /* background flush/compaction/sync failures */
    /* kv_db_observe_latency's observations per bucket (not cumulative):
     * [i] those over kv_latency_bound(i - 1) and at most
     * kv_latency_bound(i); the last, those over the last bound. */
    apr_uint64_t latency_buckets[KV_LATENCY_BUCKETS + 1];
    apr_uint64_t latency_sum_ns;  /* their sum, nanoseconds */
    apr_uint64_t counters_since;  /* unix seconds */
    int counters_shared;
    apr_status_t counters_why;    /* when not shared: what stopped it */
} kv_stats_t;

/* The counters of kv_stats_t, listed once: X(name) for each. */
#define KV_STATS_COUNTERS(X) \
    X(flushes) X(compactions) X(write_stalls) X(write_stall_us) \
    X(gets) X(sets) X(dels) X(batches) X(bytes_read) X(bytes_written) \
    X(syncs) X(bg_errors)

apr_status_t kv_db_stats(kv_db_t *db, kv_stats_t *st);

/* Count one request that took `seconds` into the store-wide latency
 * histogram (one atomic add to a bucket and one to the sum; no lock).
 * The embedder decides what a request is: the module counts every
 * request its handler answers. */
void kv_db_observe_latency(kv_db_t *db, double seconds);
/* The upper bound in seconds of bucket i (0 <= i < KV_LATENCY_BUCKETS),
 * rising from 0.0001 to 10; fixed, they are part of STATS's layout. */
double kv_latency_bound(int i);

/* ---- online snapshots ----------------------------------------------------
 * A snapshot is the set of files that, written into an empty directory
 * under their names (the first `bytes` bytes of each), make a data
 * directory holding one consistent point of the store: every write
 * acknowledged, in any process, before kv_snapshot_open was called, and
 * for each key the value of one prefix of the store's history (never a
 * half-applied batch), all of it durable (the active log is synced up to
 * the point if it was not).  Taking one copies no data and takes no lock:
 * the files are hard links in a private directory inside the data
 * directory (`SNAP-<pid>-<n>.tmp`), which keep them readable after a flush
 * or a compaction removes them; writers never wait for a snapshot.  The
 * links cost no space until the store deletes the originals, and then as
 * much as the files they keep, until kv_snapshot_close.  A private
 * directory left by a killed process is removed by the next
 * kv_db_open or kv_snapshot_open of the directory (a live one, never).
 * A flush or compaction that removes a listed file meanwhile makes it
 * start again from the new manifest, at most 100 times: then APR_EAGAIN.
 * KV_CORRUPT if a listed file is missing while its manifest is still the
 * store's; EPERM (fs.protected_hardlinks) if the store's files belong to
 * another user than the caller.  KV_SYNCFAIL once a log fdatasync has
 * failed (before or while the snapshot is taken), as for writes, until
 * the store is reopened by every process: the files would be a page
 * cache the disk may not hold, so the snapshot could hold writes that are
 * not durable. */
typedef struct {
    const char *name;      /* its name in the data directory, e.g. "MANIFEST",
                              "000007.sst", "000012.log" */
    const char *path;      /* where to read it while the snapshot is open */
    apr_uint64_t bytes;    /* the snapshot is its first `bytes` bytes (the
                              active log may have grown past them) */
    apr_int64_t mtime;     /* unix seconds */
} kv_snapshot_file_t;

typedef struct {
    int nfiles;
    const kv_snapshot_file_t *files;   /* MANIFEST first, then SSTs, then logs in order */
    apr_uint64_t bytes;                /* the sum of files[].bytes */
    int attempts;                      /* 1, plus one per retry */
} kv_snapshot_info_t;

typedef struct kv_snapshot_t kv_snapshot_t;
/* Take a snapshot of db now.  It lives in pool (a cleanup closes it) or
 * until kv_snapshot_close; it does not need db to stay open. */
apr_status_t kv_snapshot_open(kv_snapshot_t **snap, kv_db_t *db, apr_pool_t *pool);
const kv_snapshot_info_t *kv_snapshot_info(const kv_snapshot_t *snap);
/* Remove the private directory (files already opened stay readable).
 * Idempotent. */
apr_status_t kv_snapshot_close(kv_snapshot_t *snap);

#ifdef __cplusplus
}
#endif
#endif /* KVLSM_H */
