/* test_check.c -- kvlsm-check, the offline checker: a clean directory
 * passes, a damaged SST, log or manifest is named, and --dump prints the
 * live entries as JSON lines. */
#include <dirent.h>
#include <sys/wait.h>
#include "testutil.h"

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
    char path[4096], name[256] = "";
    DIR *d = opendir(dir);
    struct dirent *de;
    while ((de = readdir(d)))
        if (strstr(de->d_name, ".log") && strcmp(de->d_name, name) > 0)
            memcpy(name, de->d_name, strlen(de->d_name) + 1);
    closedir(d);
    snprintf(path, sizeof path, "%s/%s", dir, name);
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
