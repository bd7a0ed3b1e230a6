/* compact.c -- leveled compaction: picking what to merge and merging it.
 * Level 0 holds flushed memtables (files may overlap); levels 1..6 each
 * hold disjoint files, each level ten times the previous.  Each level has
 * a score (L0: files / L0_TRIGGER; deeper: bytes / the level's size) and a
 * step works on the highest score of at least 1: it merges all of L0, or
 * one file of an oversized level, with the files they overlap one level
 * down.  Picking by score, not L0 first, keeps L1 near its size while
 * writes pour in (else every L0 merge rewrites an ever larger L1); writers
 * wait at a log rotation while L0 holds L0_STOP files (compact_l0_full),
 * so compaction debt stays bounded.  The caller holds the flush lock, so
 * this process is the only one changing the manifest. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "db_impl.h"
#include "fileio.h"
#include "filename.h"
#include "heap.h"

#define L0_TRIGGER 4
#define L0_STOP 12
#define MAX_INPUTS 4096

uint64_t compact_target_file_bytes(const kv_db_t *db)
{
    uint64_t t = db->opts.memtable_bytes / 2;
    if (t < (64u << 10))
        t = 64u << 10;
    if (t > (2u << 20))
        t = 2u << 20;
    return t;
}

int compact_l0_full(const manifest_t *m)
{
    int n = 0;
    for (int i = 0; i < m->nfiles; i++)
        n += m->files[i].level == 0;
    return n >= L0_STOP;
}

static uint64_t level_max_bytes(const kv_db_t *db, int level)
{
    uint64_t b = 10 * compact_target_file_bytes(db);
    for (int l = 1; l < level; l++)
        b *= 10;
    return b;
}

static int overlaps(const mf_file_t *f, const char *lo, size_t lolen,
                    const char *hi, size_t hilen)
{
    return key_cmp(f->largest, f->largest_len, lo, lolen) >= 0
        && key_cmp(f->smallest, f->smallest_len, hi, hilen) <= 0;
}

/* Could a level below out_level still hold an older version of key?  If
 * not, a tombstone (or an expired value) can be dropped outright. */
static int deeper_has(const manifest_t *m, int out_level, const char *key, size_t klen)
{
    for (int i = 0; i < m->nfiles; i++)
        if (m->files[i].level > out_level && overlaps(&m->files[i], key, klen, key, klen))
            return 1;
    return 0;
}

typedef struct {
    int n;
    int idx[MAX_INPUTS];     /* indices into the manifest's files */
} picks_t;

/* Choose the inputs of one compaction.  Returns the source level or -1. */
static int pick(kv_db_t *db, const manifest_t *m, picks_t *in)
{
    uint64_t bytes[KV_MAX_LEVELS] = { 0 };
    int count[KV_MAX_LEVELS] = { 0 };
    for (int i = 0; i < m->nfiles; i++) {
        bytes[m->files[i].level] += m->files[i].bytes;
        count[m->files[i].level]++;
    }
    int level = -1;
    double best = 1.0;
    if (count[0] >= L0_TRIGGER) {
        level = 0;
        best = (double)count[0] / L0_TRIGGER;
    }
    for (int l = 1; l < KV_MAX_LEVELS - 1; l++) {
        double score = (double)bytes[l] / (double)level_max_bytes(db, l);
        if (score >= 1.0 && score > best) {
            best = score;
            level = l;
        }
    }
    if (level < 0)
        return -1;
    in->n = 0;
    if (level == 0) {
        for (int i = 0; i < m->nfiles && in->n < MAX_INPUTS; i++)
            if (m->files[i].level == 0)
                in->idx[in->n++] = i;
        return 0;
    }
    /* Round robin through the level's key space (m is sorted by key). */
    int first = -1, chosen = -1;
    for (int i = 0; i < m->nfiles; i++) {
        if (m->files[i].level != level)
            continue;
        if (first < 0)
            first = i;
        if (chosen < 0 && (!db->cptr[level]
                           || key_cmp(m->files[i].smallest, m->files[i].smallest_len,
                                      db->cptr[level], db->cptr_len[level]) > 0))
            chosen = i;
    }
    if (chosen < 0)
        chosen = first;
    const mf_file_t *f = &m->files[chosen];
    char *c = malloc(f->largest_len ? f->largest_len : 1);
    if (c) {
        memcpy(c, f->largest, f->largest_len);
        free(db->cptr[level]);
        db->cptr[level] = c;
        db->cptr_len[level] = f->largest_len;
    }
    in->idx[in->n++] = chosen;
    return level;
}

typedef struct {
    sst_t *t;
    sst_iter_t *it;
} source_t;

/* The merge keeps its sources in a binary min-heap on their current
 * entries (key ascending, then newest first), so each output entry costs
 * O(log k) comparisons for k inputs, not O(k): an L0-to-L1 compaction may
 * merge dozens of files. */
typedef struct {
    source_t *src;
    int *h;            /* source indices; h[0] holds the smallest entry */
    int n;
} heap_t;

static int src_less(const void *ctx, int a, int b)
{
    const source_t *src = ctx;
    kv_ent_t x, y;
    sst_iter_entry(src[a].it, &x);
    sst_iter_entry(src[b].it, &y);
    return ent_cmp(x.key, x.klen, x.seq, y.key, y.klen, y.seq) < 0;
}

/* Advance the top source: back into place, or out of the heap when it
 * ends (its status says whether it ended in an error). */
static apr_status_t heap_next(heap_t *hp)
{
    sst_iter_t *it = hp->src[hp->h[0]].it;
    sst_iter_next(it);
    if (!sst_iter_valid(it)) {
        apr_status_t rv = sst_iter_status(it);
        if (rv)
            return rv;
        hp->h[0] = hp->h[--hp->n];
    }
    heap_sift_down(hp->h, hp->n, 0, src_less, hp->src);
    return APR_SUCCESS;
}

/* Finish the output being built and give it its final name. */
static apr_status_t seal_output(kv_db_t *db, sst_builder_t *b, uint64_t number,
                                int level, manifest_t *outs)
{
    char tmp[4200], path[4096];
    fn_numbered(path, sizeof(path), db->dir, number, "sst");
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    sst_meta_t meta;
    apr_status_t rv = sst_builder_finish(b, &meta);
    if (rv)
        return rv;
    if ((rv = fio_rename(tmp, path))) {
        fio_unlink(tmp);
        sst_meta_free(&meta);
        return rv;
    }
    mf_file_t f = { level, number, meta.file_bytes, meta.entries, meta.min_seq,
                    meta.max_seq, meta.smallest, meta.smallest_len,
                    meta.largest, meta.largest_len };
    rv = mf_add(outs, &f);
    sst_meta_free(&meta);
    return rv;
}

static apr_status_t merge(kv_db_t *db, manifest_t *m, const picks_t *in,
                          int out_level, manifest_t *outs)
{
    apr_status_t rv = APR_SUCCESS;
    source_t *src = calloc((size_t)in->n, sizeof(*src));
    if (!src)
        return APR_ENOMEM;
    for (int i = 0; i < in->n && rv == APR_SUCCESS; i++) {
        char path[4096];
        fn_numbered(path, sizeof(path), db->dir, m->files[in->idx[i]].number, "sst");
        if ((rv = sst_open(&src[i].t, path, m->files[in->idx[i]].number)) == APR_SUCCESS
            && (rv = sst_iter_new(&src[i].it, src[i].t)) == APR_SUCCESS)
            sst_iter_seek_first(src[i].it);
    }
    uint64_t target = compact_target_file_bytes(db), now = ent_now();
    sst_builder_t *b = NULL;
    uint64_t bnum = 0;
    char *kbuf = NULL;
    size_t kcap = 0;
    heap_t hp = { src, calloc((size_t)in->n + 1, sizeof(int)), 0 };
    if (rv == APR_SUCCESS && !hp.h)
        rv = APR_ENOMEM;
    for (int i = 0; rv == APR_SUCCESS && i < in->n; i++) {
        if (sst_iter_valid(src[i].it))
            hp.h[hp.n++] = i;
        else
            rv = sst_iter_status(src[i].it);
    }
    if (rv == APR_SUCCESS)
        heap_make(hp.h, hp.n, src_less, src);
    while (rv == APR_SUCCESS && hp.n > 0) {
        kv_ent_t e;
        sst_iter_entry(src[hp.h[0]].it, &e);
        int expired = e.type == ENT_PUT && e.expire && e.expire <= now;
        int keep = 1;
        if (e.type == ENT_DEL || expired) {
            if (!deeper_has(m, out_level, e.key, e.klen))
                keep = 0;
            else if (expired) {
                /* Still shadows older versions below: keep as a tombstone. */
                e.type = ENT_DEL;
                e.val = NULL;
                e.vlen = 0;
                e.expire = 0;
            }
        }
        if (keep) {
            if (!b) {
                char tmp[4096];
                bnum = m->next_sst++;
                fn_numbered(tmp, sizeof(tmp), db->dir, bnum, "sst");
                strcat(tmp, ".tmp");
                fio_unlink(tmp);
                if ((rv = sst_builder_open(&b, tmp, (int)db->opts.compression)))
                    break;
            }
            if ((rv = sst_builder_add(b, &e)))
                break;
        }
        /* Step past every version of this key.  e points into the best
         * source's block, which moving it may release: keep a copy. */
        if (e.klen > kcap) {
            char *nk = realloc(kbuf, e.klen);
            if (!nk) {
                rv = APR_ENOMEM;
                break;
            }
            kbuf = nk;
            kcap = e.klen;
        }
        memcpy(kbuf, e.key, e.klen);
        size_t klen = e.klen;
        while (rv == APR_SUCCESS && hp.n > 0) {
            kv_ent_t c;
            sst_iter_entry(src[hp.h[0]].it, &c);
            if (key_cmp(c.key, c.klen, kbuf, klen) != 0)
                break;
            rv = heap_next(&hp);
        }
        if (rv)
            break;
        if (b && sst_builder_bytes(b) >= target) {
            rv = seal_output(db, b, bnum, out_level, outs);
            b = NULL;
            /* A writer may be stalled on a sealed log: flush it now, into
             * our manifest, rather than after the whole compaction. */
            if (rv == APR_SUCCESS && flush_waiting(db, m))
                rv = flush_logs_into(db, m);
        }
    }
    if (b) {
        if (rv == APR_SUCCESS)
            rv = seal_output(db, b, bnum, out_level, outs);
        else
            sst_builder_abandon(b);
    }
    free(kbuf);
    free(hp.h);
    for (int i = 0; i < in->n; i++) {
        if (src[i].it)
            sst_iter_free(src[i].it);
        if (src[i].t)
            sst_unref(src[i].t);
    }
    free(src);
    return rv;
}

apr_status_t compact_once(kv_db_t *db, int *did)
{
    manifest_t m;
    *did = 0;
    apr_status_t rv = mf_read(db->dir, &m, NULL, NULL);
    if (rv)
        return rv;
    mf_sort(&m);
    picks_t *in = malloc(sizeof(*in));
    if (!in) {
        mf_free(&m);
        return APR_ENOMEM;
    }
    int level = pick(db, &m, in);
    if (level < 0) {
        free(in);
        mf_free(&m);
        return APR_SUCCESS;
    }
    int out_level = level + 1;
    /* The key range of the inputs, then the files it overlaps below. */
    const mf_file_t *f0 = &m.files[in->idx[0]];
    const char *lo = f0->smallest, *hi = f0->largest;
    size_t lolen = f0->smallest_len, hilen = f0->largest_len;
    for (int i = 1; i < in->n; i++) {
        const mf_file_t *f = &m.files[in->idx[i]];
        if (key_cmp(f->smallest, f->smallest_len, lo, lolen) < 0) {
            lo = f->smallest;
            lolen = f->smallest_len;
        }
        if (key_cmp(f->largest, f->largest_len, hi, hilen) > 0) {
            hi = f->largest;
            hilen = f->largest_len;
        }
    }
    int ninputs = in->n;
    for (int i = 0; i < m.nfiles && in->n < MAX_INPUTS; i++)
        if (m.files[i].level == out_level && overlaps(&m.files[i], lo, lolen, hi, hilen))
            in->idx[in->n++] = i;

    manifest_t outs;
    mf_init(&outs);
    if (level > 0 && ninputs == 1 && in->n == 1) {
        /* Nothing to merge with: move the file down a level. */
        m.files[in->idx[0]].level = out_level;
    }
    else {
        rv = merge(db, &m, in, out_level, &outs);
        if (rv) {
            /* Remove what this compaction wrote (and only that: flushes
             * made meanwhile are in the manifest already). */
            for (int i = 0; i < outs.nfiles; i++) {
                char path[4096];
                fn_numbered(path, sizeof(path), db->dir, outs.files[i].number, "sst");
                fio_unlink(path);
            }
            goto out;
        }
        uint64_t *gone = malloc(sizeof(uint64_t) * (size_t)in->n);
        if (!gone) {
            rv = APR_ENOMEM;
            goto out;
        }
        for (int i = 0; i < in->n; i++)
            gone[i] = m.files[in->idx[i]].number;
        for (int i = 0; i < in->n; i++)
            mf_remove(&m, gone[i]);
        for (int i = 0; i < outs.nfiles && rv == APR_SUCCESS; i++)
            rv = mf_add(&m, &outs.files[i]);
        if (rv == APR_SUCCESS)
            rv = fio_fsync_dir(db->dir);
        m.generation++;
        if (rv == APR_SUCCESS)
            rv = mf_write(db->dir, &m);
        if (rv == APR_SUCCESS) {
            /* Processes that still read them keep them open. */
            for (int i = 0; i < in->n; i++) {
                char path[4096];
                fn_numbered(path, sizeof(path), db->dir, gone[i], "sst");
                fio_unlink(path);
            }
        }
        free(gone);
        if (rv)
            goto out;
        STAT_ADD(db, compactions, 1);
        *did = 1;
        goto refresh;
    }
    m.generation++;
    if ((rv = mf_write(db->dir, &m)))
        goto out;
    *did = 1;
refresh:
    apr_thread_mutex_lock(db->state_mu);
    rv = catchup_refresh_manifest(db, 0);
    apr_thread_mutex_unlock(db->state_mu);
out:
    mf_free(&outs);
    mf_free(&m);
    free(in);
    return rv;
}
