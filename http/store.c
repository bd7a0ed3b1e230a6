/* store.c -- opening a child's store, and opening it again after a failed
 * open (store.h).  Each attempt gets its own unmanaged pool, so an attempt
 * from a request thread touches no pool another thread uses; the store
 * that opens keeps its pool until the child exits. */
#include <pthread.h>
#include "httpd.h"
#include "http_config.h"
#include "http/store.h"
#include "http_log.h"
#include "apr_strings.h"

APLOG_USE_MODULE(kvlsm);

#define BACKOFF_FIRST apr_time_from_sec(1)
#define BACKOFF_MAX apr_time_from_sec(60)

struct kvlsm_store {
    server_rec *s;
    const char *dir;
    kv_options_t o;
    kv_db_t *db;               /* atomic: set once, when an open succeeds */
    apr_pool_t *pool;          /* the open store's */
    pthread_mutex_t mu;        /* one attempt at a time */
    apr_time_t next_try;       /* mu */
    apr_interval_time_t backoff;
    unsigned failures;
};

static apr_status_t store_cleanup(void *data)
{
    kvlsm_store_t *st = data;
    if (st->pool)
        apr_pool_destroy(st->pool);   /* closes the store (its pre-cleanup) */
    st->pool = NULL;
    __atomic_store_n(&st->db, NULL, __ATOMIC_RELEASE);
    pthread_mutex_destroy(&st->mu);
    return APR_SUCCESS;
}

/* One attempt; st->mu held (or child-init). */
static void try_open(kvlsm_store_t *st)
{
    apr_pool_t *p;
    if (apr_pool_create_unmanaged_ex(&p, NULL, NULL) != APR_SUCCESS)
        return;
    kv_db_t *db;
    apr_status_t rv = kv_db_open(&db, st->dir, &st->o, p);
    if (rv == APR_SUCCESS) {
        st->pool = p;
        __atomic_store_n(&st->db, db, __ATOMIC_RELEASE);
        if (st->failures)
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, st->s, APLOGNO(10931)
                         "kvlsm: store in %s opened after %u failed attempts; serving",
                         st->dir, st->failures);
        kv_stats_t fig;
        if (kv_db_stats(db, &fig) == APR_SUCCESS && !fig.counters_shared) {
            char buf[256];
            ap_log_error(APLOG_MARK, APLOG_WARNING, fig.counters_why, st->s, APLOGNO(10940)
                         "kvlsm: the store's shared counters (%s/STATS) cannot be used (%s: "
                         "no room to create the file, or a layout this build must not "
                         "use); this child's /stats and /metrics count only its own work",
                         st->dir, kv_strerror(fig.counters_why, buf, sizeof buf));
        }
        return;
    }
    apr_pool_destroy(p);
    st->failures++;
    st->backoff = st->backoff ? st->backoff * 2 : BACKOFF_FIRST;
    if (st->backoff > BACKOFF_MAX)
        st->backoff = BACKOFF_MAX;
    st->next_try = apr_time_now() + st->backoff;
    char buf[256];
    ap_log_error(APLOG_MARK, APLOG_ERR, rv, st->s, APLOGNO(10906)
                 "kvlsm: cannot open the store in %s: %s; requests get 503, "
                 "trying again in %" APR_TIME_T_FMT " s",
                 st->dir, kv_strerror(rv, buf, sizeof buf), apr_time_sec(st->backoff));
}

kvlsm_store_t *kvlsm_store_create(apr_pool_t *pchild, server_rec *s, const char *dir,
                                  const kv_options_t *o)
{
    kvlsm_store_t *st = apr_pcalloc(pchild, sizeof(*st));
    st->s = s;
    st->dir = apr_pstrdup(pchild, dir);
    st->o = *o;
    pthread_mutex_init(&st->mu, NULL);
    apr_pool_cleanup_register(pchild, st, store_cleanup, apr_pool_cleanup_null);
    try_open(st);
    return st;
}

kv_db_t *kvlsm_store_get(kvlsm_store_t *st, apr_time_t *retry_after)
{
    kv_db_t *db = __atomic_load_n(&st->db, __ATOMIC_ACQUIRE);
    if (db)
        return db;
    /* Other requests answer 503 at once rather than queue behind an
     * attempt in progress. */
    if (pthread_mutex_trylock(&st->mu) == 0) {
        if (!st->db && apr_time_now() >= st->next_try)
            try_open(st);
        db = st->db;
        *retry_after = st->next_try - apr_time_now();
        pthread_mutex_unlock(&st->mu);
    }
    else
        *retry_after = apr_time_from_sec(1);
    if (*retry_after < apr_time_from_sec(1))
        *retry_after = apr_time_from_sec(1);
    return db;
}
