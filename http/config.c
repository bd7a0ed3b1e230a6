/* config.c -- the KVLSM* directives (config.h): one row per directive in
 * kvlsm_cmds, sizes and numbers checked by one setter against a row of
 * {field, min, max}, keywords by another against a list of names.  What
 * the values mean to the store is the engine's business (kv_options_t). */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "apr_lib.h"
#include "apr_strings.h"
#include "http_core.h"
#include "http/config.h"
#include "http/nextwait.h"

#define NELEMS(a) ((int)(sizeof(a) / sizeof *(a)))

#define KiB ((apr_int64_t)1024)
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)

/* Every numeric field, for create and merge. */
static const size_t num_fields[] = {
    offsetof(kvlsm_server_conf, memtable_bytes), offsetof(kvlsm_server_conf, sync_mode),
    offsetof(kvlsm_server_conf, sync_interval_ms), offsetof(kvlsm_server_conf, max_key_bytes),
    offsetof(kvlsm_server_conf, max_value_bytes), offsetof(kvlsm_server_conf, compression),
    offsetof(kvlsm_server_conf, map_bytes), offsetof(kvlsm_server_conf, quick_handler),
    offsetof(kvlsm_server_conf, pin_connections), offsetof(kvlsm_server_conf, max_batch_bytes),
    offsetof(kvlsm_server_conf, max_inflight_bytes), offsetof(kvlsm_server_conf, next_request_wait),
};

static apr_int64_t *num(kvlsm_server_conf *c, size_t off)
{
    return (apr_int64_t *)((char *)c + off);
}

void *create_kvlsm_server_config(apr_pool_t *p, server_rec *s)
{
    (void)s;
    kvlsm_server_conf *c = apr_pcalloc(p, sizeof(*c));
    for (int i = 0; i < NELEMS(num_fields); i++)
        *num(c, num_fields[i]) = -1;
    return c;
}

void *merge_kvlsm_server_config(apr_pool_t *p, void *basev, void *addv)
{
    kvlsm_server_conf *base = basev, *add = addv, *c = apr_pcalloc(p, sizeof(*c));
    c->data_dir = add->data_dir ? add->data_dir : base->data_dir;
    for (int i = 0; i < NELEMS(num_fields); i++) {
        apr_int64_t a = *num(add, num_fields[i]);
        *num(c, num_fields[i]) = a >= 0 ? a : *num(base, num_fields[i]);
    }
    return c;
}

kvlsm_server_conf *kvlsm_conf(server_rec *s)
{
    return ap_get_module_config(s->module_config, &kvlsm_module);
}

kv_options_t kvlsm_conf_options(const kvlsm_server_conf *c)
{
    kv_options_t o;
    kv_options_default(&o);
    if (c->memtable_bytes >= 0)
        o.memtable_bytes = (apr_size_t)c->memtable_bytes;
    if (c->sync_mode >= 0)
        o.sync_mode = (kv_sync_mode_e)c->sync_mode;
    if (c->sync_interval_ms >= 0)
        o.sync_interval_ms = (apr_uint32_t)c->sync_interval_ms;
    if (c->max_key_bytes >= 0)
        o.max_key_bytes = (apr_size_t)c->max_key_bytes;
    if (c->max_value_bytes >= 0)
        o.max_value_bytes = (apr_size_t)c->max_value_bytes;
    if (c->compression >= 0)
        o.compression = (kv_compression_e)c->compression;
    if (c->map_bytes >= 0)
        o.map_bytes = (apr_size_t)c->map_bytes;
    return o;
}

kvlsm_limits_t kvlsm_conf_limits(const kvlsm_server_conf *c)
{
    kvlsm_limits_t l = { 4 * MiB, 64 * MiB };
    if (c->max_batch_bytes >= 0)
        l.max_batch_bytes = (apr_size_t)c->max_batch_bytes;
    if (c->max_inflight_bytes >= 0)
        l.max_inflight_bytes = (apr_size_t)c->max_inflight_bytes;
    return l;
}

/* ---- sizes and numbers ----------------------------------------------- */

/* "4096", "64K", "4M", "1G" -> bytes (suffixes only if allowed); -1 if
 * malformed. */
static apr_int64_t parse_size(const char *arg, int suffixes)
{
    char *end;
    errno = 0;
    apr_int64_t n = apr_strtoi64(arg, &end, 10);
    if (errno || end == arg || n < 0 || !apr_isdigit(arg[0]))
        return -1;
    apr_int64_t mul = 1;
    if (*end == 'K' || *end == 'k')
        mul = KiB;
    else if (*end == 'M' || *end == 'm')
        mul = MiB;
    else if (*end == 'G' || *end == 'g')
        mul = GiB;
    else if (*end != '\0')
        return -1;
    if (mul != 1 && (end[1] != '\0' || !suffixes))
        return -1;
    if (n > APR_INT64_MAX / mul)
        return -1;
    return n * mul;
}

/* A numeric directive: where it goes and what it may be. */
typedef struct {
    size_t field;
    apr_int64_t min, max;
    int suffixes;              /* K, M and G allowed */
    const char *range;         /* said when the value is refused */
} size_rule_t;

static const size_rule_t rule_memtable = {
    offsetof(kvlsm_server_conf, memtable_bytes), 64 * KiB, GiB, 1,
    "give a size from 64K to 1G (bytes, or with a K, M or G suffix)" };
static const size_rule_t rule_interval = {
    offsetof(kvlsm_server_conf, sync_interval_ms), 1, 3600000, 0,
    "give milliseconds from 1 to 3600000" };
static const size_rule_t rule_max_key = {
    offsetof(kvlsm_server_conf, max_key_bytes), 1, 65535, 1,
    "give a size from 1 to 65535 bytes" };
static const size_rule_t rule_max_value = {
    offsetof(kvlsm_server_conf, max_value_bytes), 1, 256 * MiB, 1,
    "give a size from 1 byte to 256M (bytes, or with a K or M suffix)" };
static const size_rule_t rule_max_batch = {
    offsetof(kvlsm_server_conf, max_batch_bytes), KiB, GiB, 1,
    "give a size from 1K to 1G (bytes, or with a K, M or G suffix)" };
static const size_rule_t rule_max_inflight = {
    offsetof(kvlsm_server_conf, max_inflight_bytes), 64 * KiB, 64 * GiB, 1,
    "give a size from 64K to 64G (bytes, or with a K, M or G suffix)" };
static const size_rule_t rule_map = {
    offsetof(kvlsm_server_conf, map_bytes), 0, 64 * GiB, 1,
    "give a size from 0 (never map) to 64G (bytes, or with a K, M or G suffix)" };

static const char *refused(cmd_parms *cmd, const char *arg, const char *range)
{
    return apr_psprintf(cmd->pool, "%s: '%s' is not valid: %s", cmd->cmd->name, arg, range);
}

static const char *set_size(cmd_parms *cmd, void *d, const char *arg)
{
    (void)d;
    const size_rule_t *rule = cmd->info;
    apr_int64_t n = parse_size(arg, rule->suffixes);
    if (n < rule->min || n > rule->max)
        return refused(cmd, arg, rule->range);
    *num(kvlsm_conf(cmd->server), rule->field) = n;
    return NULL;
}

/* ---- keywords -------------------------------------------------------- */

/* Indexed by the engine's enum values; NULL-terminated. */
static const char *const sync_names[] = { "off", "interval", "always", NULL };  /* kv_sync_mode_e */
static const char *const compression_names[] = { "none", "lz4", "zstd", NULL }; /* kv_compression_e */
static const char *const flag_names[] = { "off", "on", NULL };

typedef struct {
    size_t field;
    const char *const *names;
    const char *range;
} keyword_rule_t;

static const keyword_rule_t rule_sync = {
    offsetof(kvlsm_server_conf, sync_mode), sync_names, "use always, interval or off" };
static const keyword_rule_t rule_compression = {
    offsetof(kvlsm_server_conf, compression), compression_names, "use none, lz4 or zstd" };
static const keyword_rule_t rule_quick = {
    offsetof(kvlsm_server_conf, quick_handler), flag_names, "use on or off" };
static const keyword_rule_t rule_pin = {
    offsetof(kvlsm_server_conf, pin_connections), flag_names, "use on or off" };

static const char *set_keyword(cmd_parms *cmd, void *d, const char *arg)
{
    (void)d;
    const keyword_rule_t *rule = cmd->info;
    for (int i = 0; rule->names[i]; i++) {
        if (!strcasecmp(arg, rule->names[i])) {
            *num(kvlsm_conf(cmd->server), rule->field) = i;
            return NULL;
        }
    }
    return refused(cmd, arg, rule->range);
}

const char *kvlsm_sync_name(kv_sync_mode_e m)
{
    return (unsigned)m < 3 ? sync_names[m] : "?";
}

const char *kvlsm_compression_name(kv_compression_e c)
{
    return (unsigned)c < 3 ? compression_names[c] : "?";
}

/* ---- durations ------------------------------------------------------ */

/* KVLSMNextRequestWait: off, or a time as Apache's own timeouts take it
 * ("2ms", "1s"; a bare number is milliseconds), at most 100 ms. */
static const char *set_next_request_wait(cmd_parms *cmd, void *d, const char *arg)
{
    (void)d;
    apr_interval_time_t t = 0;
    if (strcasecmp(arg, "off") != 0
        && (!apr_isdigit(arg[0]) || ap_timeout_parameter_parse(arg, &t, "ms") != APR_SUCCESS
            || t < 0 || t > KVH_NEXT_REQUEST_WAIT_MAX))
        return refused(cmd, arg, "use off or a time up to 100ms (a number of milliseconds,"
                       " or with an ms or s suffix)");
    kvlsm_conf(cmd->server)->next_request_wait = t;
    return NULL;
}

/* ---- paths ----------------------------------------------------------- */

static const char *set_data_dir(cmd_parms *cmd, void *d, const char *arg)
{
    (void)d;
    const char *path = ap_server_root_relative(cmd->pool, arg);
    if (!path || !*arg)
        return apr_psprintf(cmd->pool, "%s: invalid path '%s'", cmd->cmd->name, arg);
    kvlsm_conf(cmd->server)->data_dir = path;
    return NULL;
}

const command_rec kvlsm_cmds[] = {
    AP_INIT_TAKE1("KVLSMDataDir", set_data_dir, NULL, RSRC_CONF,
                  "Directory of the key-value store (created if missing)"),
    AP_INIT_TAKE1("KVLSMMemtableSize", set_size, (void *)&rule_memtable, RSRC_CONF,
                  "Memtable flush threshold: 64K to 1G (default 4M)"),
    AP_INIT_TAKE1("KVLSMSync", set_keyword, (void *)&rule_sync, RSRC_CONF,
                  "Durability: always | interval | off (default interval)"),
    AP_INIT_TAKE1("KVLSMSyncInterval", set_size, (void *)&rule_interval, RSRC_CONF,
                  "Milliseconds between background fdatasyncs in interval mode (default 1000)"),
    AP_INIT_TAKE1("KVLSMCompression", set_keyword, (void *)&rule_compression, RSRC_CONF,
                  "SST data block compression: none | lz4 | zstd (default none)"),
    AP_INIT_TAKE1("KVLSMMapSize", set_size, (void *)&rule_map, RSRC_CONF,
                  "SST bytes each child may read through memory mappings instead of pread:"
                  " 0 (never) to 64G, K, M or G suffix allowed (default: every SST)"),
    AP_INIT_TAKE1("KVLSMQuickHandler", set_keyword, (void *)&rule_quick, RSRC_CONF,
                  "Answer the store's URLs from the quick_handler hook, skipping Apache's"
                  " access, translation and fixup phases: on | off (default off; see README)"),
    AP_INIT_TAKE1("KVLSMPinConnections", set_keyword, (void *)&rule_pin, RSRC_CONF,
                  "An HTTP/1.x connection that used the store keeps its worker thread until it"
                  " closes (as under the worker MPM): on | off (default off; see README)"),
    AP_INIT_TAKE1("KVLSMNextRequestWait", set_next_request_wait, NULL, RSRC_CONF,
                  "How long a worker that answered a store request waits for the connection's"
                  " next request before handing it back to the event MPM: off, or up to 100ms"
                  " (default 2ms; see README)"),
    AP_INIT_TAKE1("KVLSMMaxKeySize", set_size, (void *)&rule_max_key, RSRC_CONF,
                  "Longest key in bytes, 1 to 65535 (default 4096)"),
    AP_INIT_TAKE1("KVLSMMaxValueSize", set_size, (void *)&rule_max_value, RSRC_CONF,
                  "Longest value in bytes, K or M suffix allowed, up to 256M (default 1M)"),
    AP_INIT_TAKE1("KVLSMMaxBatchSize", set_size, (void *)&rule_max_batch, RSRC_CONF,
                  "Largest /batch body in bytes, 1K to 1G, K, M or G suffix allowed (default 4M)"),
    AP_INIT_TAKE1("KVLSMMaxInflight", set_size, (void *)&rule_max_inflight, RSRC_CONF,
                  "Bytes of request bodies one child holds at once, across its threads:"
                  " 64K to 64G, K, M or G suffix allowed (default 64M); beyond, 503"),
    { NULL, { NULL }, NULL, 0, 0, NULL }
};
