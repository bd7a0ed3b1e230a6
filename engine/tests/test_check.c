/* test_check.c -- kvlsm-check, the offline checker: a clean directory
 * passes, a damaged SST, log or manifest is named, log records written
 * over at a stale offset or lost (a break in the sequence numbers) are
 * named, real stores after flushes, compactions and reopens pass, and
 * --dump prints the live entries as JSON lines. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "testutil.h"
#include "manifest.h"
#include "wal.h"

static char *dir;
static apr_pool_t *pool;
static void setup(void) { pool = tu_pool(); dir = tu_tmpdir(); }
static void teardown(void) { apr_pool_destroy(pool); tu_rmrf(dir); free(dir); }
TestSuite(check, .init = setup, .fini = teardown);

/* Run kvlsm-check; returns its exit status, output in out. */
static int run_check(const char *args, char *out, size_t n)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s %s %s 2>&1", KVLSM_CHECK, args, dir);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t got = fread(out, 1, n - 1, p);
    out[got] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void fill(void)
{
    kv_db_t *db;
    kv_options_t o = tu_opts(16384, 0);
    apr_pool_t *p;
    apr_pool_create(&p, pool);
    cr_assert_eq(kv_db_open(&db, dir, &o, p), APR_SUCCESS);
    char k[32];
    for (unsigned long i = 0; i < 500; i++) {
        tu_key(k, sizeof k, "c", i);
        cr_assert_eq(kv_put(db, k, strlen(k), k, strlen(k), NULL, NULL), APR_SUCCESS);
    }
    cr_assert_eq(kv_db_flush(db), APR_SUCCESS);
    cr_assert_eq(kv_put(db, TU_STR("in-log"), TU_STR("quote\" and \x01"), NULL, NULL), APR_SUCCESS);
    kv_db_close(db);
    apr_pool_destroy(p);
}

/* The newest log file: its name (NNNNNN.log) and path. */
static void newest_log(char name[256], char path[4096])
{
    name[0] = '\0';
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    struct dirent *de;
    while ((de = readdir(d)))
        if (strstr(de->d_name, ".log") && strlen(de->d_name) < 256 && strcmp(de->d_name, name) > 0)
            memcpy(name, de->d_name, strlen(de->d_name) + 1);
    closedir(d);
    cr_assert(name[0], "a log exists in %s", dir);
    snprintf(path, 4096, "%s/%s", dir, name);
}

static void flip(const char *name, long off)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f, "%s exists", path);
    fseek(f, off, off < 0 ? SEEK_END : SEEK_SET);
    int c = fgetc(f);
    fseek(f, off, off < 0 ? SEEK_END : SEEK_SET);
    fputc(c ^ 0x10, f);
    fclose(f);
}

Test(check, clean_directory_passes_and_dumps)
{
    fill();
    char out[1 << 16];
    cr_assert_eq(run_check("", out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, ": ok"), "%s", out);
    cr_assert_eq(run_check("--dump", out, sizeof out), 0);
    int lines = 0;
    for (char *p = out; (p = strchr(p, '\n')); p++)
        lines++;
    cr_assert_eq(lines, 501);
    cr_assert(strstr(out, "{\"key\":\"c00000007\",\"value\":\"c00000007\""), "%s", out);
    cr_assert(strstr(out, "\"value\":\"quote\\\" and \\u0001\""), "escaped: %s", out);
}

Test(check, damaged_sst_is_named)
{
    fill();
    flip("000001.sst", 200);
    char out[1 << 16];
    cr_assert_eq(run_check("", out, sizeof out), 1, "%s", out);
    cr_assert(strstr(out, "damaged: ") && strstr(out, "000001.sst"), "%s", out);
}

Test(check, damaged_manifest_is_named)
{
    fill();
    flip("MANIFEST", 20);
    char out[1 << 16];
    cr_assert_eq(run_check("", out, sizeof out), 1, "%s", out);
    cr_assert(strstr(out, "MANIFEST"), "%s", out);
}

Test(check, damaged_log_record_is_named)
{
    fill();
    /* The newest log holds one record after the flush: damage its payload. */
    char path[4096], name[256];
    newest_log(name, path);
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    cr_assert_gt(size, 20);
    /* Append a valid-looking second copy so the damaged one is not the tail. */
    char buf[256];
    f = fopen(path, "r+b");
    size_t n = fread(buf, 1, (size_t)size, f);
    fseek(f, 0, SEEK_END);
    fwrite(buf, 1, n, f);
    fclose(f);
    flip(name, 12);
    char out[1 << 16];
    cr_assert_eq(run_check("", out, sizeof out), 1, "%s", out);
    cr_assert(strstr(out, name) && strstr(out, "checksum"), "%s", out);
}

/* ---- sequence numbers across the logs ---------------------------------- */

#define MAXREC 64

/* A whole log file in memory and its records. */
typedef struct {
    char *buf;
    size_t size;
    int n;
    size_t off[MAXREC];
    uint64_t first[MAXREC];
    uint32_t count[MAXREC];
} logimg_t;

static void read_log(const char *path, logimg_t *li)
{
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0, "%s", path);
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    li->size = (size_t)st.st_size;
    li->buf = malloc(li->size + 1);
    cr_assert_not_null(li->buf);
    cr_assert_eq(pread(fd, li->buf, li->size, 0), (ssize_t)li->size);
    close(fd);
    li->n = 0;
    for (size_t pos = 0; pos < li->size;) {
        wal_view_t v;
        size_t n = wal_decode(li->buf + pos, li->size - pos, &v);
        cr_assert_gt(n, 0, "%s parses to its end (stopped at %zu of %zu)", path, pos, li->size);
        cr_assert_eq(v.type, WAL_BATCH);
        cr_assert_lt(li->n, MAXREC);
        li->off[li->n] = pos;
        li->first[li->n] = v.first_seq;
        li->count[li->n] = v.count;
        li->n++;
        pos += n;
    }
}

static void write_file(const char *path, const char *a, size_t an, const char *b, size_t bn)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(a, 1, an, f), an);
    if (bn)
        cr_assert_eq(fwrite(b, 1, bn, f), bn);
    cr_assert_eq(fclose(f), 0);
}

/* A store whose manifest has last_seq 20 (20 puts flushed into an SST),
 * and whose active log, 000002.log, holds puts 21..30, a batch 31..35
 * and puts 36..38: 14 records.  The memtable is large enough that no
 * write rotates the log. */
static void seq_store(void)
{
    kv_db_t *db;
    kv_options_t o = tu_opts(1 << 20, 0);
    apr_pool_t *p;
    apr_pool_create(&p, pool);
    cr_assert_eq(kv_db_open(&db, dir, &o, p), APR_SUCCESS);
    char k[32];
    for (unsigned long i = 0; i < 20; i++) {
        tu_key(k, sizeof k, "s", i);
        cr_assert_eq(kv_put(db, k, strlen(k), k, strlen(k), NULL, NULL), APR_SUCCESS);
    }
    cr_assert_eq(kv_db_flush(db), APR_SUCCESS);
    for (unsigned long i = 20; i < 30; i++) {
        tu_key(k, sizeof k, "s", i);
        cr_assert_eq(kv_put(db, k, strlen(k), k, strlen(k), NULL, NULL), APR_SUCCESS);
    }
    kv_batch_t *b;
    cr_assert_eq(kv_batch_create(&b, p), APR_SUCCESS);
    for (unsigned long i = 0; i < 5; i++) {
        tu_key(k, sizeof k, "b", i);
        cr_assert_eq(kv_batch_put(b, k, strlen(k), k, strlen(k), 0), APR_SUCCESS);
    }
    apr_uint64_t first = 0;
    cr_assert_eq(kv_write_batch(db, b, &first), APR_SUCCESS);
    cr_assert_eq(first, 31);
    for (unsigned long i = 30; i < 33; i++) {
        tu_key(k, sizeof k, "s", i);
        cr_assert_eq(kv_put(db, k, strlen(k), k, strlen(k), NULL, NULL), APR_SUCCESS);
    }
    kv_db_close(db);
    apr_pool_destroy(p);
}

/* The bug this catches: a writer with a stale view of the log appends
 * its group at an offset that is not the end, over records already
 * acknowledged.  Every record still has a valid frame and checksum. */
Test(check, check_reports_overwritten_log_records)
{
    seq_store();
    char name[256], path[4096], out[1 << 16];
    newest_log(name, path);
    cr_assert_str_eq(name, "000002.log");
    cr_assert_eq(run_check("", out, sizeof out), 0, "before: %s", out);
    logimg_t li;
    read_log(path, &li);
    cr_assert_eq(li.n, 14);
    cr_assert_eq(li.first[0], 21);
    cr_assert_eq(li.first[li.n - 1], 38);
    /* One record, numbered as if the last three had not been written (it
     * repeats 36), over the last two records, and long enough to run past
     * the old end: the log ends with it, exactly. */
    size_t at = li.off[li.n - 2], tail = li.size - at;
    char *val = malloc(tail + 64);
    cr_assert_not_null(val);
    memset(val, 'x', tail + 64);
    wal_rec_t rec;
    wal_rec_init(&rec);
    cr_assert_eq(wal_rec_batch(&rec), APR_SUCCESS);
    cr_assert_eq(wal_rec_op(&rec, WOP_PUT, TU_STR("stale"), val, tail + 64, 0), APR_SUCCESS);
    wal_rec_seal(&rec, li.first[li.n - 3]);
    cr_assert_gt(rec.len, tail);
    int fd = open(path, O_WRONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pwrite(fd, rec.buf, rec.len, (off_t)at), (ssize_t)rec.len);
    close(fd);
    wal_rec_free(&rec);
    free(val);
    free(li.buf);
    /* It still parses, record by record, to its end. */
    read_log(path, &li);
    cr_assert_eq(li.n, 13);
    cr_assert_eq(li.first[li.n - 1], 36);
    free(li.buf);
    cr_assert_eq(run_check("", out, sizeof out), 1, "%s", out);
    char want[4400];
    snprintf(want, sizeof want, "damaged: %s: sequence repeat at offset %zu: expected first_seq 37, found 36",
             path, at);
    cr_assert(strstr(out, want), "want \"%s\" in: %s", want, out);
}

Test(check, check_reports_a_sequence_gap)
{
    seq_store();
    char name[256], path[4096], out[1 << 16], want[4400];
    newest_log(name, path);
    logimg_t li;
    read_log(path, &li);
    cr_assert_eq(li.n, 14);
    /* Record 3 (put 24) gone from the middle: 23 is followed by 25. */
    write_file(path, li.buf, li.off[3], li.buf + li.off[4], li.size - li.off[4]);
    cr_assert_eq(run_check("", out, sizeof out), 1, "%s", out);
    snprintf(want, sizeof want, "damaged: %s: sequence gap at offset %zu: expected first_seq 24, found 25",
             path, li.off[3]);
    cr_assert(strstr(out, want), "want \"%s\" in: %s", want, out);
    /* Gone after the batch (31..35): the count carries across it. */
    write_file(path, li.buf, li.off[11], li.buf + li.off[12], li.size - li.off[12]);
    cr_assert_eq(run_check("", out, sizeof out), 1, "%s", out);
    snprintf(want, sizeof want, "sequence gap at offset %zu: expected first_seq 36, found 37", li.off[11]);
    cr_assert(strstr(out, want), "want \"%s\" in: %s", want, out);
    /* Put back whole, it is clean again. */
    write_file(path, li.buf, li.size, NULL, 0);
    cr_assert_eq(run_check("", out, sizeof out), 0, "%s", out);
    /* The first record gone: the log no longer starts at last_seq + 1. */
    write_file(path, li.buf + li.off[1], li.size - li.off[1], NULL, 0);
    cr_assert_eq(run_check("", out, sizeof out), 1, "%s", out);
    snprintf(want, sizeof want, "damaged: %s: sequence gap at offset 0: expected first_seq 21, found 22", path);
    cr_assert(strstr(out, want), "want \"%s\" in: %s", want, out);
    /* Log whole again, but a manifest whose last_seq (19) does not cover
     * its SST (1..20): the SST is named, and the log no longer starts at
     * last_seq + 1. */
    write_file(path, li.buf, li.size, NULL, 0);
    manifest_t m;
    cr_assert_eq(mf_read(dir, &m, NULL, NULL), APR_SUCCESS);
    cr_assert_eq(m.last_seq, 20);
    cr_assert_eq(m.nfiles, 1);
    cr_assert_eq(m.files[0].max_seq, 20);
    m.last_seq = 19;
    m.generation++;
    cr_assert_eq(mf_write(dir, &m), APR_SUCCESS);
    mf_free(&m);
    cr_assert_eq(run_check("", out, sizeof out), 1, "%s", out);
    snprintf(want, sizeof want, "damaged: %s/000001.sst: the manifest gives it sequence numbers up to 20, "
             "beyond its last_seq 19", dir);
    cr_assert(strstr(out, want), "want \"%s\" in: %s", want, out);
    snprintf(want, sizeof want, "damaged: %s: sequence gap at offset 0: expected first_seq 20, found 21", path);
    cr_assert(strstr(out, want), "want \"%s\" in: %s", want, out);
    /* last_seq right again, but the SST's range in the manifest misses
     * its entries. */
    cr_assert_eq(mf_read(dir, &m, NULL, NULL), APR_SUCCESS);
    m.last_seq = 20;
    m.files[0].min_seq = 5;
    m.generation++;
    cr_assert_eq(mf_write(dir, &m), APR_SUCCESS);
    mf_free(&m);
    cr_assert_eq(run_check("", out, sizeof out), 1, "%s", out);
    snprintf(want, sizeof want, "damaged: %s/000001.sst: entries have sequence numbers 1..20, "
             "outside the manifest's 5..20", dir);
    cr_assert(strstr(out, want), "want \"%s\" in: %s", want, out);
    cr_assert(!strstr(out, "sequence gap"), "%s", out);
    free(li.buf);
}

/* One sealed record image: a batch of one put numbered first_seq, or
 * (first_seq 0) a rotation record naming next_log. */
static void one_record(wal_rec_t *rec, uint64_t first_seq, uint64_t next_log)
{
    wal_rec_init(rec);
    cr_assert_eq(wal_rec_batch(rec), APR_SUCCESS);
    if (first_seq)
        cr_assert_eq(wal_rec_op(rec, WOP_PUT, TU_STR("late"), TU_STR("value"), 0), APR_SUCCESS);
    else
        cr_assert_eq(wal_rec_rotate(rec, next_log), APR_SUCCESS);
    wal_rec_seal(rec, first_seq);
}

/* Replay follows rotation records and stops at them: records after a
 * rotation record, or in a log after one that was never sealed, are
 * never read; a rotation must name the next log; and numbering carries
 * on across a rotation into the next log. */
Test(check, check_follows_rotation_records)
{
    seq_store();
    char name[256], path[4096], next[4096], out[1 << 16], want[4400];
    newest_log(name, path);
    snprintf(next, sizeof next, "%s/000003.log", dir);
    logimg_t li;
    read_log(path, &li);
    wal_rec_t rot, rot5, r39, r40;
    one_record(&rot, 0, 3);
    one_record(&rot5, 0, 5);
    one_record(&r39, 39, 0);
    one_record(&r40, 40, 0);
    /* Sealed, and numbering goes on in the next log: clean. */
    write_file(path, li.buf, li.size, rot.buf, rot.len);
    write_file(next, r39.buf, r39.len, NULL, 0);
    cr_assert_eq(run_check("", out, sizeof out), 0, "%s", out);
    /* ... but not from where it left off. */
    write_file(next, r40.buf, r40.len, NULL, 0);
    cr_assert_eq(run_check("", out, sizeof out), 1, "%s", out);
    snprintf(want, sizeof want, "damaged: %s: sequence gap at offset 0: expected first_seq 39, found 40", next);
    cr_assert(strstr(out, want), "want \"%s\" in: %s", want, out);
    /* A rotation naming another log than the next. */
    write_file(next, r39.buf, r39.len, NULL, 0);
    write_file(path, li.buf, li.size, rot5.buf, rot5.len);
    cr_assert_eq(run_check("", out, sizeof out), 1, "%s", out);
    cr_assert(strstr(out, "names log 5, not 3"), "%s", out);
    /* A record after the rotation record. */
    unlink(next);
    char *img = malloc(rot.len + r39.len);
    cr_assert_not_null(img);
    memcpy(img, rot.buf, rot.len);
    memcpy(img + rot.len, r39.buf, r39.len);
    write_file(path, li.buf, li.size, img, rot.len + r39.len);
    cr_assert_eq(run_check("", out, sizeof out), 1, "%s", out);
    snprintf(want, sizeof want, "damaged: %s: %zu bytes after the rotation record (offset %zu",
             path, r39.len, li.size + rot.len);
    cr_assert(strstr(out, want), "want \"%s\" in: %s", want, out);
    free(img);
    /* Records in a log after the active one, which was never sealed. */
    write_file(path, li.buf, li.size, NULL, 0);
    write_file(next, r39.buf, r39.len, NULL, 0);
    cr_assert_eq(run_check("", out, sizeof out), 1, "%s", out);
    snprintf(want, sizeof want, "damaged: %s: sealed log without its rotation record", path);
    cr_assert(strstr(out, want), "want \"%s\" in: %s", want, out);
    snprintf(want, sizeof want, "damaged: %s: holds records beyond the active log 2", next);
    cr_assert(strstr(out, want), "want \"%s\" in: %s", want, out);
    wal_rec_free(&rot);
    wal_rec_free(&rot5);
    wal_rec_free(&r39);
    wal_rec_free(&r40);
    free(li.buf);
}

static void expect_clean(const char *when)
{
    char out[1 << 16];
    int rc = run_check("", out, sizeof out);
    cr_assert_eq(rc, 0, "%s: %s", when, out);
    cr_assert(strstr(out, ": ok\n"), "%s: %s", when, out);
    cr_log_info("%s: %s", when, out);
}

/* Rounds of puts over a small key space (shadowed versions), deletes,
 * large batches, conditional writes that fail, values that expire, with
 * a small memtable (rotations and write-stall flushes), explicit flushes
 * and compactions, with and without the background thread, and a reopen
 * every round: the checker must find every such store clean. */
Test(check, check_passes_stores_after_flush_compaction_and_reopen, .timeout = 120)
{
    kv_options_t o;
    kv_db_t *db;
    apr_pool_t *p;
    char k[32], v[96], when[64];
    /* An empty store: last_seq 0 and an empty log. */
    o = tu_opts(16384, 0);
    apr_pool_create(&p, pool);
    cr_assert_eq(kv_db_open(&db, dir, &o, p), APR_SUCCESS);
    kv_db_close(db);
    apr_pool_destroy(p);
    expect_clean("empty");
    /* Writes only in the first log, nothing flushed (last_seq 0). */
    apr_pool_create(&p, pool);
    cr_assert_eq(kv_db_open(&db, dir, &o, p), APR_SUCCESS);
    for (unsigned long i = 0; i < 10; i++) {
        tu_key(k, sizeof k, "k", i);
        cr_assert_eq(kv_put(db, k, strlen(k), TU_STR("first"), NULL, NULL), APR_SUCCESS);
    }
    kv_db_close(db);
    apr_pool_destroy(p);
    expect_clean("unflushed first log");
    unsigned long ver = 0;
    apr_uint64_t flushes = 0, compactions = 0;
    for (int round = 0; round < 8; round++) {
        o = tu_opts(round % 3 == 2 ? 65536 : 16384, round % 2);
        apr_pool_create(&p, pool);
        cr_assert_eq(kv_db_open(&db, dir, &o, p), APR_SUCCESS);
        for (int i = 0; i < 700; i++, ver++) {
            tu_key(k, sizeof k, "k", (ver * 7919) % 300);
            size_t n = tu_val(v, sizeof v, k, ver);
            kv_write_opts_t wo = { 0 };
            if (i % 50 == 0)
                wo.expire_at = 1;   /* long expired: compaction drops it */
            cr_assert_eq(kv_put(db, k, strlen(k), v, n, &wo, NULL), APR_SUCCESS);
            if (i % 9 == 0) {
                tu_key(k, sizeof k, "k", (ver * 31) % 300);
                apr_status_t rv = kv_delete(db, k, strlen(k), NULL, NULL, NULL);
                cr_assert(rv == APR_SUCCESS || rv == KV_NOTFOUND);
            }
            if (i % 97 == 0) {
                /* Fails (no key has version 0): consumes no sequence number. */
                tu_key(k, sizeof k, "k", (ver * 7919) % 300);
                kv_write_opts_t c = { .cond = KV_IF_SEQ, .if_seq = 0 };
                cr_assert_eq(kv_put(db, k, strlen(k), TU_STR("x"), &c, NULL), KV_CONFLICT);
            }
            if (i % 250 == 0) {
                kv_batch_t *b;
                cr_assert_eq(kv_batch_create(&b, p), APR_SUCCESS);
                int ops = i == 0 ? 1500 : 40 + round;
                for (int j = 0; j < ops; j++) {
                    tu_key(k, sizeof k, "k", (ver + (unsigned long)j * 13) % 400);
                    if (j % 4 == 3)
                        cr_assert_eq(kv_batch_delete(b, k, strlen(k)), APR_SUCCESS);
                    else
                        cr_assert_eq(kv_batch_put(b, k, strlen(k), k, strlen(k), 0), APR_SUCCESS);
                }
                cr_assert_eq(kv_write_batch(db, b, NULL), APR_SUCCESS);
            }
        }
        if (round % 2 == 0)
            cr_assert_eq(kv_db_flush(db), APR_SUCCESS);
        if (round % 3 == 1)
            cr_assert_eq(kv_db_compact(db), APR_SUCCESS);
        if (round == 4) {
            /* The log that starts right after a flush: empty at close. */
            cr_assert_eq(kv_db_flush(db), APR_SUCCESS);
            cr_assert_eq(kv_db_compact(db), APR_SUCCESS);
            cr_assert_eq(kv_db_flush(db), APR_SUCCESS);
        }
        kv_stats_t st;
        cr_assert_eq(kv_db_stats(db, &st), APR_SUCCESS);
        flushes += st.flushes;
        compactions += st.compactions;
        kv_db_close(db);
        apr_pool_destroy(p);
        snprintf(when, sizeof when, "round %d", round);
        expect_clean(when);
    }
    cr_assert_gt(flushes, 20, "%llu flushes", (unsigned long long)flushes);
    cr_assert_gt(compactions, 0);
    /* A torn tail on the active log is allowed; the next writer cuts it
     * and numbering goes on from the last whole record. */
    char name[256], path[4096], out[1 << 16];
    newest_log(name, path);
    wal_rec_t rec;
    wal_rec_init(&rec);
    cr_assert_eq(wal_rec_batch(&rec), APR_SUCCESS);
    cr_assert_eq(wal_rec_op(&rec, WOP_PUT, TU_STR("torn"), TU_STR("never acknowledged"), 0), APR_SUCCESS);
    wal_rec_seal(&rec, 1);
    FILE *f = fopen(path, "ab");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(rec.buf, 1, rec.len / 2, f), rec.len / 2);
    fclose(f);
    wal_rec_free(&rec);
    cr_assert_eq(run_check("", out, sizeof out), 0, "torn tail: %s", out);
    cr_assert(strstr(out, "torn tail"), "%s", out);
    o = tu_opts(16384, 0);
    apr_pool_create(&p, pool);
    cr_assert_eq(kv_db_open(&db, dir, &o, p), APR_SUCCESS);
    for (unsigned long i = 0; i < 200; i++) {
        tu_key(k, sizeof k, "after", i);
        cr_assert_eq(kv_put(db, k, strlen(k), k, strlen(k), NULL, NULL), APR_SUCCESS);
    }
    cr_assert_eq(kv_db_compact(db), APR_SUCCESS);
    kv_db_close(db);
    apr_pool_destroy(p);
    expect_clean("after the torn tail");
}
