/* metrics.c -- GET /metrics: the store's figures in Prometheus's text
 * exposition format (version 0.0.4), and the request-latency histogram
 * behind kvlsm_request_duration_seconds.  Counters are the store's, not
 * the answering child's: every process using the data directory adds to
 * the same slots (engine/stats.h, docs/DESIGN.md "Store-wide counters"),
 * so scrapes answered by different children agree and only grow; sizes
 * describe the directory.  Which store answers is the URL's (one
 * KVLSMDataDir per virtual host), so no label says it. */
#include <stddef.h>
#include <stdio.h>
#include <unistd.h>
#include "httpd.h"
#include "apr_strings.h"
#include "http_config.h"
#include "http_protocol.h"
#include "http_request.h"
#include "http/answer.h"
#include "http/handlers.h"
#include "http/metrics.h"

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define TRACK_KEY "kvlsm-metrics-db"

static const struct {
    const char *name, *type, *help;
    size_t off;
    double scale;       /* 0: an integer as it is; otherwise multiplied by this */
} simple[] = {
#define S(name, type, field, help) { name, type, help, offsetof(kv_stats_t, field), 0 }
    S("kvlsm_gets_total", "counter", gets, "Point reads, found or not."),
    S("kvlsm_sets_total", "counter", sets, "Values stored."),
    S("kvlsm_dels_total", "counter", dels, "Keys deleted."),
    S("kvlsm_batches_total", "counter", batches, "Batches applied."),
    S("kvlsm_flushes_total", "counter", flushes, "Memtables written to level-0 SST files."),
    S("kvlsm_compactions_total", "counter", compactions, "Compaction steps."),
    S("kvlsm_write_stalls_total", "counter", write_stalls,
      "Writes that waited for a flush or for compaction."),
    { "kvlsm_write_stall_seconds_total", "counter", "Time writes spent waiting in stalls.",
      offsetof(kv_stats_t, write_stall_us), 1e-6 },
    S("kvlsm_bytes_read_total", "counter", bytes_read, "Value bytes returned by point reads."),
    S("kvlsm_bytes_written_total", "counter", bytes_written, "Bytes appended to the write-ahead log."),
    S("kvlsm_syncs_total", "counter", syncs, "fdatasync calls on the write-ahead log."),
    S("kvlsm_background_errors_total", "counter", bg_errors,
      "Failed background flushes, compactions and log syncs."),
    S("kvlsm_sst_bytes", "gauge", sst_bytes, "Bytes in live SST files."),
    S("kvlsm_sst_files", "gauge", sst_files, "Live SST files."),
    S("kvlsm_memtable_bytes", "gauge", memtable_bytes,
      "Bytes in the answering child's memtables (every child replays the same log)."),
    S("kvlsm_wal_bytes", "gauge", wal_bytes, "Bytes in write-ahead logs not yet flushed."),
    S("kvlsm_last_sequence", "gauge", last_seq, "Sequence number of the newest write."),
#undef S
};

static void header(request_rec *r, const char *name, const char *type, const char *help)
{
    ap_rprintf(r, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static apr_uint64_t field(const kv_stats_t *st, size_t off)
{
    return *(const apr_uint64_t *)((const char *)st + off);
}

int kvh_metrics(request_rec *r, kv_db_t *db, const kv_options_t *opts)
{
    (void)opts;
    kv_stats_t st;
    apr_status_t rv = kv_db_stats(db, &st);
    if (rv != APR_SUCCESS)
        return kvh_engine_error(r, rv, "metrics", NULL, 0);
    ap_set_content_type(r, CONTENT_TYPE);
    apr_table_setn(r->headers_out, "X-KVLSM-Pid", apr_psprintf(r->pool, "%ld", (long)getpid()));
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    if (!st.counters_shared)
        ap_rputs("# The counters below are the answering child's own: the store's shared "
                 "counters (the file STATS) could not be used, see the error log.\n", r);
    for (size_t i = 0; i < sizeof simple / sizeof *simple; i++) {
        header(r, simple[i].name, simple[i].type, simple[i].help);
        apr_uint64_t v = field(&st, simple[i].off);
        if (simple[i].scale)
            ap_rprintf(r, "%s %.6f\n", simple[i].name, (double)v * simple[i].scale);
        else
            ap_rprintf(r, "%s %" APR_UINT64_T_FMT "\n", simple[i].name, v);
    }
    header(r, "kvlsm_level_files", "gauge", "Live SST files per level.");
    for (int l = 0; l < KV_MAX_LEVELS; l++)
        ap_rprintf(r, "kvlsm_level_files{level=\"%d\"} %" APR_UINT64_T_FMT "\n", l, st.level_files[l]);
    header(r, "kvlsm_level_bytes", "gauge", "Bytes in live SST files per level.");
    for (int l = 0; l < KV_MAX_LEVELS; l++)
        ap_rprintf(r, "kvlsm_level_bytes{level=\"%d\"} %" APR_UINT64_T_FMT "\n", l, st.level_bytes[l]);
    header(r, "kvlsm_counters_store_wide", "gauge",
           "1 if the counters are the store's (every child's), 0 if only the answering child's.");
    ap_rprintf(r, "kvlsm_counters_store_wide %d\n", st.counters_shared ? 1 : 0);

    /* The histogram: cumulative buckets; the count is the +Inf bucket. */
    header(r, "kvlsm_request_duration_seconds", "histogram",
           "Time from reading the request line to logging the answer, of requests the "
           "store's handler answered.");
    apr_uint64_t cum = 0;
    for (int b = 0; b < KV_LATENCY_BUCKETS; b++) {
        /* The C library's %g ("0.0001", as Prometheus's clients write
         * bounds); APR's formatter would drop the leading zero. */
        char le[32];
        snprintf(le, sizeof le, "%g", kv_latency_bound(b));
        cum += st.latency_buckets[b];
        ap_rprintf(r, "kvlsm_request_duration_seconds_bucket{le=\"%s\"} %" APR_UINT64_T_FMT "\n",
                   le, cum);
    }
    cum += st.latency_buckets[KV_LATENCY_BUCKETS];
    ap_rprintf(r, "kvlsm_request_duration_seconds_bucket{le=\"+Inf\"} %" APR_UINT64_T_FMT "\n", cum);
    ap_rprintf(r, "kvlsm_request_duration_seconds_sum %.9f\n", (double)st.latency_sum_ns / 1e9);
    ap_rprintf(r, "kvlsm_request_duration_seconds_count %" APR_UINT64_T_FMT "\n", cum);
    return OK;
}

void kvh_metrics_track(request_rec *r, kv_db_t *db)
{
    apr_pool_userdata_setn(db, TRACK_KEY, NULL, r->pool);
}

/* After the answer went out: how long the whole request took. */
static int log_duration(request_rec *r)
{
    void *db = NULL;
    apr_pool_userdata_get(&db, TRACK_KEY, r->pool);
    if (db) {
        apr_pool_userdata_setn(NULL, TRACK_KEY, NULL, r->pool);   /* once per request */
        kv_db_observe_latency(db, (double)(apr_time_now() - r->request_time) / APR_USEC_PER_SEC);
    }
    return DECLINED;
}

void kvh_metrics_register_hooks(void)
{
    ap_hook_log_transaction(log_duration, NULL, NULL, APR_HOOK_MIDDLE);
}
