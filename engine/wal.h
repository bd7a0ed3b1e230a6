/* wal.h -- the write-ahead log: record framing, encoding of write batches
 * and the rotation record, and a scanner that stops at the first record
 * that is incomplete or fails its checksum.  Bytes: docs/FORMAT.md.
 * Which process may append, and when a tail may be truncated, is decided
 * by the caller (db.c), not here. */
#ifndef KV_WAL_H
#define KV_WAL_H

#include <stddef.h>
#include <stdint.h>
#include <apr_errno.h>
#include "entry.h"

#define WAL_HEADER 9              /* crc u32, payload length u32, type u8 */
#define WAL_MAX_PAYLOAD (1u << 30)

enum { WAL_BATCH = 1, WAL_ROTATE = 2 };
enum { WOP_DEL = 0, WOP_PUT = 1 };

/* A record image under construction: header room, then the payload.
 * Batches start with first_seq u64 and count u32 (filled at commit). */
typedef struct {
    char *buf;
    size_t len, cap;
    uint32_t count;       /* operations in a batch */
} wal_rec_t;

void wal_rec_init(wal_rec_t *r);
void wal_rec_free(wal_rec_t *r);
/* Start a batch record / append one operation.  APR_ENOMEM on failure. */
apr_status_t wal_rec_batch(wal_rec_t *r);
apr_status_t wal_rec_op(wal_rec_t *r, int op, const char *key, size_t klen,
                        const char *val, size_t vlen, uint64_t expire);
/* Turn the batch into a rotation record naming next_log. */
apr_status_t wal_rec_rotate(wal_rec_t *r, uint64_t next_log);
/* Stamp the first sequence number (batches) and the header checksum. */
void wal_rec_seal(wal_rec_t *r, uint64_t first_seq);

/* One decoded record, pointing into the scanned buffer. */
typedef struct {
    int type;
    const char *payload;
    size_t len;            /* payload bytes */
    uint64_t first_seq;    /* batch */
    uint32_t count;        /* batch */
    uint64_t next_log;     /* rotate */
} wal_view_t;

/* Decode the record at buf[0..avail).  Returns its total size (header +
 * payload) and fills *v, or 0 if the bytes do not hold a whole valid
 * record (torn, still being written, or damaged: the caller decides). */
size_t wal_decode(const char *buf, size_t avail, wal_view_t *v);
/* The same for records this process sealed itself and still holds in
 * memory (never bytes read back from a file): the checksum is not
 * recomputed, everything else is checked. */
size_t wal_decode_sealed(const char *buf, size_t avail, wal_view_t *v);

/* For bytes that wal_decode refused: 1 if they could be the start of a
 * record still being written or cut short by a crash (the length it
 * declares runs past the end of what is there), 0 if the record is all
 * there and so is damaged. */
int wal_is_torn(const char *buf, size_t avail);

/* Walk a batch's operations: call with *pos = 0 first; returns 1 and fills
 * *e (type, key, value, expire; seq = first_seq + index) until the end,
 * then 0.  -1 if the payload is malformed (its checksum held, so only a
 * writer bug could cause it; reported as corruption). */
int wal_batch_next(const wal_view_t *v, size_t *pos, uint32_t *index, kv_ent_t *e);

#endif
