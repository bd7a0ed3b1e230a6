/* iter.c -- ordered iteration over one snapshot: a merge of the active
 * and sealed memtables, each L0 file and one concatenating cursor per
 * deeper level, yielding the newest visible version of each key and
 * skipping tombstones and expired values.  The sources sit in a min-heap
 * on their current entries (key ascending, newest first), so a step
 * usually costs a comparison or two, not a pass over every source. */
#include <stdlib.h>
#include "db_impl.h"
#include "heap.h"

enum { SRC_MT, SRC_SST, SRC_LEVEL };

typedef struct {
    int kind;
    mt_iter_t mt;
    sst_iter_t *sst;      /* SRC_SST, and SRC_LEVEL's current file */
    int level, file;      /* SRC_LEVEL: level and index of its file */
    int valid;            /* has an entry: cur (refreshed after each move) */
    kv_ent_t cur;
} src_t;

struct kv_iter_t {
    kv_db_t *db;
    apr_pool_t *pool;
    version_t *v;
    uint64_t snap, now;
    int n;
    src_t *src;
    int *heap;            /* indices of the sources that have an entry */
    int hn;
    int pending;          /* sources may still stand on the key last returned */
    int valid;
    uint64_t budget;      /* keys a seek and the moves after it may pass; 0: no bound */
    uint64_t walked;      /* keys passed since the last seek, live or not */
    int exhausted;        /* a move stopped because walked reached budget */
    apr_status_t status;
    char *key;            /* the current key, copied out of its source */
    const char *val;      /* the value, in its source (valid until a move) */
    size_t klen, vlen, kcap;
    uint64_t seq, expire;
};

static apr_status_t level_open_file(kv_iter_t *it, src_t *s, int file)
{
    if (s->sst) {
        sst_iter_free(s->sst);
        s->sst = NULL;
    }
    s->file = file;
    if (file >= it->v->level_start[s->level + 1])
        return APR_SUCCESS;
    return sst_iter_new(&s->sst, it->v->ssts[file]);
}

static int src_valid(const src_t *s)
{
    if (s->kind == SRC_MT)
        return mt_iter_valid(&s->mt);
    return s->sst && sst_iter_valid(s->sst);
}

static void src_entry(const src_t *s, kv_ent_t *e)
{
    if (s->kind == SRC_MT)
        mt_iter_entry(&s->mt, e);
    else
        sst_iter_entry(s->sst, e);
}

/* After a move: skip versions newer than the snapshot, and roll a level
 * cursor onto its next file when one ends. */
static apr_status_t src_settle(kv_iter_t *it, src_t *s)
{
    apr_status_t rv = APR_SUCCESS;
    if (s->kind == SRC_MT) {
        kv_ent_t e;
        while (mt_iter_valid(&s->mt)) {
            mt_iter_entry(&s->mt, &e);
            if (e.seq <= it->snap)
                break;
            mt_iter_next(&s->mt);
        }
    }
    else {
        while (s->sst && !sst_iter_valid(s->sst)) {
            rv = sst_iter_status(s->sst);
            if (rv || s->kind == SRC_SST)
                break;
            if ((rv = level_open_file(it, s, s->file + 1)))
                break;
            if (s->sst)
                sst_iter_seek_first(s->sst);
        }
    }
    /* The merge compares sources many times per move: keep the entry. */
    s->valid = rv == APR_SUCCESS && src_valid(s);
    if (s->valid)
        src_entry(s, &s->cur);
    return rv;
}

static apr_status_t src_seek(kv_iter_t *it, src_t *s, const char *key, size_t klen)
{
    if (s->kind == SRC_MT) {
        if (key)
            mt_iter_seek(&s->mt, key, klen);
        else
            mt_iter_seek_first(&s->mt);
    }
    else if (s->kind == SRC_SST) {
        if (key)
            sst_iter_seek(s->sst, key, klen);
        else
            sst_iter_seek_first(s->sst);
    }
    else {
        /* First file whose largest key is >= key. */
        int lo = it->v->level_start[s->level], hi = it->v->level_start[s->level + 1];
        while (key && lo < hi) {
            int mid = lo + (hi - lo) / 2;
            const mf_file_t *f = &it->v->mf.files[mid];
            if (key_cmp(f->largest, f->largest_len, key, klen) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        apr_status_t rv = level_open_file(it, s, lo);
        if (rv)
            return rv;
        if (s->sst) {
            if (key)
                sst_iter_seek(s->sst, key, klen);
            else
                sst_iter_seek_first(s->sst);
        }
    }
    return src_settle(it, s);
}

static apr_status_t src_next(kv_iter_t *it, src_t *s)
{
    if (s->kind == SRC_MT)
        mt_iter_next(&s->mt);
    else
        sst_iter_next(s->sst);
    return src_settle(it, s);
}

static apr_status_t copy_to(char **buf, size_t *cap, const char *p, size_t n)
{
    if (n + 1 > *cap) {
        size_t c = *cap ? *cap : 64;
        while (c < n + 1)
            c *= 2;
        char *b = realloc(*buf, c);
        if (!b)
            return APR_ENOMEM;
        *buf = b;
        *cap = c;
    }
    if (n)
        memcpy(*buf, p, n);
    (*buf)[n] = '\0';
    return APR_SUCCESS;
}

static int src_less(const void *ctx, int a, int b)
{
    const src_t *src = ctx;
    const kv_ent_t *x = &src[a].cur, *y = &src[b].cur;
    return ent_cmp(x->key, x->klen, x->seq, y->key, y->klen, y->seq) < 0;
}

static void heap_build(kv_iter_t *it)
{
    it->hn = 0;
    for (int i = 0; i < it->n; i++)
        if (it->src[i].valid)
            it->heap[it->hn++] = i;
    heap_make(it->heap, it->hn, src_less, it->src);
}

/* Move the sources standing on the key last returned past all its
 * versions.  Done lazily, at the next move, so the value can stay in its
 * source.  Those sources are at the top of the heap: it holds no key
 * smaller than the one returned. */
static apr_status_t skip_current(kv_iter_t *it)
{
    while (it->hn) {
        src_t *s = &it->src[it->heap[0]];
        if (key_cmp(s->cur.key, s->cur.klen, it->key, it->klen) != 0)
            break;
        apr_status_t rv = src_next(it, s);
        if (rv)
            return rv;
        if (!s->valid)
            it->heap[0] = it->heap[--it->hn];
        heap_sift_down(it->heap, it->hn, 0, src_less, it->src);
    }
    return APR_SUCCESS;
}

/* Position on the next live key at or after where the sources stand, or
 * stop, with it->key still the last key passed, once the budget is spent. */
static apr_status_t find_next(kv_iter_t *it)
{
    it->valid = 0;
    for (;;) {
        if (it->pending) {
            apr_status_t rv = skip_current(it);
            if (rv)
                return rv;
            it->pending = 0;
        }
        if (!it->hn)
            return APR_SUCCESS;
        if (it->budget && it->walked >= it->budget) {
            it->exhausted = 1;
            return APR_SUCCESS;
        }
        it->walked++;
        const kv_ent_t *e = &it->src[it->heap[0]].cur;
        apr_status_t rv = copy_to(&it->key, &it->kcap, e->key, e->klen);
        if (rv)
            return rv;
        it->klen = e->klen;
        it->val = e->val;
        it->vlen = e->vlen;
        it->seq = e->seq;
        it->expire = e->expire;
        it->pending = 1;
        if (e->type == ENT_PUT && !(e->expire && e->expire <= it->now)) {
            it->valid = 1;
            return APR_SUCCESS;
        }
    }
}

static apr_status_t iter_cleanup(void *data)
{
    kv_iter_t *it = data;
    for (int i = 0; i < it->n; i++)
        if (it->src[i].sst)
            sst_iter_free(it->src[i].sst);
    free(it->src);
    free(it->heap);
    free(it->key);
    if (it->v)
        version_unref(it->v);
    it->src = NULL;
    it->heap = NULL;
    it->key = NULL;
    it->val = NULL;
    it->v = NULL;
    it->n = 0;
    return APR_SUCCESS;
}

apr_status_t kv_iter_open(kv_iter_t **itp, kv_db_t *db, apr_pool_t *pool)
{
    *itp = NULL;   /* so a caller may kv_iter_close whatever happened */
    if (db->closed)
        return KV_CLOSED;
    apr_status_t rv = catchup_if_behind(db);
    if (rv)
        return rv;
    kv_iter_t *it = apr_pcalloc(pool, sizeof(*it));
    it->db = db;
    it->pool = pool;
    it->now = ent_now();
    it->v = version_acquire(db, &it->snap);
    apr_pool_cleanup_register(pool, it, iter_cleanup, apr_pool_cleanup_null);
    version_t *v = it->v;
    int cap = 1 + v->nimm + v->mf.nfiles + KV_MAX_LEVELS;
    if (!(it->src = calloc((size_t)cap, sizeof(src_t)))
        || !(it->heap = calloc((size_t)cap, sizeof(int)))) {
        rv = APR_ENOMEM;
        goto fail;
    }
    it->src[it->n].kind = SRC_MT;
    mt_iter_init(&it->src[it->n++].mt, v->mem);
    for (int i = 0; i < v->nimm; i++) {
        it->src[it->n].kind = SRC_MT;
        mt_iter_init(&it->src[it->n++].mt, v->imm[i]);
    }
    for (int i = v->level_start[0]; i < v->level_start[1]; i++) {
        src_t *s = &it->src[it->n++];
        s->kind = SRC_SST;
        if ((rv = sst_iter_new(&s->sst, v->ssts[i])))
            goto fail;
    }
    for (int l = 1; l < KV_MAX_LEVELS; l++) {
        if (v->level_start[l] == v->level_start[l + 1])
            continue;
        src_t *s = &it->src[it->n++];
        s->kind = SRC_LEVEL;
        s->level = l;
        s->file = v->level_start[l];
    }
    *itp = it;
    return APR_SUCCESS;
fail:
    apr_pool_cleanup_run(pool, it, iter_cleanup);
    return rv;
}

apr_status_t kv_iter_seek(kv_iter_t *it, const void *key, apr_size_t klen)
{
    it->valid = 0;
    if (it->status)
        return it->status;
    for (int i = 0; i < it->n; i++) {
        apr_status_t rv = src_seek(it, &it->src[i], key, klen);
        if (rv)
            return it->status = rv;
    }
    heap_build(it);
    it->pending = 0;
    it->walked = 0;
    it->exhausted = 0;
    return it->status = find_next(it);
}

void kv_iter_set_budget(kv_iter_t *it, apr_uint64_t max_keys)
{
    it->budget = max_keys;
}

int kv_iter_exhausted(const kv_iter_t *it)
{
    return it->exhausted && !it->status;
}

int kv_iter_valid(const kv_iter_t *it)
{
    return it->valid && !it->status;
}

apr_status_t kv_iter_next(kv_iter_t *it)
{
    if (!kv_iter_valid(it))
        return it->status;
    return it->status = find_next(it);
}

void kv_iter_key(const kv_iter_t *it, const char **key, apr_size_t *klen)
{
    *key = it->key;
    *klen = it->klen;
}

void kv_iter_value(const kv_iter_t *it, kv_value_t *out)
{
    out->data = it->val ? it->val : "";
    out->len = it->vlen;
    out->seq = it->seq;
    out->expire_at = (apr_int64_t)it->expire;
}

apr_status_t kv_iter_status(const kv_iter_t *it)
{
    return it->status;
}

void kv_iter_close(kv_iter_t *it)
{
    if (it)
        apr_pool_cleanup_run(it->pool, it, iter_cleanup);
}
