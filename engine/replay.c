/* replay.c -- the log-reading loop (replay.h). */
#include <stdlib.h>
#include "replay.h"
#include "coding.h"
#include "fileio.h"
#include "kvlsm.h"

#define CHUNK ((size_t)1 << 20)

void replay_buf_free(replay_buf_t *b)
{
    free(b->buf);
    b->buf = NULL;
    b->cap = 0;
}

static apr_status_t reserve(replay_buf_t *b, size_t n)
{
    if (n <= b->cap)
        return APR_SUCCESS;
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < n)
        cap *= 2;
    char *nb = realloc(b->buf, cap);
    if (!nb)
        return APR_ENOMEM;
    b->buf = nb;
    b->cap = cap;
    return APR_SUCCESS;
}

apr_status_t replay_log(int fd, uint64_t from, uint64_t to, replay_buf_t *b,
                        replay_fn fn, void *baton, replay_t *r)
{
    int exact = to != REPLAY_TO_END;
    uint64_t limit = to;
    apr_status_t rv;
    r->end = from;
    r->rotated = 0;
    r->next_log = 0;
    r->damaged = 0;
    if (!exact && (rv = fio_file_size(fd, &limit)))
        return rv;
    size_t want = CHUNK;
    while (r->end < limit) {
        uint64_t off = r->end;
        size_t n = limit - off < want ? (size_t)(limit - off) : want;
        if ((rv = reserve(b, n)))
            return rv;
        rv = fio_pread_full(fd, b->buf, n, off);
        if (rv == APR_EOF)   /* shorter than published, or shrank */
            return exact ? KV_CORRUPT : APR_SUCCESS;
        if (rv)
            return rv;
        size_t pos = 0;
        want = CHUNK;
        while (pos < n) {
            wal_view_t v;
            size_t len = wal_decode(b->buf + pos, n - pos, &v);
            if (len == 0) {
                /* Not whole in the buffer.  If more of the file follows,
                 * read again from here, enough for the declared length. */
                uint64_t declared = n - pos >= WAL_HEADER
                    ? WAL_HEADER + (uint64_t)get_u32(b->buf + pos + 4) : WAL_HEADER;
                if (off + n < limit && declared <= WAL_HEADER + (uint64_t)WAL_MAX_PAYLOAD
                    && off + pos + declared <= limit && (pos > 0 || declared > n)) {
                    want = declared > CHUNK ? (size_t)declared : CHUNK;
                    break;
                }
                if (exact)
                    return KV_CORRUPT;
                r->damaged = !wal_is_torn(b->buf + pos, n - pos);
                return APR_SUCCESS;
            }
            if (v.type == WAL_ROTATE) {
                if (exact)
                    return KV_CORRUPT;
                r->rotated = 1;
                r->next_log = v.next_log;
                return APR_SUCCESS;
            }
            if (v.type != WAL_BATCH)
                return KV_CORRUPT;
            if (fn && (rv = fn(baton, &v, off + pos, off + pos + len)))
                return rv;
            pos += len;
            r->end = off + pos;
        }
    }
    return APR_SUCCESS;
}
