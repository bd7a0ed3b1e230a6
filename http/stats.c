/* stats.c -- the store's figures: GET /stats as JSON, and a "kvlsm"
 * section on mod_status's server-status page (HTML, or "key: value" lines
 * with ?auto).  Sizes describe the shared data directory; counters are
 * the store's: what every child using the directory counted since
 * counters_since (the first use after a reboot: engine/stats.h), so
 * children answer alike
 * ("counters":"store" says so; "child" if the shared counters could not
 * be used and they are the answering child's, whose pid is given).
 * GET /metrics (metrics.c) has the same figures for Prometheus. */
#include <stddef.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "apr_strings.h"
#include "http_protocol.h"
#include "mod_status.h"
#include "http/handlers.h"
#include "http/answer.h"

static const struct {
    const char *name;
    size_t off;
} fields[] = {
#define F(x) { #x, offsetof(kv_stats_t, x) }
#define C(x) F(x),
    F(sst_files), F(sst_bytes), F(sst_mapped_bytes), F(sst_private_bytes), F(memtable_bytes), F(wal_bytes), F(last_seq),
    KV_STATS_COUNTERS(C)
#undef C
#undef F
};
#define NFIELDS (sizeof fields / sizeof *fields)

static apr_uint64_t field(const kv_stats_t *st, size_t i)
{
    return *(const apr_uint64_t *)((const char *)st + fields[i].off);
}

static int levels_used(const kv_stats_t *st)
{
    int n = 1;
    for (int l = 0; l < KV_MAX_LEVELS; l++)
        if (st->level_files[l])
            n = l + 1;
    return n;
}

int kvh_stats(request_rec *r, kv_db_t *db, const kv_options_t *opts)
{
    (void)opts;
    kv_stats_t st;
    apr_status_t rv = kv_db_stats(db, &st);
    if (rv != APR_SUCCESS)
        return kvh_engine_error(r, rv, "stats", NULL, 0);
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; i < NFIELDS; i++)
        cJSON_AddNumberToObject(o, fields[i].name, (double)field(&st, i));
    cJSON *levels = cJSON_AddArrayToObject(o, "levels");
    for (int l = 0; l < levels_used(&st); l++) {
        cJSON *lv = cJSON_CreateObject();
        cJSON_AddNumberToObject(lv, "level", l);
        cJSON_AddNumberToObject(lv, "files", (double)st.level_files[l]);
        cJSON_AddNumberToObject(lv, "bytes", (double)st.level_bytes[l]);
        cJSON_AddItemToArray(levels, lv);
    }
    cJSON_AddStringToObject(o, "counters", st.counters_shared ? "store" : "child");
    cJSON_AddNumberToObject(o, "counters_since", (double)st.counters_since);
    cJSON_AddNumberToObject(o, "pid", (double)getpid());
    return kvh_send_cjson(r, o, "stats");
}

void kvh_status_section(request_rec *r, int flags, const char *dir, kv_db_t *db)
{
    kv_stats_t st;
    if (kv_db_stats(db, &st) != APR_SUCCESS)
        return;
    if (flags & AP_STATUS_SHORT) {
        for (size_t i = 0; i < NFIELDS; i++)
            ap_rprintf(r, "kvlsm %s: %" APR_UINT64_T_FMT "\n", fields[i].name, field(&st, i));
        for (int l = 0; l < levels_used(&st); l++)
            ap_rprintf(r, "kvlsm level%d: %" APR_UINT64_T_FMT " files %" APR_UINT64_T_FMT " bytes\n",
                       l, st.level_files[l], st.level_bytes[l]);
        return;
    }
    if (st.counters_shared)
        ap_rprintf(r, "<hr /><h2>kvlsm: %s</h2>\n<p>sizes: the data directory; counters: "
                   "the store (every child) since %s</p>\n<table>\n",
                   ap_escape_html(r->pool, dir),
                   ap_ht_time(r->pool, apr_time_from_sec(st.counters_since), "%Y-%m-%d %H:%M:%S %Z", 1));
    else
        ap_rprintf(r, "<hr /><h2>kvlsm: %s</h2>\n<p>sizes: the data directory; counters: "
                   "this child (pid %ld) only: the store's shared counters could not be "
                   "used (see the error log)</p>\n<table>\n",
                   ap_escape_html(r->pool, dir), (long)getpid());
    for (size_t i = 0; i < NFIELDS; i++)
        ap_rprintf(r, "<tr><th align=\"left\">%s</th><td>%" APR_UINT64_T_FMT "</td></tr>\n",
                   fields[i].name, field(&st, i));
    for (int l = 0; l < levels_used(&st); l++)
        ap_rprintf(r, "<tr><th align=\"left\">level %d</th><td>%" APR_UINT64_T_FMT " files, %"
                   APR_UINT64_T_FMT " bytes</td></tr>\n", l, st.level_files[l], st.level_bytes[l]);
    ap_rputs("</table>\n", r);
}
