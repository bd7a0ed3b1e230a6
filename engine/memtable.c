/* memtable.c -- the skiplist memtable (memtable.h): nodes live in an
 * arena of chunks freed together when the last reference goes.  Chunks
 * and the bloom filter are mapped pages of their own, not malloc's: a
 * memtable is filled by whichever threads write, and malloc would leave
 * its megabytes spread over those threads' arenas after it is freed
 * (an Apache child with 32 threads kept 20-30 MiB so); munmap gives them
 * back at once.
 * One writer, lock-free readers: a node is fully built before it is
 * linked, links are published with release stores and read with acquire
 * loads, so a reader sees either the old list or the new node whole. */
#include <stdlib.h>
#include <sys/mman.h>
#include "memtable.h"

#define MAX_HEIGHT 12
#define CHUNK_BYTES (1u << 20)

typedef struct node {
    /* What a search reads, together: the prefix, the key right behind
     * this header, then the tower of `height` next pointers.  A 16-byte
     * key and a short tower fit one cache line, so a step of a descent
     * costs one miss, not two. */
    uint64_t prefix;          /* first 8 key bytes, big-endian: cheap compares */
    uint32_t klen;
    uint8_t type, height;
    uint16_t unused;
    /* Then the key, the tower (aligned), the node's cold part and the value. */
} node_t;

typedef struct {
    uint64_t seq, expire;     /* read only by compares of equal keys, and fill */
    uint32_t vlen;
    uint32_t unused;
} node_cold_t;

typedef struct chunk {
    struct chunk *prev;
    size_t used, cap;
    size_t mapped;            /* bytes of the mapping, this header included */
    char data[];
} chunk_t;

/* Zeroed pages of our own, or NULL.  populate: filled up front, for a
 * chunk after a memtable's first: such a table is being written, every
 * page of the chunk is written within the next few thousand inserts, and
 * one system call that fills them costs far less than a fault per page
 * (on this VM a fault is a trap to the hypervisor: 5% of a writer's
 * time).  A table's first chunk and its filter fill as they are touched,
 * so an idle process's empty table holds next to nothing. */
static void *pages_alloc(size_t n, int populate)
{
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | (populate ? MAP_POPULATE : 0), -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void pages_free(void *p, size_t n)
{
    if (p)
        munmap(p, n);
}

struct memtable {
    int refs;
    uint64_t *bloom;          /* bits set per key before its node is linked */
    uint64_t bloom_mask;      /* bits - 1 (a power of two) */
    int height;               /* atomic: highest level in use */
    uint64_t rnd;
    size_t bytes;             /* atomic */
    uint64_t count;           /* atomic */
    uint64_t max_seq;         /* atomic: newest entry */
    chunk_t *chunks;
    node_t *head;
    /* The last node of each level (writer only): an entry that sorts after
     * every other -- keys written in order, or a log replayed -- is
     * linked there without a search from the top. */
    node_t *tail[MAX_HEIGHT];
};

static void *arena_alloc(memtable_t *mt, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    chunk_t *c = mt->chunks;
    if (!c || c->cap - c->used < n) {
        /* Big entries get a chunk of their own so little space is lost. */
        size_t cap = n > CHUNK_BYTES / 4 ? n : CHUNK_BYTES - sizeof(chunk_t);
        size_t mapped = sizeof(chunk_t) + cap;
        chunk_t *nc = pages_alloc(mapped, c != NULL);
        if (!nc)
            return NULL;
        nc->used = 0;
        nc->cap = cap;
        nc->mapped = mapped;
        if (n > CHUNK_BYTES / 4 && c) {
            /* Keep filling the current small chunk: slot the big one behind it. */
            nc->prev = c->prev;
            c->prev = nc;
        }
        else {
            nc->prev = c;
            mt->chunks = nc;
        }
        c = nc;
    }
    void *p = c->data + c->used;
    c->used += n;
    __atomic_fetch_add(&mt->bytes, n, __ATOMIC_RELAXED);
    return p;
}

static char *node_key(node_t *n)
{
    return (char *)(n + 1);
}

static size_t tower_off(size_t klen)
{
    return (sizeof(node_t) + klen + 7) & ~(size_t)7;
}

static node_t **node_next(node_t *n)
{
    return (node_t **)((char *)n + tower_off(n->klen));
}

static node_cold_t *node_cold(node_t *n)
{
    return (node_cold_t *)(node_next(n) + n->height);
}

static char *node_val(node_t *n)
{
    return (char *)(node_cold(n) + 1);
}

static size_t node_bytes(size_t klen, int height, size_t vlen)
{
    return tower_off(klen) + (size_t)height * sizeof(node_t *) + sizeof(node_cold_t) + vlen;
}

/* A bloom filter over the table's keys makes the common case of a read,
 * a key the memtable does not hold, cost a few bit tests instead of a
 * skiplist descent. */
#define MT_BLOOM_PROBES 4

memtable_t *mt_create(void)
{
    return mt_create_sized(4u << 20);
}

memtable_t *mt_create_sized(size_t capacity_bytes)
{
    memtable_t *mt = calloc(1, sizeof(*mt));
    if (!mt)
        return NULL;
    /* ~16 bits for each 64-byte entry the capacity could hold. */
    size_t bits = 1u << 16;
    while (bits < capacity_bytes / 4 && bits < ((size_t)1 << 27))
        bits <<= 1;
    mt->bloom = pages_alloc(bits / 8, 0);
    if (!mt->bloom) {
        free(mt);
        return NULL;
    }
    mt->bloom_mask = bits - 1;
    mt->refs = 1;
    mt->height = 1;
    mt->rnd = 0x9E3779B97F4A7C15ULL ^ (uint64_t)(uintptr_t)mt;
    mt->head = arena_alloc(mt, node_bytes(0, MAX_HEIGHT, 0));
    if (!mt->head) {
        pages_free(mt->bloom, bits / 8);
        free(mt);
        return NULL;
    }
    memset(mt->head, 0, node_bytes(0, MAX_HEIGHT, 0));
    mt->head->height = MAX_HEIGHT;
    return mt;
}

void mt_ref(memtable_t *mt)
{
    __atomic_fetch_add(&mt->refs, 1, __ATOMIC_RELAXED);
}

void mt_unref(memtable_t *mt)
{
    if (!mt || __atomic_sub_fetch(&mt->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    chunk_t *c = mt->chunks;
    while (c) {
        chunk_t *p = c->prev;
        pages_free(c, c->mapped);
        c = p;
    }
    pages_free(mt->bloom, (mt->bloom_mask + 1) / 8);
    free(mt);
}

size_t mt_bytes(const memtable_t *mt)
{
    return __atomic_load_n(&mt->bytes, __ATOMIC_RELAXED);
}

uint64_t mt_max_seq(const memtable_t *mt)
{
    return __atomic_load_n(&mt->max_seq, __ATOMIC_RELAXED);
}

uint64_t mt_count(const memtable_t *mt)
{
    return __atomic_load_n(&mt->count, __ATOMIC_RELAXED);
}

static node_t *next_of(node_t *n, int level)
{
    return __atomic_load_n(&node_next(n)[level], __ATOMIC_ACQUIRE);
}

/* Compare node n with (key, seq) in internal order; pfx is key_prefix_at(key, klen, 0). */
static int node_cmp(node_t *n, const char *key, size_t klen, uint64_t pfx, uint64_t seq)
{
    if (n->prefix != pfx)
        return n->prefix < pfx ? -1 : 1;
    int c = key_cmp(node_key(n), n->klen, key, klen);
    if (c)
        return c;
    uint64_t nseq = node_cold(n)->seq;   /* newest version first */
    return nseq > seq ? -1 : nseq < seq ? 1 : 0;
}

/* First node >= (key, seq); fills prev[] for an insert if asked. */
static node_t *find_ge(memtable_t *mt, const char *key, size_t klen, uint64_t seq,
                       node_t **prev)
{
    uint64_t pfx = key_prefix_at(key, klen, 0);
    node_t *x = mt->head, *ge = NULL;   /* ge: a node already found >= key */
    int level = __atomic_load_n(&mt->height, __ATOMIC_ACQUIRE) - 1;
    for (;;) {
        node_t *nx = next_of(x, level);
        if (nx && nx != ge && node_cmp(nx, key, klen, pfx, seq) < 0) {
            x = nx;
            continue;
        }
        if (prev)
            prev[level] = x;
        if (level == 0)
            return nx;
        ge = nx;
        level--;
    }
}

static int random_height(memtable_t *mt)
{
    int h = 1;
    while (h < MAX_HEIGHT) {
        mt->rnd ^= mt->rnd << 13;
        mt->rnd ^= mt->rnd >> 7;
        mt->rnd ^= mt->rnd << 17;
        if ((mt->rnd & 3) != 0)
            break;
        h++;
    }
    return h;
}

/* The filter's own hash, eight bytes at a time (it is never stored, so
 * it need not match the SST filters' bloom_hash). */
static uint64_t mt_hash(const char *key, size_t klen)
{
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)klen * 0xC2B2AE3D27D4EB4FULL);
    size_t i = 0;
    for (; i + 8 <= klen; i += 8) {
        uint64_t w;
        memcpy(&w, key + i, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDULL;
        h ^= h >> 29;
    }
    if (i < klen) {
        uint64_t w = 0;
        memcpy(&w, key + i, klen - i);
        h = (h ^ w) * 0xFF51AFD7ED558CCDULL;
    }
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ULL;
    h ^= h >> 33;
    return h;
}

/* A key's MT_BLOOM_PROBES bits all lie in one 64-bit word: one cache
 * miss per insert or lookup instead of one per bit. */
static uint64_t *bloom_word(const memtable_t *mt, const char *key, size_t klen, uint64_t *bits)
{
    uint64_t h = mt_hash(key, klen), m = 0;
    for (int i = 0; i < MT_BLOOM_PROBES; i++)
        m |= (uint64_t)1 << ((h >> (6 * i)) & 63);
    *bits = m;
    return &mt->bloom[(h >> 32) & (mt->bloom_mask >> 6)];
}

apr_status_t mt_add(memtable_t *mt, const kv_ent_t *e)
{
    node_t *prev[MAX_HEIGHT];
    int h = random_height(mt);
    size_t vlen = e->type == ENT_PUT ? e->vlen : 0;
    node_t *n = arena_alloc(mt, node_bytes(e->klen, h, vlen));
    if (!n)
        return APR_ENOMEM;
    n->klen = (uint32_t)e->klen;
    n->type = e->type;
    n->height = (uint8_t)h;
    node_cold_t *cold = node_cold(n);
    cold->seq = e->seq;
    cold->expire = e->expire;
    cold->vlen = (uint32_t)vlen;
    memcpy(node_key(n), e->key, e->klen);
    if (vlen)
        memcpy(node_val(n), e->val, vlen);
    n->prefix = key_prefix_at(e->key, e->klen, 0);
    uint64_t bits, *word = bloom_word(mt, e->key, e->klen, &bits);
    __atomic_fetch_or(word, bits, __ATOMIC_RELAXED);
    int cur = __atomic_load_n(&mt->height, __ATOMIC_RELAXED);
    node_t *last = mt->tail[0];
    if (last && node_cmp(last, e->key, e->klen, n->prefix, e->seq) < 0) {
        for (int i = 0; i < cur; i++)
            prev[i] = mt->tail[i] ? mt->tail[i] : mt->head;
    }
    else
        find_ge(mt, e->key, e->klen, e->seq, prev);
    for (int i = cur; i < h; i++)
        prev[i] = mt->head;
    for (int i = 0; i < h; i++) {
        /* The node's own link first (nobody sees it yet), then publish. */
        __atomic_store_n(&node_next(n)[i], next_of(prev[i], i), __ATOMIC_RELAXED);
        __atomic_store_n(&node_next(prev[i])[i], n, __ATOMIC_RELEASE);
        if (!node_next(n)[i])
            mt->tail[i] = n;
    }
    if (h > cur)
        __atomic_store_n(&mt->height, h, __ATOMIC_RELEASE);
    __atomic_fetch_add(&mt->count, 1, __ATOMIC_RELAXED);
    if (e->seq > __atomic_load_n(&mt->max_seq, __ATOMIC_RELAXED))
        __atomic_store_n(&mt->max_seq, e->seq, __ATOMIC_RELAXED);
    return APR_SUCCESS;
}

static void fill(node_t *n, kv_ent_t *out)
{
    out->key = node_key(n);
    out->klen = n->klen;
    out->val = n->type == ENT_PUT ? node_val(n) : NULL;
    node_cold_t *cold = node_cold(n);
    out->vlen = cold->vlen;
    out->seq = cold->seq;
    out->expire = cold->expire;
    out->type = n->type;
}

int mt_get(memtable_t *mt, const char *key, size_t klen, uint64_t max_seq, kv_ent_t *out)
{
    /* The bits were set before the node was published (release), and the
     * caller's snapshot was read with acquire, so a visible key is never
     * missed. */
    uint64_t bits, *word = bloom_word(mt, key, klen, &bits);
    if ((__atomic_load_n(word, __ATOMIC_RELAXED) & bits) != bits)
        return 0;
    node_t *n = find_ge(mt, key, klen, max_seq, NULL);
    if (!n || key_cmp(node_key(n), n->klen, key, klen) != 0)
        return 0;
    fill(n, out);
    return 1;
}

void mt_iter_init(mt_iter_t *it, memtable_t *mt)
{
    it->mt = mt;
    it->node = NULL;
}

void mt_iter_seek_first(mt_iter_t *it)
{
    it->node = next_of(it->mt->head, 0);
}

void mt_iter_seek(mt_iter_t *it, const char *key, size_t klen)
{
    it->node = find_ge(it->mt, key, klen, UINT64_MAX, NULL);
}

int mt_iter_valid(const mt_iter_t *it)
{
    return it->node != NULL;
}

void mt_iter_next(mt_iter_t *it)
{
    it->node = next_of(it->node, 0);
}

void mt_iter_entry(const mt_iter_t *it, kv_ent_t *out)
{
    fill(it->node, out);
}
