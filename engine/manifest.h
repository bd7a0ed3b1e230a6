/* manifest.h -- the MANIFEST file: which SSTs are live and on which level,
 * the first log not yet flushed, the next SST number and the last
 * sequence number in SSTs.  It is only ever replaced whole (temporary
 * file, fsync, rename, directory fsync), by the holder of the flush lock,
 * so a crash leaves either the old or the new one.  Bytes: docs/FORMAT.md. */
#ifndef KV_MANIFEST_H
#define KV_MANIFEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <apr_errno.h>

typedef struct {
    int level;
    uint64_t number, bytes, entries, min_seq, max_seq;
    char *smallest; size_t smallest_len;   /* malloc'd */
    char *largest;  size_t largest_len;
} mf_file_t;

typedef struct {
    uint64_t generation;
    uint64_t log_start;   /* logs below this number are in SSTs */
    uint64_t next_sst;
    uint64_t last_seq;
    int nfiles;
    mf_file_t *files;     /* malloc'd; order: level, then key (L0: by number) */
} manifest_t;

void mf_init(manifest_t *m);
void mf_free(manifest_t *m);
/* Deep copy; APR_ENOMEM on failure. */
apr_status_t mf_copy(manifest_t *dst, const manifest_t *src);
/* Append a copy of f (keys copied). */
apr_status_t mf_add(manifest_t *m, const mf_file_t *f);
/* Remove the file with this number, if listed. */
void mf_remove(manifest_t *m, uint64_t number);
/* Sort files by level, then L0 by number and deeper levels by smallest key. */
void mf_sort(manifest_t *m);

/* Read dir/MANIFEST.  *ino gets its inode (the cheap identity check);
 * if fd is not NULL the file stays open there (the caller closes it).
 * APR_ENOENT if there is none, KV_CORRUPT if it fails its checks. */
apr_status_t mf_read(const char *dir, manifest_t *m, ino_t *ino, int *fd);
/* Replace dir/MANIFEST atomically and durably. */
apr_status_t mf_write(const char *dir, const manifest_t *m);

#endif
