/* memtable.h -- the in-memory sorted table: a skiplist in an arena.
 *
 * One writer at a time (the caller serialises mt_add), any number of
 * concurrent readers without locks: a node is fully built before it is
 * linked with release stores, and readers follow links with acquire loads.
 * A memtable is reference counted; it frees its arena when the last
 * reference goes. */
#ifndef KV_MEMTABLE_H
#define KV_MEMTABLE_H

#include <stddef.h>
#include <stdint.h>
#include <apr_errno.h>
#include "entry.h"

typedef struct memtable memtable_t;

memtable_t *mt_create(void);          /* refcount 1; NULL if out of memory */
/* Sized for about capacity_bytes of entries (its key filter scales). */
memtable_t *mt_create_sized(size_t capacity_bytes);
void mt_ref(memtable_t *mt);
void mt_unref(memtable_t *mt);

/* Insert a copy of e (key, value, seq, expire, type).  Single writer.
 * APR_ENOMEM if memory runs out (the table is unchanged then). */
apr_status_t mt_add(memtable_t *mt, const kv_ent_t *e);

/* Newest version of key with seq <= max_seq (tombstones included).
 * Returns 1 and fills *out (pointers into the arena, valid while the
 * caller holds a reference), or 0 if the table has no such version. */
int mt_get(memtable_t *mt, const char *key, size_t klen, uint64_t max_seq,
           kv_ent_t *out);

size_t mt_bytes(const memtable_t *mt);     /* arena bytes in use */
uint64_t mt_count(const memtable_t *mt);   /* entries */
uint64_t mt_max_seq(const memtable_t *mt); /* newest entry's sequence number */

/* Iterator over every version in internal order (entry.h).  Holds no
 * reference: the caller keeps the memtable alive. */
typedef struct { memtable_t *mt; void *node; } mt_iter_t;
void mt_iter_init(mt_iter_t *it, memtable_t *mt);
void mt_iter_seek_first(mt_iter_t *it);
void mt_iter_seek(mt_iter_t *it, const char *key, size_t klen); /* first entry with key >= key */
int mt_iter_valid(const mt_iter_t *it);
void mt_iter_next(mt_iter_t *it);
void mt_iter_entry(const mt_iter_t *it, kv_ent_t *out);

#endif
