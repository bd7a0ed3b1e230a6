/* db_impl.h -- the engine's internal state and the interfaces between its
 * layers.  Not part of the public API.  From the top down (a file calls
 * only into files below it):
 *   db.c       the facade: open/close, get/put/delete/batch, stats
 *   write.c    the write path: queue, log lock, append, rotation
 *   background.c  the background thread (interval sync, flush, compact)
 *   compact.c  picking and merging (flushes between its output files)
 *   flush.c    the flush lock, sealed logs into L0 SSTs, orphans
 *   commit.c   durability: group commit against the synced end
 *   catchup.c  keeping level with the shared log and the manifest
 *   snapshot.c online snapshots (links only: it calls nothing above it)
 *   version.c  file sets and point lookups
 *   logfile.c replay.c wal.c sst_*.c memtable.c manifest.c shm.c stats.c fileio.c
 *
 * Locks, always taken in this order (docs/DESIGN.md explains why):
 *   log lock (robust mutex in SHM) -> flush_mu -> FLUSH flock (FLUSHLOCK)
 *   -> state_mu -> rw (writer side only for pointer swaps)
 * sync_mu, fsync_mu and bg_mu are leaves: nothing else is taken while
 * holding them except a brief read lock of rw or state_mu.  wq_mu (the
 * write queue) is held only to join, wait in or leave the queue, never
 * together with another lock. */
#ifndef KV_DB_IMPL_H
#define KV_DB_IMPL_H

#include <apr_thread_mutex.h>
#include <apr_thread_rwlock.h>
#include <apr_thread_cond.h>
#include <apr_thread_proc.h>
#include <pthread.h>
#include <sys/types.h>
#include "kvlsm.h"
#include "entry.h"
#include "manifest.h"
#include "memtable.h"
#include "sst.h"
#include "wal.h"
#include "shm.h"
#include "stats.h"
#include "logfile.h"
#include "replay.h"

#define ATOMIC_LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define ATOMIC_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
/* Count into the store-wide slot of a kv_stats_t counter (stats.h). */
#define STAT_ADD(db, field, n) stats_add(&(db)->stats, ST_##field, (n))

/* A writer waiting in the write queue (db.c): what it writes, and what
 * the writer at the front, who appends for it, hands back. */
typedef struct kv_writer {
    wal_rec_t *rec;
    int kind;                   /* wkind_e */
    int plain;                  /* no condition, no old value: may share an append */
    const char *key;
    size_t klen;
    const kv_write_opts_t *o;
    apr_pool_t *pool;
    kv_value_t *old;
    int done;                   /* wq_mu: the results below are set */
    apr_status_t rv;
    uint64_t first, log_no, end;
    pthread_cond_t cv;          /* with wq_mu: signalled when done or at the front */
    struct kv_writer *next;
} kv_writer_t;

/* An immutable snapshot of what a lookup searches (plus the active
 * memtable, which only grows).  Reference counted; replaced whole. */
typedef struct {
    int refs;
    struct kv_db_t *db;     /* for reporting damage */
    wal_file_t *log;        /* the log the active memtable replays */
    memtable_t *mem;
    int nimm;
    memtable_t **imm;       /* sealed memtables, newest first */
    uint64_t *imm_log;      /* the log each came from */
    manifest_t mf;          /* the live SSTs, sorted (mf_sort) */
    sst_t **ssts;           /* parallel to mf.files */
    int level_start[KV_MAX_LEVELS + 1];
} version_t;

struct kv_db_t {
    apr_pool_t *pool;
    char *dir;
    kv_options_t opts;
    int lock_fd;            /* LOCK: serialises creating the directory and SHM */
    int flock_fd;           /* FLUSHLOCK: flushes, compactions, manifest */
    shm_handle_t shm;       /* the log lock, the published and synced ends */
    stats_handle_t stats;   /* the store-wide counters (STATS) */
    apr_thread_mutex_t *flush_mu, *state_mu, *sync_mu, *bg_mu;
    pthread_mutex_t fsync_mu;   /* serialises this process's log syncs (log_sync) */
    apr_thread_cond_t *sync_cv, *bg_cv;
    apr_thread_cond_t *syncer_cv;   /* bg_mu: wakes the syncer to stop */
    apr_thread_cond_t *flushed_cv;  /* bg_mu: broadcast after each flush */
    apr_thread_rwlock_t *rw;
    version_t *current;     /* swapped under rw (write) and state_mu */

    /* How far this process's memtables reflect the shared log: a
     * published position (logpos) in current->log.  Written under
     * state_mu, read without it (atomic) by the cheap "am I behind?"
     * check against the published end. */
    uint64_t applied;
    uint64_t visible_seq;   /* every entry <= this is applied and published */
    uint64_t last_seq;      /* state_mu: newest entry applied (may run ahead
                               of `applied` inside a record an apply failed in) */
    ino_t mf_ino;           /* state_mu: identity of the manifest loaded */
    int mf_fd;              /* state_mu: kept open so the inode stays unique */
    replay_buf_t rbuf;      /* state_mu: catch-up read buffer */

    /* The write queue (wq_mu): this process's plain writers line up; the
     * one at the front takes the log lock and appends its record and those
     * queued behind it in one pwrite. */
    pthread_mutex_t wq_mu;
    kv_writer_t *wq_head, *wq_tail;
    /* log lock: the buffer a group's records are copied into, kept from
     * one group to the next (up to GROUP_BUF_KEEP bytes), so appends do
     * not leave freed megabytes in every writer thread's malloc arena. */
    char *group_buf;
    size_t group_cap;

    /* Group commit (sync_mu). */
    int syncing;
    int sync_waiting;          /* writers in sync_list (sync_mu) */
    struct sync_waiter *sync_list; /* writers waiting for a sync not yet covered (sync_mu) */
    int sync_inflight;         /* KV_SYNC_ALWAYS writers between entry and durable (atomic) */
    apr_interval_time_t sync_us; /* how long this process's last fdatasync took (sync_mu) */
    int dirty;              /* atomic: unsynced writes of this process */

    /* Background threads (bg_mu): the flush thread, and under
     * KV_SYNC_INTERVAL the syncer. */
    apr_thread_t *bg, *syncer;
    int stop, kicked;
    int cleaned;            /* flush lock: orphans removed once */
    apr_time_t swept;       /* background thread: last snapshot_sweep */
    char *cptr[KV_MAX_LEVELS]; /* flush lock: round-robin compaction keys */
    size_t cptr_len[KV_MAX_LEVELS];

    int closed;
};

/* ---- write.c ---- */
typedef enum { W_PUT, W_DEL, W_BATCH } wkind_e;
/* Write w (and, for a plain write, the plain writers queued behind it):
 * the log lock, catching up to the published end, the check a condition
 * or a delete needs, a rotation if due, one append, publish.  Sets w->rv,
 * and on success w->first, w->log_no, w->end. */
void write_submit(kv_db_t *db, kv_writer_t *w);
/* Free the calling thread's scratch pool (the closing thread's; other
 * threads' go when they exit). */
void write_scratch_release(void);
/* Seal the current log now (kv_db_flush), under the log lock. */
apr_status_t write_rotate_now(kv_db_t *db);
/* First opener after every process had gone: find the end. */
apr_status_t write_recover(kv_db_t *db);

/* ---- commit.c ---- */
/* Wait until the record ending at (log, end) is on stable storage. */
apr_status_t commit_wait_durable(kv_db_t *db, uint64_t log, uint64_t end);
/* Background sync for KV_SYNC_INTERVAL. */
void commit_sync_dirty(kv_db_t *db);

/* ---- catchup.c ---- */
/* Come level with the published end `target` (a logpos): replay what
 * other processes appended, follow published rotations.  Caller holds
 * state_mu.  Never reads past the target. */
apr_status_t catchup_to(kv_db_t *db, uint64_t target);
/* For readers: replay if behind the published end (one atomic load when
 * level; state_mu otherwise). */
apr_status_t catchup_if_behind(kv_db_t *db);
/* Apply a writer's own records (buf[0..len), at published position
 * `at`) to the memtable.  state_mu held. */
apr_status_t catchup_apply_own(kv_db_t *db, const char *buf, size_t len, uint64_t at);
/* Load the manifest if it changed (or force), install a version with its
 * SSTs, drop sealed memtables it covers.  Caller holds state_mu. */
apr_status_t catchup_refresh_manifest(kv_db_t *db, int force);

/* ---- version.c ---- */
/* Tell the embedder (on_corruption) which file is damaged, and where. */
void db_report_corruption(kv_db_t *db, uint64_t number, const char *ext, uint64_t offset);
void version_ref(version_t *v);
void version_unref(version_t *v);
version_t *version_acquire(kv_db_t *db, uint64_t *snap);   /* ref'd */
/* Install v as current (takes over the caller's reference).  state_mu held. */
void version_install(kv_db_t *db, version_t *v);
/* A new version sharing v's log, memtables and files (all ref'd). */
version_t *version_clone(const version_t *v);
/* Build ssts[] for mf from the files already open in old (may be NULL) or
 * by opening them.  APR_ENOENT if a listed file is gone. */
apr_status_t version_open_files(kv_db_t *db, version_t *v, const version_t *old);
/* Newest visible version of key (tombstones included: out->type). */
apr_status_t version_get(version_t *v, const char *key, size_t klen,
                         uint64_t snap, apr_pool_t *pool, kv_ent_t *out);
/* Like version_get but answers KV_NOTFOUND for tombstones and expired. */
apr_status_t version_get_live(version_t *v, const char *key, size_t klen,
                              uint64_t snap, apr_pool_t *pool, kv_ent_t *out);

/* ---- background.c ---- */
apr_status_t background_start(kv_db_t *db);
void background_stop(kv_db_t *db);
void background_kick(kv_db_t *db);

/* ---- flush.c ---- */
/* Caller holds flush_mu and the FLUSH flock. */
apr_status_t flush_sealed_logs(kv_db_t *db);
/* The same into the caller's copy of the manifest, writing it after each
 * log (a compaction in progress passes its own, so flushes need not wait
 * for it to end). */
apr_status_t flush_logs_into(kv_db_t *db, manifest_t *m);
/* Is the first unflushed log sealed (someone may be waiting for it)? */
int flush_waiting(kv_db_t *db, const manifest_t *m);
apr_status_t flush_remove_orphans(kv_db_t *db);
apr_status_t flush_lock(kv_db_t *db, int wait);
void flush_unlock(kv_db_t *db);

/* ---- snapshot.c ---- */
/* Remove the private directories of snapshots whose process died (a live
 * one holds a lock on its directory).  Best effort; any process, any
 * time, no lock needed. */
apr_status_t snapshot_sweep(const char *dir);

/* ---- compact.c ---- */
/* One compaction step if any level is over its target; *did says so.
 * Caller holds the flush locks. */
apr_status_t compact_once(kv_db_t *db, int *did);
uint64_t compact_target_file_bytes(const kv_db_t *db);
/* Does m's L0 hold so many files that writers should wait for compaction? */
int compact_l0_full(const manifest_t *m);

#endif
