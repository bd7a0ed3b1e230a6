/* nextwait.c -- KVLSMNextRequestWait: a worker that has just answered a
 * store request on an HTTP/1.x keep-alive connection waits a short,
 * bounded time for that connection's next request before it hands the
 * connection back to the event MPM's listener thread.
 *
 * Why: under the event MPM every answer ends with the connection going
 * back to the listener (epoll) and, when the next request arrives, from
 * the listener to a worker again through the worker queue: a futex wake
 * and two context switches per request, half of a child's CPU under GET
 * (docs/PERFORMANCE.md).  A client that sends its next request within
 * the wait is served by the same thread with none of that.
 *
 * How: after each request, mod_http asks the connection's input filters,
 * with a speculative non-blocking read, whether a pipelined request is
 * already there (ap_check_pipeline); if so the event MPM processes it at
 * once on the same worker.  A connection filter of ours answers that read:
 * when nothing is there yet it writes out the buffered answer (without
 * blocking, as the event MPM itself would next), then polls the socket
 * for at most the configured time.
 *
 * What bounds it: the wait (default 2 ms, at most 100 ms); only after a
 * store request, only on async MPMs (event), only for HTTP/1.x; never with
 * output still pending; all but two of a child's threads at most wait at
 * once, so the listener always has a worker for what else arrives (were
 * none idle, the event MPM would close kept-alive connections); and a
 * connection whose client let a wait run out skips the wait for its next
 * request, after a second miss in a row for its next 2, then 4, up to 64;
 * a request that comes within a wait resets that.  KVLSMNextRequestWait off turns it off;
 * KVLSMPinConnections on (quick.c) supersedes it. */
#include <poll.h>
#include <time.h>

#include "httpd.h"
#include "http_connection.h"
#include "http_core.h"
#include "scoreboard.h"
#include "ap_mpm.h"
#include "apr_atomic.h"
#include "apr_portable.h"
#include "util_filter.h"

#include "http/config.h"
#include "http/nextwait.h"

#define FILTER_NAME "KVLSM_NEXT_REQUEST"
#define MAX_SKIP 64

typedef struct {
    int armed;             /* a store request just ended: wait once */
    unsigned skip, backoff; /* requests to pass over after a miss */
    apr_interval_time_t wait;
} wait_ctx_t;

static ap_filter_rec_t *filter_handle;
static int async_mpm;
static apr_uint32_t max_waiters;
static apr_uint32_t waiters;        /* atomic: threads of this child waiting */

void kvh_nextwait_child_init(void)
{
    int v = 0;
    async_mpm = ap_mpm_query(AP_MPMQ_IS_ASYNC, &v) == APR_SUCCESS && v;
    int threads = 1;
    if (ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads) != APR_SUCCESS || threads < 1)
        threads = 1;
    max_waiters = (apr_uint32_t)(threads > 2 ? threads - 2 : 1);
}

/* Write out what the core output filter holds, without blocking, as the
 * event MPM does on entering write completion.  1 if nothing is left. */
static int output_drained(conn_rec *c)
{
    ap_filter_t *f = c->output_filters;
    while (f->next)
        f = f->next;
    if (f->frec->filter_func.out_func(f, NULL) != APR_SUCCESS)
        return 0;
    return !c->data_in_output_filters;
}

/* Poll the connection's socket for input for at most t. */
static int readable_within(conn_rec *c, apr_interval_time_t t)
{
    apr_os_sock_t fd;
    if (apr_os_sock_get(&fd, ap_get_conn_socket(c)) != APR_SUCCESS)
        return 0;
    struct pollfd p = { .fd = fd, .events = POLLIN };
    struct timespec ts = { (time_t)apr_time_sec(t), (long)apr_time_usec(t) * 1000 };
    return ppoll(&p, 1, &ts, NULL) == 1 && (p.revents & POLLIN);
}

static apr_status_t next_request_filter(ap_filter_t *f, apr_bucket_brigade *bb,
                                        ap_input_mode_t mode, apr_read_type_e block,
                                        apr_off_t n)
{
    apr_status_t rv = ap_get_brigade(f->next, bb, mode, block, n);
    wait_ctx_t *ctx = f->ctx;
    if (mode != AP_MODE_SPECULATIVE || block != APR_NONBLOCK_READ || !ctx->armed)
        return rv;
    ctx->armed = 0;
    int nothing = APR_STATUS_IS_EAGAIN(rv) || (rv == APR_SUCCESS && APR_BRIGADE_EMPTY(bb));
    if (!nothing || f->c->aborted || f->c->keepalive != AP_CONN_KEEPALIVE)
        return rv;
    if (ctx->skip > 0) {
        ctx->skip--;
        return rv;
    }
    if (apr_atomic_inc32(&waiters) >= max_waiters) {
        apr_atomic_dec32(&waiters);
        return rv;
    }
    /* The answer out (and so logged: its EOR bucket goes with it), then
     * the worker shows in mod_status as what it does: keep-alive. */
    int got = 0;
    if (output_drained(f->c)) {
        ap_update_child_status_from_conn(f->c->sbh, SERVER_BUSY_KEEPALIVE, f->c);
        got = readable_within(f->c, ctx->wait);
    }
    apr_atomic_dec32(&waiters);
    if (!got) {
        ctx->backoff = ctx->backoff ? (ctx->backoff * 2 > MAX_SKIP ? MAX_SKIP : ctx->backoff * 2) : 1;
        ctx->skip = ctx->backoff;
        return rv;
    }
    ctx->backoff = 0;
    apr_brigade_cleanup(bb);
    return ap_get_brigade(f->next, bb, mode, block, n);
}

void kvh_nextwait_arm(request_rec *r)
{
    conn_rec *c = r->connection;
    kvlsm_server_conf *conf = kvlsm_conf(r->server);
    apr_interval_time_t wait = conf->next_request_wait >= 0 ? conf->next_request_wait
                                                             : KVH_NEXT_REQUEST_WAIT_DEFAULT;
    if (!async_mpm || wait <= 0 || c->clogging_input_filters || c->master || !c->cs
        || r->proto_num >= HTTP_VERSION(2, 0) || r->proto_num < HTTP_VERSION(1, 0)
        || apr_table_get(r->headers_in, "Upgrade"))   /* about to switch protocols (h2c) */
        return;
    for (ap_filter_t *f = c->input_filters; f; f = f->next) {
        if (f->frec == filter_handle) {
            wait_ctx_t *ctx = f->ctx;
            ctx->armed = 1;
            ctx->wait = wait;
            return;
        }
    }
    wait_ctx_t *ctx = apr_pcalloc(c->pool, sizeof(*ctx));
    ctx->armed = 1;
    ctx->wait = wait;
    ap_add_input_filter_handle(filter_handle, ctx, NULL, c);
}

void kvh_nextwait_register(void)
{
    filter_handle = ap_register_input_filter(FILTER_NAME, next_request_filter, NULL,
                                             AP_FTYPE_CONNECTION);
}
