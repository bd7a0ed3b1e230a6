/* kvlsm-check.c -- offline checker for a kvlsm data directory: verifies
 * the manifest, every live SST block and every unflushed log record, and
 * names each damaged file; with --dump it prints the live keys and values
 * as JSON lines.  Exit status: 0 clean, 1 damage found, 2 usage or I/O.
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

static void check_log(const char *dir, uint64_t number, int last)
{
    char path[4096];
    fn_numbered(path, sizeof path, dir, number, "log");
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        if (!last)
            damage(path, "missing (the manifest needs it)");
        return;
    }
    uint64_t size = 0;
    fio_file_size(fd, &size);
    char *buf = malloc(size ? size : 1);
    if (!buf || fio_pread_full(fd, buf, size, 0) != APR_SUCCESS) {
        damage(path, "unreadable");
        free(buf);
        close(fd);
        return;
    }
    close(fd);
    size_t pos = 0;
    int rotated = 0;
    while (pos < size) {
        wal_view_t v;
        size_t n = wal_decode(buf + pos, size - pos, &v);
        if (n == 0)
            break;
        if (v.type == WAL_ROTATE)
            rotated = 1;
        else {
            size_t bp = 0;
            uint32_t idx;
            kv_ent_t e;
            int r;
            while ((r = wal_batch_next(&v, &bp, &idx, &e)) == 1)
                ;
            if (r < 0)
                damage(path, "a record's operations are malformed");
        }
        pos += n;
    }
    if (pos < size) {
        char what[160];
        /* A record cut short at the end of the newest log is a writer's
         * torn tail, not damage; a whole record that fails is. */
        int torn = last && !rotated && wal_is_torn(buf + pos, size - pos);
        snprintf(what, sizeof what, "%s at offset %zu of %llu",
                 torn ? "torn tail (a writer died; the next writer cuts it)"
                      : "record fails its checksum",
                 pos, (unsigned long long)size);
        if (torn)
            printf("note: %s: %s\n", path, what);
        else
            damage(path, what);
    }
    if (!last && !rotated)
        damage(path, "sealed log without its rotation record");
    free(buf);
}

static int check(const char *dir)
{
    manifest_t m;
    char path[4096];
    snprintf(path, sizeof path, "%s/MANIFEST", dir);
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
    for (uint64_t n = m.log_start; n <= newest; n++)
        check_log(dir, n, n == newest);
    printf("checked: MANIFEST (generation %llu), %d SST files (%llu entries), logs %llu..%llu: %s\n",
           (unsigned long long)m.generation, m.nfiles, (unsigned long long)entries,
           (unsigned long long)m.log_start, (unsigned long long)newest,
           damaged ? "DAMAGED" : "ok");
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
