/* config.h -- the KVLSM* directives: the per-server configuration they
 * fill, its merge, and the engine options it stands for.  Directive
 * parsing lives in config.c; the hooks that use the result in
 * mod_kvlsm.c. */
#ifndef KVLSM_CONFIG_H
#define KVLSM_CONFIG_H

#include "httpd.h"
#include "http_config.h"
#include "engine/kvlsm.h"

extern module AP_MODULE_DECLARE_DATA kvlsm_module;

/* Unset fields are -1 (0 for pointers): a virtual host inherits them. */
typedef struct {
    const char *data_dir;
    apr_int64_t memtable_bytes;
    apr_int64_t sync_mode;          /* kv_sync_mode_e */
    apr_int64_t sync_interval_ms;
    apr_int64_t max_key_bytes;
    apr_int64_t max_value_bytes;
    apr_int64_t compression;        /* kv_compression_e */
    apr_int64_t map_bytes;
    apr_int64_t quick_handler;      /* 1: KVLSMQuickHandler on (http/quick.c) */
    apr_int64_t pin_connections;    /* 1: KVLSMPinConnections on (http/quick.c) */
    apr_int64_t max_batch_bytes;    /* a /batch body */
    apr_int64_t max_inflight_bytes; /* request bodies one child holds at once */
    apr_int64_t next_request_wait;  /* microseconds, 0 off (http/nextwait.c) */
} kvlsm_server_conf;

/* What the module itself bounds (the engine's limits are kv_options_t). */
typedef struct {
    apr_size_t max_batch_bytes;     /* default 4 MiB */
    apr_size_t max_inflight_bytes;  /* default 64 MiB */
} kvlsm_limits_t;

void *create_kvlsm_server_config(apr_pool_t *p, server_rec *s);
void *merge_kvlsm_server_config(apr_pool_t *p, void *basev, void *addv);

/* The configuration of server s. */
kvlsm_server_conf *kvlsm_conf(server_rec *s);
/* The effective engine options (defaults filled in). */
kv_options_t kvlsm_conf_options(const kvlsm_server_conf *c);
/* The effective module limits (defaults filled in). */
kvlsm_limits_t kvlsm_conf_limits(const kvlsm_server_conf *c);
/* Directive keywords for log lines. */
const char *kvlsm_sync_name(kv_sync_mode_e m);
const char *kvlsm_compression_name(kv_compression_e c);

/* The directive table for the module declaration. */
extern const command_rec kvlsm_cmds[];

#endif
