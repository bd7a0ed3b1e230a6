/* kvlsm-check.c -- offline checker for a kvlsm data directory: verifies
 * the manifest, every live SST block and every unflushed log record, that
 * the logs' sequence numbers run on without a gap or a repeat from the
 * manifest's last_seq (records written over at a stale offset keep valid
 * checksums but break the numbering) and that the SSTs' lie within it,
 * and names each damaged file; with --dump it prints the live keys and
 * values as JSON lines.  Exit status: 0 clean, 1 damage found, 2 usage or I/O.
 *   kvlsm-check [--dump] DIR */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <apr_general.h>
#include "kvlsm.h"
#include "manifest.h"
#include "sst.h"
#include "wal.h"
#include "fileio.h"
#include "filename.h"

static int damaged;

static void damage(const char *file, const char *what)
{
    printf("damaged: %s: %s\n", file, what);
    damaged = 1;
}

/* JSON string of arbitrary bytes: valid UTF-8 passes, other bytes and
 * controls are escaped as \u00XX. */
static void json_str(const char *s, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            printf("\\u%04x", c);
        else if (c < 0x80)
            putchar(c);
        else {
            /* Copy a well-formed multi-byte sequence as it is. */
            int need = (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : -1;
            int ok = need > 0 && i + (size_t)need < n;
            for (int k = 1; ok && k <= need; k++)
                ok = ((unsigned char)s[i + (size_t)k] & 0xC0) == 0x80;
            if (ok) {
                fwrite(s + i, 1, (size_t)need + 1, stdout);
                i += (size_t)need;
            }
            else
                printf("\\u%04x", c);
        }
    }
    putchar('"');
}

/* Sequence numbers.  The engine numbers operations 1, 2, 3, ... in log
 * order: a writer holding the log lock has replayed the whole log, and
 * seals its records with first_seq = the newest sequence number it knows
 * + 1 (db.c, append_group), so operation i of a batch is first_seq + i and
 * the next batch starts at first_seq + count.  Flushing log l
 * (flush.c, flush_logs_into) sets the manifest's last_seq to the larger
 * of the old last_seq and the newest sequence number in l, in the same
 * manifest write that moves log_start past l; a sealed log with no batch
 * leaves last_seq as it was.  Compaction copies last_seq and log_start
 * unchanged.  So, exactly:
 *
 *   - walking the unflushed logs in order (log_start, then each rotation
 *     record's next log), every batch record's first_seq equals the
 *     previous batch record's first_seq + count, and the first batch
 *     record of the walk has first_seq == last_seq + 1 (1 in a store
 *     nothing was ever flushed from: last_seq 0).  Empty logs and
 *     rotation records do not consume numbers.  A first_seq below what
 *     is expected repeats acknowledged numbers, one above skips some:
 *     both mean records were written over, or lost, at an offset that was
 *     not the end of the log.
 *   - what was flushed need not be contiguous: compaction drops versions
 *     a newer one shadows and tombstones nothing lies under, so SST
 *     entries may have any gaps.  Only bounds hold there: every entry's
 *     sequence number lies within its file's min_seq..max_seq in the
 *     manifest, and max_seq <= last_seq (so SSTs never overlap the logs).
 *
 * The walk stops checking continuity (known = 0) past what it cannot
 * read (a missing or unreadable log, a record that fails its checksum),
 * which is reported already, until the next batch record; a torn tail at
 * the end of the active log is no record and takes no numbers.  After a
 * break it resynchronises on the record found, so one break is one report. */
typedef struct {
    int known;          /* expect is meaningful */
    uint64_t expect;    /* the first_seq the next batch record must have */
} seq_walk_t;

/* Check log `number`, continuing the walk sw; `last`: it is the newest
 * log in the directory.  *rotated_out: it ends with a rotation record.
 * Returns 1 if it exists and holds at least one batch record. */
static int check_log(const char *dir, uint64_t number, int last, seq_walk_t *sw,
                     int *rotated_out)
{
    char path[4096];
    fn_numbered(path, sizeof path, dir, number, "log");
    *rotated_out = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        if (!last)
            damage(path, "missing (the manifest needs it)");
        sw->known = 0;
        return 0;
    }
    uint64_t size = 0;
    fio_file_size(fd, &size);
    char *buf = malloc(size ? size : 1);
    if (!buf || fio_pread_full(fd, buf, size, 0) != APR_SUCCESS) {
        damage(path, "unreadable");
        free(buf);
        close(fd);
        sw->known = 0;
        return 0;
    }
    close(fd);
    size_t pos = 0;
    int rotated = 0, batches = 0;
    char what[256];
    while (pos < size) {
        wal_view_t v;
        size_t n = wal_decode(buf + pos, size - pos, &v);
        if (n == 0)
            break;
        if (v.type == WAL_ROTATE) {
            rotated = 1;
            if (v.next_log != number + 1) {
                snprintf(what, sizeof what,
                         "rotation record at offset %zu names log %llu, not %llu",
                         pos, (unsigned long long)v.next_log,
                         (unsigned long long)number + 1);
                damage(path, what);
            }
            pos += n;
            /* Replay stops at the rotation record: whatever follows it is
             * never read, so nothing may. */
            if (pos < size) {
                snprintf(what, sizeof what,
                         "%llu bytes after the rotation record (offset %zu of %llu): "
                         "replay never reads them",
                         (unsigned long long)(size - pos), pos, (unsigned long long)size);
                damage(path, what);
                pos = size;
            }
            break;
        }
        batches = 1;
        if (sw->known && v.first_seq != sw->expect) {
            snprintf(what, sizeof what,
                     "sequence %s at offset %zu: expected first_seq %llu, found %llu%s",
                     v.first_seq < sw->expect ? "repeat" : "gap", pos,
                     (unsigned long long)sw->expect, (unsigned long long)v.first_seq,
                     v.first_seq < sw->expect
                         ? " (earlier numbers again: records written over at a stale offset?)"
                         : " (numbers skipped: records lost or written over?)");
            damage(path, what);
        }
        sw->known = 1;
        sw->expect = v.first_seq + v.count;
        size_t bp = 0;
        uint32_t idx;
        kv_ent_t e;
        int r;
        while ((r = wal_batch_next(&v, &bp, &idx, &e)) == 1)
            ;
        if (r < 0)
            damage(path, "a record's operations are malformed");
        pos += n;
    }
    if (pos < size) {
        /* A record cut short at the end of the newest log is a writer's
         * torn tail, not damage; a whole record that fails is. */
        int torn = last && wal_is_torn(buf + pos, size - pos);
        snprintf(what, sizeof what, "%s at offset %zu of %llu",
                 torn ? "torn tail (a writer died; the next writer cuts it)"
                      : "record fails its checksum",
                 pos, (unsigned long long)size);
        if (torn)
            printf("note: %s: %s\n", path, what);
        else {
            damage(path, what);
            sw->known = 0;   /* what follows the damage cannot be counted */
        }
    }
    if (!last && !rotated)
        damage(path, "sealed log without its rotation record");
    *rotated_out = rotated;
    free(buf);
    return batches;
}

/* The sequence numbers of SST `path`'s entries against its manifest entry
 * and the manifest's last_seq (see "Sequence numbers" above). */
static void check_sst_seqs(const char *path, sst_t *t, const mf_file_t *f,
                           uint64_t last_seq)
{
    char what[256];
    if (f->entries && f->min_seq > f->max_seq) {
        snprintf(what, sizeof what, "the manifest gives it sequence numbers %llu..%llu (min above max)",
                 (unsigned long long)f->min_seq, (unsigned long long)f->max_seq);
        damage(path, what);
    }
    else if (f->max_seq > last_seq) {
        snprintf(what, sizeof what,
                 "the manifest gives it sequence numbers up to %llu, beyond its last_seq %llu",
                 (unsigned long long)f->max_seq, (unsigned long long)last_seq);
        damage(path, what);
    }
    sst_iter_t *it;
    if (sst_iter_new(&it, t) != APR_SUCCESS) {
        damage(path, "cannot be scanned");
        return;
    }
    uint64_t lo = UINT64_MAX, hi = 0, n = 0;
    for (sst_iter_seek_first(it); sst_iter_valid(it); sst_iter_next(it)) {
        kv_ent_t e;
        sst_iter_entry(it, &e);
        if (e.seq < lo)
            lo = e.seq;
        if (e.seq > hi)
            hi = e.seq;
        n++;
    }
    if (sst_iter_status(it) != APR_SUCCESS)
        damage(path, "fails a checksum or format check while scanned");
    else if (n && (lo < f->min_seq || hi > f->max_seq)) {
        snprintf(what, sizeof what,
                 "entries have sequence numbers %llu..%llu, outside the manifest's %llu..%llu",
                 (unsigned long long)lo, (unsigned long long)hi,
                 (unsigned long long)f->min_seq, (unsigned long long)f->max_seq);
        damage(path, what);
    }
    sst_iter_free(it);
}

static int check(const char *dir)
{
    manifest_t m;
    char path[4096];
    fn_named(path, sizeof path, dir, FN_MANIFEST);
    apr_status_t rv = mf_read(dir, &m, NULL, NULL);
    if (rv == KV_CORRUPT) {
        damage(path, "fails its checksum or format checks");
        return 1;
    }
    if (rv) {
        char buf[256];
        fprintf(stderr, "kvlsm-check: %s: %s\n", path, apr_strerror(rv, buf, sizeof buf));
        return 2;
    }
    uint64_t entries = 0;
    for (int i = 0; i < m.nfiles; i++) {
        sst_t *t;
        fn_numbered(path, sizeof path, dir, m.files[i].number, "sst");
        rv = sst_open(&t, path, m.files[i].number);
        if (rv == APR_SUCCESS) {
            rv = sst_verify(t);
            entries += sst_entries(t);
            if (rv == APR_SUCCESS)
                check_sst_seqs(path, t, &m.files[i], m.last_seq);
            sst_unref(t);
        }
        if (rv == KV_CORRUPT)
            damage(path, "fails a checksum or format check");
        else if (rv) {
            char buf[256];
            damage(path, apr_strerror(rv, buf, sizeof buf));
        }
    }
    /* Logs from the first unflushed one to the newest. */
    uint64_t newest = m.log_start;
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        unsigned long long n;
        char ext[8];
        if (sscanf(de->d_name, "%llu.%7s", &n, ext) == 2 && !strcmp(ext, "log") && n > newest)
            newest = n;
    }
    if (d)
        closedir(d);
    seq_walk_t sw = { 1, m.last_seq + 1 };
    uint64_t active = 0;   /* the first log without a rotation record */
    for (uint64_t n = m.log_start; n <= newest; n++) {
        int rotated;
        int batches = check_log(dir, n, n == newest, &sw, &rotated);
        if (!rotated && !active)
            active = n;
        else if (active && batches) {
            /* Replay and flushes stay in the active log until it is
             * sealed: these records are never read. */
            char what[160];
            fn_numbered(path, sizeof path, dir, n, "log");
            snprintf(what, sizeof what,
                     "holds records beyond the active log %llu (which has no rotation "
                     "record): replay never reaches them", (unsigned long long)active);
            damage(path, what);
        }
    }
    printf("checked: MANIFEST (generation %llu, last_seq %llu), %d SST files (%llu entries), "
           "logs %llu..%llu: %s\n",
           (unsigned long long)m.generation, (unsigned long long)m.last_seq, m.nfiles,
           (unsigned long long)entries, (unsigned long long)m.log_start,
           (unsigned long long)newest, damaged ? "DAMAGED" : "ok");
    mf_free(&m);
    return damaged ? 1 : 0;
}

static int dump(const char *dir)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    kv_options_t o;
    kv_options_default(&o);
    o.background = 0;
    kv_db_t *db;
    kv_iter_t *it;
    char buf[256];
    apr_status_t rv = kv_db_open(&db, dir, &o, pool);
    if (rv == APR_SUCCESS)
        rv = kv_iter_open(&it, db, pool);
    if (rv == APR_SUCCESS)
        rv = kv_iter_seek(it, NULL, 0);
    for (; rv == APR_SUCCESS && kv_iter_valid(it); rv = kv_iter_next(it)) {
        const char *k;
        apr_size_t kn;
        kv_value_t v;
        kv_iter_key(it, &k, &kn);
        kv_iter_value(it, &v);
        printf("{\"key\":");
        json_str(k, kn);
        printf(",\"value\":");
        json_str(v.data, v.len);
        printf(",\"version\":%llu", (unsigned long long)v.seq);
        if (v.expire_at)
            printf(",\"expire_at\":%lld", (long long)v.expire_at);
        printf("}\n");
    }
    if (rv) {
        fprintf(stderr, "kvlsm-check: %s: %s\n", dir, kv_strerror(rv, buf, sizeof buf));
        return rv == KV_CORRUPT ? 1 : 2;
    }
    apr_pool_destroy(pool);
    return 0;
}

int main(int argc, char **argv)
{
    int want_dump = argc == 3 && !strcmp(argv[1], "--dump");
    if (argc != 2 + want_dump || argv[argc - 1][0] == '-') {
        fprintf(stderr, "usage: kvlsm-check [--dump] DATA_DIR\n");
        return 2;
    }
    apr_initialize();
    const char *dir = argv[argc - 1];
    struct stat st;
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "kvlsm-check: %s: not a directory\n", dir);
        return 2;
    }
    int rc = want_dump ? dump(dir) : check(dir);
    apr_terminate();
    return rc;
}
