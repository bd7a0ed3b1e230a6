/* flush.c -- the flush lock, the flush of sealed logs into level-0 SSTs,
 * and the removal of orphans.  Only the holder of the FLUSH lock (one
 * process at a time) flushes, compacts, rewrites the manifest and removes
 * files.  A holder that dies half-way leaves work the next holder redoes
 * from the manifest and logs.  The thread that calls this is
 * background.c's. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "db_impl.h"
#include "fileio.h"
#include "filename.h"

apr_status_t flush_lock(kv_db_t *db, int wait)
{
    if (wait)
        apr_thread_mutex_lock(db->flush_mu);
    else if (apr_thread_mutex_trylock(db->flush_mu) != APR_SUCCESS)
        return APR_EAGAIN;
    apr_status_t rv = fio_lock(db->flock_fd, wait);
    if (rv) {
        apr_thread_mutex_unlock(db->flush_mu);
        return rv;
    }
    /* Whoever first holds the lock in this process sweeps what crashed
     * flushes and compactions left behind. */
    if (!db->cleaned)
        db->cleaned = flush_remove_orphans(db) == APR_SUCCESS;
    return APR_SUCCESS;
}

void flush_unlock(kv_db_t *db)
{
    fio_unlock(db->flock_fd);
    apr_thread_mutex_unlock(db->flush_mu);
}

typedef struct {
    memtable_t *mt;
    uint64_t *max_seq;
} load_ctx_t;

static apr_status_t load_cb(void *baton, const wal_view_t *v, uint64_t off, uint64_t end)
{
    load_ctx_t *c = baton;
    size_t bpos = 0;
    uint32_t idx;
    kv_ent_t e;
    int r;
    (void)off;
    (void)end;
    while ((r = wal_batch_next(v, &bpos, &idx, &e)) == 1) {
        apr_status_t rv = mt_add(c->mt, &e);
        if (rv)
            return rv;
        if (e.seq > *c->max_seq)
            *c->max_seq = e.seq;
    }
    return r < 0 ? KV_CORRUPT : APR_SUCCESS;
}

/* Replay sealed log `number` into a scratch memtable: every record up to
 * its rotation record, which must be there (the caller saw the published
 * end move past this log, and a rotation is published only once its
 * record is written and synced). */
static apr_status_t load_log(kv_db_t *db, uint64_t number, memtable_t *mt, uint64_t *max_seq)
{
    char path[4096];
    fn_numbered(path, sizeof(path), db->dir, number, "log");
    int fd;
    apr_status_t rv = fio_open(path, O_RDONLY | O_CLOEXEC, 0, &fd);
    if (rv)
        return rv;
    replay_buf_t buf = { 0 };
    load_ctx_t c = { mt, max_seq };
    replay_t r;
    rv = replay_log(fd, 0, REPLAY_TO_END, &buf, load_cb, &c, &r);
    close(fd);
    replay_buf_free(&buf);
    if (rv == APR_SUCCESS && (!r.rotated || r.next_log != number + 1)) {
        db_report_corruption(db, number, "log", r.end);
        rv = KV_CORRUPT;
    }
    return rv;
}

/* The sealed memtable this process replayed from log `number`, if any
 * (a new reference); raises *max_seq to its newest entry. */
static memtable_t *sealed_memtable(kv_db_t *db, uint64_t number, uint64_t *max_seq)
{
    memtable_t *mt = NULL;
    version_t *v = version_acquire(db, NULL);
    for (int i = 0; i < v->nimm; i++) {
        if (v->imm_log[i] == number) {
            mt = v->imm[i];
            mt_ref(mt);
            break;
        }
    }
    version_unref(v);
    if (mt && mt_max_seq(mt) > *max_seq)
        *max_seq = mt_max_seq(mt);
    return mt;
}

/* Write the newest version of each key of mt as SST `number`.  Returns
 * its description in *f (keys malloc'd). */
static apr_status_t write_sst(kv_db_t *db, memtable_t *mt, uint64_t number,
                              mf_file_t *f)
{
    char tmp[4200], path[4096];
    fn_numbered(path, sizeof(path), db->dir, number, "sst");
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fio_unlink(tmp);
    sst_builder_t *b;
    apr_status_t rv = sst_builder_open(&b, tmp, (int)db->opts.compression);
    if (rv)
        return rv;
    mt_iter_t it;
    kv_ent_t e, prev = { 0 };
    int have_prev = 0;
    mt_iter_init(&it, mt);
    for (mt_iter_seek_first(&it); mt_iter_valid(&it); mt_iter_next(&it)) {
        mt_iter_entry(&it, &e);
        if (have_prev && key_cmp(e.key, e.klen, prev.key, prev.klen) == 0)
            continue;  /* an older version of the key just written */
        if ((rv = sst_builder_add(b, &e))) {
            sst_builder_abandon(b);
            return rv;
        }
        prev = e;
        have_prev = 1;
    }
    sst_meta_t meta;
    if ((rv = sst_builder_finish(b, &meta)))
        return rv;   /* finish frees b; the .tmp is removed as an orphan */
    if ((rv = fio_rename(tmp, path))) {
        sst_meta_free(&meta);
        fio_unlink(tmp);
        return rv;
    }
    memset(f, 0, sizeof(*f));
    f->level = 0;
    f->number = number;
    f->bytes = meta.file_bytes;
    f->entries = meta.entries;
    f->min_seq = meta.min_seq;
    f->max_seq = meta.max_seq;
    f->smallest = meta.smallest;
    f->smallest_len = meta.smallest_len;
    f->largest = meta.largest;
    f->largest_len = meta.largest_len;
    return APR_SUCCESS;
}

apr_status_t flush_logs_into(kv_db_t *db, manifest_t *m)
{
    for (;;) {
        uint64_t l = m->log_start, max_seq = m->last_seq;
        /* Only a log the published end has left behind is sealed: an
         * unpublished rotation record (a rotation that failed half-way)
         * seals nothing, and its log may still be appended to. */
        if (l >= logpos_log(shm_end(&db->shm)))
            return APR_SUCCESS;
        int sealed = 1;
        apr_status_t rv = APR_SUCCESS;
        /* This process usually holds log l already as a sealed memtable,
         * which it sealed on reaching the log's rotation record, so it
         * holds exactly the log's published content: flush that rather
         * than read the log again. */
        memtable_t *mt = sealed_memtable(db, l, &max_seq);
        if (!mt) {
            if (!(mt = mt_create()))
                return APR_ENOMEM;
            rv = load_log(db, l, mt, &max_seq);
        }
        if (rv == APR_SUCCESS && sealed && mt_count(mt) > 0) {
            mf_file_t f;
            if ((rv = write_sst(db, mt, m->next_sst, &f)) == APR_SUCCESS) {
                rv = mf_add(m, &f);
                free(f.smallest);
                free(f.largest);
                m->next_sst++;
            }
        }
        mt_unref(mt);
        if (rv == APR_SUCCESS && sealed) {
            m->log_start = l + 1;
            m->last_seq = max_seq;
            m->generation++;
            if ((rv = fio_fsync_dir(db->dir)) == APR_SUCCESS)
                rv = mf_write(db->dir, m);
            if (rv == APR_SUCCESS) {
                /* Only now, with the manifest durable, may the log go. */
                char path[4096];
                fn_numbered(path, sizeof(path), db->dir, l, "log");
                fio_unlink(path);
                STAT_ADD(db, flushes, 1);
            }
        }
        if (rv)
            return rv;
        apr_thread_mutex_lock(db->state_mu);
        rv = catchup_refresh_manifest(db, 0);
        apr_thread_mutex_unlock(db->state_mu);
        apr_thread_mutex_lock(db->bg_mu);
        apr_thread_cond_broadcast(db->flushed_cv);
        apr_thread_mutex_unlock(db->bg_mu);
        if (rv)
            return rv;
    }
}

apr_status_t flush_sealed_logs(kv_db_t *db)
{
    manifest_t m;
    apr_status_t rv = mf_read(db->dir, &m, NULL, NULL);
    if (rv)
        return rv;
    rv = flush_logs_into(db, &m);
    mf_free(&m);
    return rv;
}

int flush_waiting(kv_db_t *db, const manifest_t *m)
{
    return m->log_start < logpos_log(shm_end(&db->shm));
}

static int parse_name(const char *name, uint64_t *num, const char *ext)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(name, &end, 10);
    if (end == name || errno || *end != '.' || strcmp(end + 1, ext) != 0)
        return 0;
    *num = n;
    return 1;
}

apr_status_t flush_remove_orphans(kv_db_t *db)
{
    manifest_t m;
    apr_status_t rv = mf_read(db->dir, &m, NULL, NULL);
    if (rv)
        return rv;
    DIR *d = opendir(db->dir);
    if (!d) {
        rv = APR_FROM_OS_ERROR(errno);
        mf_free(&m);
        return rv;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        size_t len = strlen(n);
        uint64_t num;
        int remove = 0;
        /* REPAIR.tmp is written under the log lock, not FLUSHLOCK: its
         * writer may be alive (write.c: owe_repair), and one that died
         * left nothing anyone reads (the next owe_repair truncates it). */
        if (fn_is_snapshot(n))
            remove = 0;   /* a snapshot's directory: snapshot_sweep's business */
        else if (len > 4 && strcmp(n + len - 4, ".tmp") == 0)
            remove = strcmp(n, FN_REPAIR_TMP) != 0;
        else if (parse_name(n, &num, "log"))
            remove = num < m.log_start;
        else if (parse_name(n, &num, "sst")) {
            remove = 1;
            for (int i = 0; i < m.nfiles; i++)
                if (m.files[i].number == num)
                    remove = 0;
        }
        if (remove) {
            char path[4096];
            fn_named(path, sizeof(path), db->dir, n);
            fio_unlink(path);
        }
    }
    closedir(d);
    mf_free(&m);
    return APR_SUCCESS;
}
