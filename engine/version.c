/* version.c -- versions: the reference-counted set of memtables and SST
 * files a read searches, and the point lookup across them, newest first
 * (active memtable, sealed memtables, L0 newest file first, then one file
 * per deeper level).  A reader holds a version; nothing it uses is freed
 * or closed until it lets go, even if another process deletes the file. */
#include <stdlib.h>
#include "db_impl.h"
#include "fileio.h"
#include "filename.h"
#include "bloom.h"

/* Tell the embedder (the module logs it) which file is damaged. */
void db_report_corruption(kv_db_t *db, uint64_t number, const char *ext, uint64_t offset)
{
    if (!db->opts.on_corruption)
        return;
    char path[4096];
    fn_numbered(path, sizeof(path), db->dir, number, ext);
    db->opts.on_corruption(db->opts.corruption_baton, path, offset);
}

void version_ref(version_t *v)
{
    __atomic_fetch_add(&v->refs, 1, __ATOMIC_RELAXED);
}

void version_unref(version_t *v)
{
    if (!v || __atomic_sub_fetch(&v->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    if (v->log)
        wal_file_unref(v->log);
    if (v->mem)
        mt_unref(v->mem);
    for (int i = 0; i < v->nimm; i++)
        mt_unref(v->imm[i]);
    free(v->imm);
    free(v->imm_log);
    for (int i = 0; i < v->mf.nfiles; i++)
        if (v->ssts && v->ssts[i])
            sst_unref(v->ssts[i]);
    free(v->ssts);
    mf_free(&v->mf);
    free(v);
}

version_t *version_acquire(kv_db_t *db, uint64_t *snap)
{
    apr_thread_rwlock_rdlock(db->rw);
    version_t *v = db->current;
    version_ref(v);
    if (snap)
        *snap = ATOMIC_LOAD(&db->visible_seq);
    apr_thread_rwlock_unlock(db->rw);
    return v;
}

void version_install(kv_db_t *db, version_t *v)
{
    apr_thread_rwlock_wrlock(db->rw);
    version_t *old = db->current;
    db->current = v;
    apr_thread_rwlock_unlock(db->rw);
    version_unref(old);
}

static void index_levels(version_t *v)
{
    int f = 0;
    for (int l = 0; l <= KV_MAX_LEVELS; l++) {
        while (f < v->mf.nfiles && v->mf.files[f].level < l)
            f++;
        v->level_start[l] = f;
    }
    v->level_start[KV_MAX_LEVELS] = v->mf.nfiles;
}

version_t *version_clone(const version_t *v)
{
    version_t *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->refs = 1;
    n->db = v->db;
    if (mf_copy(&n->mf, &v->mf) != APR_SUCCESS)
        goto fail;
    n->ssts = calloc((size_t)v->mf.nfiles + 1, sizeof(sst_t *));
    n->imm = calloc((size_t)v->nimm + 2, sizeof(memtable_t *));
    n->imm_log = calloc((size_t)v->nimm + 2, sizeof(uint64_t));
    if (!n->ssts || !n->imm || !n->imm_log)
        goto fail;
    for (int i = 0; i < v->mf.nfiles; i++) {
        n->ssts[i] = v->ssts[i];
        sst_ref(n->ssts[i]);
    }
    for (int i = 0; i < v->nimm; i++) {
        n->imm[i] = v->imm[i];
        n->imm_log[i] = v->imm_log[i];
        mt_ref(n->imm[i]);
    }
    n->nimm = v->nimm;
    n->log = v->log;
    if (n->log)
        __atomic_fetch_add(&n->log->refs, 1, __ATOMIC_RELAXED);
    n->mem = v->mem;
    if (n->mem)
        mt_ref(n->mem);
    memcpy(n->level_start, v->level_start, sizeof(n->level_start));
    return n;
fail:
    free(n->ssts);
    n->ssts = NULL;
    free(n->imm);
    free(n->imm_log);
    mf_free(&n->mf);
    free(n);
    return NULL;
}

apr_status_t version_open_files(kv_db_t *db, version_t *v, const version_t *old)
{
    mf_sort(&v->mf);
    index_levels(v);
    for (int i = 0; v->ssts && i < v->mf.nfiles; i++)
        if (v->ssts[i])
            sst_unref(v->ssts[i]);
    free(v->ssts);
    v->ssts = calloc((size_t)v->mf.nfiles + 1, sizeof(sst_t *));
    if (!v->ssts)
        return APR_ENOMEM;
    for (int i = 0; i < v->mf.nfiles; i++) {
        uint64_t num = v->mf.files[i].number;
        for (int j = 0; old && j < old->mf.nfiles; j++) {
            if (old->mf.files[j].number == num && old->ssts[j]) {
                v->ssts[i] = old->ssts[j];
                sst_ref(v->ssts[i]);
                break;
            }
        }
        if (!v->ssts[i]) {
            char path[4096];
            fn_numbered(path, sizeof(path), db->dir, num, "sst");
            /* A file whose index cannot be read (an I/O error, damage)
             * still joins the view: the reads that need it fail, and
             * writes, which need none, go on. */
            apr_status_t load_rv;
            apr_status_t rv = sst_open_lazy(&v->ssts[i], path, num, db->opts.map_bytes, &load_rv);
            if (rv != APR_SUCCESS) {
                v->ssts[i] = NULL;
                return rv;
            }
            if (load_rv == KV_CORRUPT)
                db_report_corruption(db, num, "sst", 0);
        }
    }
    return APR_SUCCESS;
}

static apr_status_t copy_ent(const kv_ent_t *in, apr_pool_t *pool, kv_ent_t *out)
{
    *out = *in;
    char *k = apr_palloc(pool, in->klen + 1);
    memcpy(k, in->key, in->klen);
    k[in->klen] = '\0';
    out->key = k;
    char *val = apr_palloc(pool, in->vlen + 1);
    if (in->vlen)
        memcpy(val, in->val, in->vlen);
    val[in->vlen] = '\0';
    out->val = val;
    return APR_SUCCESS;
}

/* Deeper levels hold disjoint files sorted by key: binary search. */
static int level_find(const version_t *v, int level, const char *key, size_t klen)
{
    int lo = v->level_start[level], hi = v->level_start[level + 1];
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        const mf_file_t *f = &v->mf.files[mid];
        if (key_cmp(f->largest, f->largest_len, key, klen) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < v->level_start[level + 1]) {
        const mf_file_t *f = &v->mf.files[lo];
        if (key_cmp(f->smallest, f->smallest_len, key, klen) <= 0)
            return lo;
    }
    return -1;
}

apr_status_t version_get(version_t *v, const char *key, size_t klen,
                         uint64_t snap, apr_pool_t *pool, kv_ent_t *out)
{
    kv_ent_t e;
    if (v->mem && mt_get(v->mem, key, klen, snap, &e))
        return copy_ent(&e, pool, out);
    for (int i = 0; i < v->nimm; i++)
        if (mt_get(v->imm[i], key, klen, snap, &e))
            return copy_ent(&e, pool, out);
    uint32_t hash = bloom_hash(key, klen);
    /* L0 files may overlap: newest (highest number, sorted last) first. */
    for (int i = v->level_start[1] - 1; i >= v->level_start[0]; i--) {
        const mf_file_t *f = &v->mf.files[i];
        if (key_cmp(key, klen, f->smallest, f->smallest_len) < 0
            || key_cmp(key, klen, f->largest, f->largest_len) > 0)
            continue;
        apr_status_t rv = sst_get_hashed(v->ssts[i], key, klen, hash, pool, out);
        if (rv == KV_CORRUPT)
            db_report_corruption(v->db, f->number, "sst", 0);
        if (rv != KV_NOTFOUND)
            return rv;
    }
    for (int l = 1; l < KV_MAX_LEVELS; l++) {
        int i = level_find(v, l, key, klen);
        if (i < 0)
            continue;
        apr_status_t rv = sst_get_hashed(v->ssts[i], key, klen, hash, pool, out);
        if (rv == KV_CORRUPT)
            db_report_corruption(v->db, v->mf.files[i].number, "sst", 0);
        if (rv != KV_NOTFOUND)
            return rv;
    }
    return KV_NOTFOUND;
}

apr_status_t version_get_live(version_t *v, const char *key, size_t klen,
                              uint64_t snap, apr_pool_t *pool, kv_ent_t *out)
{
    apr_status_t rv = version_get(v, key, klen, snap, pool, out);
    if (rv != APR_SUCCESS)
        return rv;
    if (out->type != ENT_PUT || (out->expire && out->expire <= ent_now()))
        return KV_NOTFOUND;
    return APR_SUCCESS;
}
