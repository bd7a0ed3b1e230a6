/* manifest.c -- reading, writing and editing the MANIFEST (manifest.h).
 * The file is small (one line of metadata a live SST), so it is rewritten
 * whole on every change; the caller holds the flush lock. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "manifest.h"
#include "entry.h"
#include "coding.h"
#include "crc32c.h"
#include "fileio.h"
#include "filename.h"
#include "kvlsm.h"

#define MF_MAGIC "KVLSMMF1"
#define MF_VERSION 1
#define MF_HEAD (8 + 4 + 4 + 8 * 4 + 4)
#define MF_MAX_BYTES (64u << 20)

void mf_init(manifest_t *m)
{
    memset(m, 0, sizeof(*m));
}

void mf_free(manifest_t *m)
{
    for (int i = 0; i < m->nfiles; i++) {
        free(m->files[i].smallest);
        free(m->files[i].largest);
    }
    free(m->files);
    mf_init(m);
}

static char *dup_bytes(const char *p, size_t n)
{
    char *d = malloc(n ? n : 1);
    if (d && n)
        memcpy(d, p, n);
    return d;
}

apr_status_t mf_add(manifest_t *m, const mf_file_t *f)
{
    mf_file_t *nf = realloc(m->files, sizeof(*nf) * (size_t)(m->nfiles + 1));
    if (!nf)
        return APR_ENOMEM;
    m->files = nf;
    mf_file_t *d = &m->files[m->nfiles];
    *d = *f;
    d->smallest = dup_bytes(f->smallest, f->smallest_len);
    d->largest = dup_bytes(f->largest, f->largest_len);
    if (!d->smallest || !d->largest) {
        free(d->smallest);
        free(d->largest);
        return APR_ENOMEM;
    }
    m->nfiles++;
    return APR_SUCCESS;
}

apr_status_t mf_copy(manifest_t *dst, const manifest_t *src)
{
    mf_init(dst);
    dst->generation = src->generation;
    dst->log_start = src->log_start;
    dst->next_sst = src->next_sst;
    dst->last_seq = src->last_seq;
    for (int i = 0; i < src->nfiles; i++) {
        apr_status_t rv = mf_add(dst, &src->files[i]);
        if (rv) {
            mf_free(dst);
            return rv;
        }
    }
    return APR_SUCCESS;
}

void mf_remove(manifest_t *m, uint64_t number)
{
    for (int i = 0; i < m->nfiles; i++) {
        if (m->files[i].number == number) {
            free(m->files[i].smallest);
            free(m->files[i].largest);
            memmove(&m->files[i], &m->files[i + 1],
                    sizeof(mf_file_t) * (size_t)(m->nfiles - i - 1));
            m->nfiles--;
            return;
        }
    }
}

static int file_order(const void *a, const void *b)
{
    const mf_file_t *x = a, *y = b;
    if (x->level != y->level)
        return x->level - y->level;
    if (x->level == 0)
        return x->number < y->number ? -1 : x->number > y->number;
    return key_cmp(x->smallest, x->smallest_len, y->smallest, y->smallest_len);
}

void mf_sort(manifest_t *m)
{
    if (m->nfiles > 1)
        qsort(m->files, (size_t)m->nfiles, sizeof(mf_file_t), file_order);
}

static apr_status_t decode(const char *buf, size_t len, manifest_t *m)
{
    const char *p = buf, *end = buf + len;
    if (len < MF_HEAD + 4 || memcmp(buf, MF_MAGIC, 8) != 0)
        return KV_CORRUPT;
    if (crc32c(buf, len - 4) != get_u32(buf + len - 4))
        return KV_CORRUPT;
    end -= 4;
    if (get_u32(p + 8) != MF_VERSION)
        return KV_CORRUPT;
    p += 16;
    m->generation = get_u64(p);
    m->log_start = get_u64(p + 8);
    m->next_sst = get_u64(p + 16);
    m->last_seq = get_u64(p + 24);
    uint32_t n = get_u32(p + 32);
    p += 36;
    if (n > len / 41)
        return KV_CORRUPT;
    for (uint32_t i = 0; i < n; i++) {
        mf_file_t f;
        uint64_t sl, ll;
        if (end - p < 41)
            return KV_CORRUPT;
        f.level = (unsigned char)p[0];
        f.number = get_u64(p + 1);
        f.bytes = get_u64(p + 9);
        f.entries = get_u64(p + 17);
        f.min_seq = get_u64(p + 25);
        f.max_seq = get_u64(p + 33);
        p += 41;
        if (f.level >= KV_MAX_LEVELS)
            return KV_CORRUPT;
        if (!(p = get_varint(p, end, &sl)) || sl > (uint64_t)(end - p))
            return KV_CORRUPT;
        f.smallest = (char *)p;
        f.smallest_len = sl;
        p += sl;
        if (!(p = get_varint(p, end, &ll)) || ll > (uint64_t)(end - p))
            return KV_CORRUPT;
        f.largest = (char *)p;
        f.largest_len = ll;
        p += ll;
        apr_status_t rv = mf_add(m, &f);
        if (rv)
            return rv;
    }
    return p == end ? APR_SUCCESS : KV_CORRUPT;
}

apr_status_t mf_read(const char *dir, manifest_t *m, ino_t *ino, int *fdp)
{
    char path[4096];
    struct stat st;
    fn_named(path, sizeof(path), dir, FN_MANIFEST);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return APR_FROM_OS_ERROR(errno);
    if (fstat(fd, &st) < 0) {
        apr_status_t rv = APR_FROM_OS_ERROR(errno);
        close(fd);
        return rv;
    }
    if (st.st_size > MF_MAX_BYTES) {
        close(fd);
        return KV_CORRUPT;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return APR_ENOMEM;
    }
    apr_status_t rv = fio_pread_full(fd, buf, (size_t)st.st_size, 0);
    mf_init(m);
    if (rv == APR_SUCCESS)
        rv = decode(buf, (size_t)st.st_size, m);
    free(buf);
    if (rv != APR_SUCCESS)
        mf_free(m);
    else {
        if (ino)
            *ino = st.st_ino;
        if (fdp)
            *fdp = fd;
    }
    if (rv != APR_SUCCESS || !fdp)
        close(fd);
    return rv;
}

apr_status_t mf_write(const char *dir, const manifest_t *m)
{
    size_t cap = MF_HEAD + 4;
    for (int i = 0; i < m->nfiles; i++)
        cap += 41 + 2 * VARINT_MAX + m->files[i].smallest_len + m->files[i].largest_len;
    char *buf = malloc(cap), *p = buf;
    if (!buf)
        return APR_ENOMEM;
    memcpy(p, MF_MAGIC, 8);
    put_u32(p + 8, MF_VERSION);
    put_u32(p + 12, 0);
    p += 16;
    put_u64(p, m->generation);
    put_u64(p + 8, m->log_start);
    put_u64(p + 16, m->next_sst);
    put_u64(p + 24, m->last_seq);
    put_u32(p + 32, (uint32_t)m->nfiles);
    p += 36;
    for (int i = 0; i < m->nfiles; i++) {
        const mf_file_t *f = &m->files[i];
        p[0] = (char)f->level;
        put_u64(p + 1, f->number);
        put_u64(p + 9, f->bytes);
        put_u64(p + 17, f->entries);
        put_u64(p + 25, f->min_seq);
        put_u64(p + 33, f->max_seq);
        p += 41;
        p = put_varint(p, f->smallest_len);
        memcpy(p, f->smallest, f->smallest_len);
        p += f->smallest_len;
        p = put_varint(p, f->largest_len);
        memcpy(p, f->largest, f->largest_len);
        p += f->largest_len;
    }
    put_u32(p, crc32c(buf, (size_t)(p - buf)));
    p += 4;
    char tmp[4096], path[4096];
    fn_named(tmp, sizeof(tmp), dir, FN_MANIFEST_TMP);
    fn_named(path, sizeof(path), dir, FN_MANIFEST);
    apr_status_t rv = fio_write_file_atomic(dir, tmp, path, buf, (size_t)(p - buf));
    free(buf);
    return rv;
}
