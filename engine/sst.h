/* sst.h -- sorted string tables: immutable files of sorted entries with an
 * index, a bloom filter and a checksum on every block.  The bytes are
 * described in docs/FORMAT.md.  A builder writes one file; a reader opens
 * one, verifies it and answers point lookups and ordered scans.
 * Damaged files give KV_CORRUPT, never a crash. */
#ifndef KV_SST_H
#define KV_SST_H

#include <stddef.h>
#include <stdint.h>
#include <apr_errno.h>
#include <apr_pools.h>
#include "entry.h"

#define SST_BLOCK_BYTES 4096
#define SST_BLOOM_BITS 10

/* What a finished file holds; smallest/largest are malloc'd copies. */
typedef struct {
    uint64_t entries;
    uint64_t file_bytes;
    uint64_t min_seq, max_seq;
    char *smallest; size_t smallest_len;
    char *largest;  size_t largest_len;
} sst_meta_t;
void sst_meta_free(sst_meta_t *m);

/* ---- writing ---- */
typedef struct sst_builder sst_builder_t;
/* Create path (O_EXCL; the caller picks a temporary name and renames).
 * codec: CODEC_NONE, CODEC_LZ4 or CODEC_ZSTD (compress.h) for data blocks. */
apr_status_t sst_builder_open(sst_builder_t **b, const char *path, int codec);
/* Entries must come in strictly increasing key order (one version per key). */
apr_status_t sst_builder_add(sst_builder_t *b, const kv_ent_t *e);
uint64_t sst_builder_bytes(const sst_builder_t *b);  /* estimated file size so far */
uint64_t sst_builder_entries(const sst_builder_t *b);
/* Write the index, bloom and footer, fdatasync and close.  Frees b. */
apr_status_t sst_builder_finish(sst_builder_t *b, sst_meta_t *meta);
/* Close and unlink the file.  Frees b. */
void sst_builder_abandon(sst_builder_t *b);

/* ---- reading ---- */
typedef struct sst sst_t;
/* Open and verify header, footer, index and bloom.  Refcount 1. */
apr_status_t sst_open(sst_t **t, const char *path, uint64_t number);
/* Open the file, then try to load it as sst_open does; if that fails
 * (*load_rv says why), the handle still holds the open file and each use
 * tries the load again and answers its error until it succeeds.  So a
 * store can take a new file into its view while reads of it fail. */
apr_status_t sst_open_lazy(sst_t **t, const char *path, uint64_t number,
                           uint64_t map_limit, apr_status_t *load_rv);
/* map_limit: the file's data blocks are read through a read-only mapping
 * if that keeps every mapped SST of this process within map_limit bytes
 * (0: never) -- tried when it loads, and by reads while it is not mapped,
 * so room freed later is used; otherwise with pread.  sst_open never
 * maps. */
int sst_mapped(const sst_t *t);
uint64_t sst_mapped_bytes(void);   /* this process's mapped SST bytes */
uint64_t sst_private_bytes(void);  /* its own memory that loaded SSTs hold */
void sst_ref(sst_t *t);
void sst_unref(sst_t *t);          /* closes the file at the last reference */
uint64_t sst_number(const sst_t *t);
uint64_t sst_file_bytes(const sst_t *t);
uint64_t sst_entries(const sst_t *t);

/* Point lookup.  APR_SUCCESS: *out holds the entry (tombstones too) with
 * key and value copied into pool.  KV_NOTFOUND: not in this file.
 * KV_CORRUPT or an I/O code otherwise. */
apr_status_t sst_get(sst_t *t, const char *key, size_t klen,
                     apr_pool_t *pool, kv_ent_t *out);
/* The same with the key's bloom_hash computed by the caller, once for
 * all the files a lookup probes. */
apr_status_t sst_get_hashed(sst_t *t, const char *key, size_t klen, uint32_t hash,
                            apr_pool_t *pool, kv_ent_t *out);

/* Ordered scan.  Entries returned by sst_iter_entry stay valid until the
 * iterator moves.  An error stops the iterator (valid = 0) and is kept
 * in sst_iter_status. */
typedef struct sst_iter sst_iter_t;
apr_status_t sst_iter_new(sst_iter_t **it, sst_t *t);  /* holds a reference to t */
void sst_iter_free(sst_iter_t *it);
void sst_iter_seek_first(sst_iter_t *it);
void sst_iter_seek(sst_iter_t *it, const char *key, size_t klen); /* first key >= key */
int sst_iter_valid(const sst_iter_t *it);
void sst_iter_next(sst_iter_t *it);
void sst_iter_entry(const sst_iter_t *it, kv_ent_t *out);
apr_status_t sst_iter_status(const sst_iter_t *it);

/* Read every block and check every checksum (kvlsm-check). */
apr_status_t sst_verify(sst_t *t);

#endif
