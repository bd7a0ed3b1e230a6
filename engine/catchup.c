/* catchup.c -- keeping this process level with the shared state: replay
 * of what other processes appended to the log, up to the published end
 * and never beyond (shm.h); following published rotations; loading a
 * changed manifest and the SSTs it lists.  Everything here runs under
 * state_mu.  Which process may append or cut the log is write.c's
 * business: nothing here writes a log. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "db_impl.h"
#include "fileio.h"
#include "filename.h"
#ifdef KV_FAULT_INJECT
#include "fault.h"
#endif

#define REFRESH_TRIES 1000

/* Apply one batch record to the active memtable.  Entries this process
 * already holds (seq <= last_seq: applied before an earlier attempt at
 * this record failed part-way) are skipped, so applying a record again
 * is harmless.  state_mu held. */
static apr_status_t apply_batch(kv_db_t *db, const wal_view_t *v)
{
    size_t pos = 0;
    uint32_t idx;
    kv_ent_t e;
    int r;
    while ((r = wal_batch_next(v, &pos, &idx, &e)) == 1) {
        if (e.seq <= db->last_seq)
            continue;
#ifdef KV_FAULT_INJECT
        if (fault_check(FAULT_APPLY, -1, NULL, NULL))
            return APR_ENOMEM;
#endif
        apr_status_t rv = mt_add(db->current->mem, &e);
        if (rv)
            return rv;
        db->last_seq = e.seq;
    }
    return r == 0 ? APR_SUCCESS : KV_CORRUPT;
}

/* A record applied whole: this process is level with its end.  What it
 * made visible first, then how far: a reader that finds `applied` level
 * with the published end skips its catch-up and reads at visible_seq,
 * so visible_seq must already cover the record (release, then the
 * reader's acquire of `applied`).  The other order let a reader in
 * between answer with the record before (review3/read_between_...). */
static void applied_to(kv_db_t *db, uint64_t pos)
{
    ATOMIC_STORE(&db->visible_seq, db->last_seq);
    ATOMIC_STORE(&db->applied, pos);
}

typedef struct {
    kv_db_t *db;
    uint64_t log;
} apply_ctx_t;

static apr_status_t apply_cb(void *baton, const wal_view_t *v, uint64_t off, uint64_t end)
{
    apply_ctx_t *c = baton;
    (void)off;
    apr_status_t rv = apply_batch(c->db, v);
    if (rv == APR_SUCCESS)
        applied_to(c->db, logpos(c->log, end));
    return rv;
}

apr_status_t catchup_apply_own(kv_db_t *db, const char *buf, size_t len, uint64_t at)
{
    uint64_t log = logpos_log(at), off = logpos_off(at);
    for (size_t pos = 0; pos < len;) {
        wal_view_t v;
        size_t n = wal_decode_sealed(buf + pos, len - pos, &v);   /* our own, in memory */
        if (!n)
            return KV_CORRUPT;
        apr_status_t rv = apply_batch(db, &v);
        if (rv)
            return rv;
        pos += n;
        applied_to(db, logpos(log, off + pos));
    }
    return APR_SUCCESS;
}

/* The active memtable is complete (its log's rotation record has been
 * reached): seal it and continue in log `next`.  state_mu held.  A
 * published rotation means `next` was created before it was published;
 * if it is gone, a flusher removed it after writing a manifest that has
 * moved past it (manifests are written before logs are removed), so start
 * over from that manifest. */
static apr_status_t switch_log(kv_db_t *db, uint64_t next)
{
    wal_file_t *w;
    apr_status_t rv = wal_file_open(db, next, 0, &w);
    if (APR_STATUS_IS_ENOENT(rv)) {
        manifest_t m;
        if ((rv = mf_read(db->dir, &m, NULL, NULL)))
            return rv;
        uint64_t start = m.log_start;
        mf_free(&m);
        if (start <= next) {
            db_report_corruption(db, next, "log", 0);
            return KV_CORRUPT;   /* a published log is missing */
        }
        return catchup_refresh_manifest(db, 0);
    }
    if (rv)
        return rv;
    memtable_t *mem = mt_create_sized(db->opts.memtable_bytes);
    version_t *nv = mem ? version_clone(db->current) : NULL;
    if (!nv) {
        if (mem)
            mt_unref(mem);
        wal_file_unref(w);
        return APR_ENOMEM;
    }
    /* The old active memtable becomes the newest sealed one. */
    memmove(nv->imm + 1, nv->imm, sizeof(memtable_t *) * (size_t)nv->nimm);
    memmove(nv->imm_log + 1, nv->imm_log, sizeof(uint64_t) * (size_t)nv->nimm);
    nv->imm[0] = nv->mem;
    nv->imm_log[0] = nv->log->number;
    nv->nimm++;
    nv->mem = mem;
    wal_file_unref(nv->log);
    nv->log = w;
    version_install(db, nv);
    applied_to(db, logpos(next, 0));
    /* Sealed memtables already flushed by someone can go now. */
    return catchup_refresh_manifest(db, 0);
}

apr_status_t catchup_to(kv_db_t *db, uint64_t target)
{
    for (;;) {
        uint64_t at = db->applied;
        if (at >= target)
            return APR_SUCCESS;
        wal_file_t *log = db->current->log;
        uint64_t n = logpos_log(at);
        apply_ctx_t c = { db, n };
        replay_t r;
        apr_status_t rv;
        if (n == logpos_log(target)) {
            /* The active log: exactly the published bytes. */
            rv = replay_log(log->fd, logpos_off(at), logpos_off(target), &db->rbuf,
                            apply_cb, &c, &r);
            if (rv == KV_CORRUPT)
                db_report_corruption(db, n, "log", r.end);
            return rv;
        }
        /* A sealed log: to its rotation record, which was written and
         * synced before the rotation was published. */
        rv = replay_log(log->fd, logpos_off(at), REPLAY_TO_END, &db->rbuf, apply_cb, &c, &r);
        if (rv)
            return rv;
        if (!r.rotated || r.next_log != n + 1) {
            db_report_corruption(db, n, "log", r.end);
            return KV_CORRUPT;
        }
        if ((rv = switch_log(db, n + 1)))
            return rv;
    }
}

apr_status_t catchup_if_behind(kv_db_t *db)
{
    uint64_t end = shm_end(&db->shm);
    if (ATOMIC_LOAD(&db->applied) >= end)
        return APR_SUCCESS;
    apr_thread_mutex_lock(db->state_mu);
    apr_status_t rv = catchup_to(db, end);
    apr_thread_mutex_unlock(db->state_mu);
    return rv;
}

/* ---- the manifest ---------------------------------------------------- */

/* Build and install the version for manifest m (consumed).  state_mu held.
 * If the manifest has moved past our log, everything we replayed is in
 * its SSTs: start over from its first log. */
static apr_status_t install_manifest(kv_db_t *db, manifest_t *m)
{
    version_t *cur = db->current;
    version_t *nv = calloc(1, sizeof(*nv));
    if (!nv) {
        mf_free(m);
        return APR_ENOMEM;
    }
    nv->refs = 1;
    nv->db = db;
    nv->mf = *m;
    apr_status_t rv = version_open_files(db, nv, cur);
    if (rv)
        goto fail;
    int reset = !cur || m->log_start > logpos_log(db->applied);
    if (reset) {
        /* ENOENT (flushed meanwhile) makes the caller read a newer one. */
        if ((rv = wal_file_open(db, m->log_start, 0, &nv->log)))
            goto fail;
        if (!(nv->mem = mt_create_sized(db->opts.memtable_bytes))) {
            rv = APR_ENOMEM;
            goto fail;
        }
    }
    else {
        nv->log = cur->log;
        wal_file_ref(nv->log);
        nv->mem = cur->mem;
        mt_ref(nv->mem);
        nv->imm = calloc((size_t)cur->nimm + 1, sizeof(memtable_t *));
        nv->imm_log = calloc((size_t)cur->nimm + 1, sizeof(uint64_t));
        if (!nv->imm || !nv->imm_log) {
            rv = APR_ENOMEM;
            goto fail;
        }
        for (int i = 0; i < cur->nimm; i++) {
            if (cur->imm_log[i] >= m->log_start) {
                nv->imm[nv->nimm] = cur->imm[i];
                nv->imm_log[nv->nimm++] = cur->imm_log[i];
                mt_ref(cur->imm[i]);
            }
        }
    }
    if (m->last_seq > db->last_seq)
        db->last_seq = m->last_seq;
    if (cur)
        version_install(db, nv);
    else
        db->current = nv;
    /* Without a reset nothing new became visible: last_seq may run ahead
     * of visible_seq inside a record whose apply failed part-way. */
    if (reset) {
        ATOMIC_STORE(&db->visible_seq, db->last_seq);   /* before applied: applied_to */
        ATOMIC_STORE(&db->applied, logpos(m->log_start, 0));
    }
    return APR_SUCCESS;
fail:
    version_unref(nv);   /* frees nv->mf, i.e. m */
    return rv;
}

apr_status_t catchup_refresh_manifest(kv_db_t *db, int force)
{
    char path[4096];
    fn_named(path, sizeof(path), db->dir, FN_MANIFEST);
    apr_status_t rv = APR_SUCCESS;
    for (int tries = 0; tries < REFRESH_TRIES; tries++) {
        struct stat st;
        if (stat(path, &st) < 0)
            return APR_FROM_OS_ERROR(errno);
        /* We keep the loaded manifest open, so its inode is not reused. */
        if (!force && db->current && st.st_ino == db->mf_ino)
            return APR_SUCCESS;
        force = 0;
        manifest_t m;
        ino_t ino;
        int fd;
        if ((rv = mf_read(db->dir, &m, &ino, &fd)))
            return rv;
        if (db->current && m.generation <= db->current->mf.generation)
            mf_free(&m);
        else if ((rv = install_manifest(db, &m)) != APR_SUCCESS) {
            close(fd);
            if (!APR_STATUS_IS_ENOENT(rv))
                return rv;
            /* A file it lists was removed by a newer manifest: read again. */
            force = 1;
            continue;
        }
        if (db->mf_fd >= 0)
            close(db->mf_fd);
        db->mf_fd = fd;
        db->mf_ino = ino;
        /* Loop: check it was not replaced while we loaded it. */
    }
    return rv;
}
