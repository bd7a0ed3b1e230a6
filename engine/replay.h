/* replay.h -- reading a log file back: the one loop that walks its
 * records, used by catch-up (a process coming level with the published
 * end), the flush (a sealed log into an SST) and recovery (finding the
 * end after every process had gone).  It reads in bounded chunks and
 * hands each whole batch record to a callback; what a stop means is the
 * caller's call (replay never truncates). */
#ifndef KV_REPLAY_H
#define KV_REPLAY_H

#include <stddef.h>
#include <stdint.h>
#include <apr_errno.h>
#include "wal.h"

/* Called for each whole batch record, at [off, end) of the file. */
typedef apr_status_t (*replay_fn)(void *baton, const wal_view_t *v, uint64_t off, uint64_t end);

typedef struct {
    uint64_t end;        /* offset after the last record handed over */
    int rotated;         /* a rotation record starts at `end` */
    uint64_t next_log;   /* ... naming this log */
    int damaged;         /* a whole record at `end` fails its checks */
} replay_t;

/* A reusable read buffer (one per caller that replays often). */
typedef struct {
    char *buf;
    size_t cap;
} replay_buf_t;
void replay_buf_free(replay_buf_t *b);

/* Walk the records of fd from byte `from`.
 * to != REPLAY_TO_END: exactly [from, to), published bytes: anything but
 *   whole batch records there (a short file, a bad record, a rotation) is
 *   KV_CORRUPT.
 * to == REPLAY_TO_END: up to the file's end, stopping at a rotation
 *   record or at the first bytes that are not a whole record (r->damaged
 *   says whether they could be a torn tail); APR_SUCCESS either way.
 * fn may be NULL (only the stop is wanted).  A callback's error stops the
 * walk and is returned (r->end is then the
 * failing record's offset). */
#define REPLAY_TO_END UINT64_MAX
apr_status_t replay_log(int fd, uint64_t from, uint64_t to, replay_buf_t *b,
                        replay_fn fn, void *baton, replay_t *r);

#endif
