/* linearize.h -- a linearizability checker for histories of operations on
 * the engine's keys (Wing & Gong's search with Lowe's memoization), used
 * by test_linearizable.c.  It knows nothing of the engine: a history is an
 * array of lin_op_t, each with its invoke and return times, arguments and
 * result, and each key is checked on its own (linearizability is local).
 *
 * The model of one key is a versioned register: absent, or the value one
 * write stored with that write's version (its sequence number).
 *   get             OK (value, version) or NOTFOUND; changes nothing
 *   put             unconditional; OK with the new version
 *   put-if-absent   OK (stores) if absent, else CONFLICT (changes nothing)
 *   put-if-seq      OK (stores) if present with version if_seq, else CONFLICT
 *   delete          OK returning the old (value, version), the key becomes
 *                   absent; NOTFOUND if absent (changes nothing)
 * Values are identified by a non-zero 64-bit id, unique per write, so a
 * read names the write it saw.  An operation whose outcome is unknown (it
 * failed with another error, or its process was killed) is INDETERMINATE:
 * it took effect once at some moment after its invoke, or never; its
 * return_ns is LIN_NEVER unless the caller knows when it can no longer
 * take effect.  An indeterminate get is ignored. */
#ifndef KV_LINEARIZE_H
#define KV_LINEARIZE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    LIN_GET = 1,
    LIN_PUT,
    LIN_PUT_IF_ABSENT,
    LIN_PUT_IF_SEQ,
    LIN_DELETE
} lin_kind_e;

typedef enum {
    LIN_OK = 1,
    LIN_NOTFOUND,
    LIN_CONFLICT,
    LIN_INDETERMINATE
} lin_result_e;

#define LIN_NEVER UINT64_MAX    /* the return time of an op that may land at any time */

typedef struct {
    uint64_t invoke_ns, return_ns; /* CLOCK_MONOTONIC */
    uint64_t val;     /* put*: the id of the value written (non-zero, unique) */
    uint64_t if_seq;  /* put-if-seq: the version the key must have */
    uint64_t got;     /* get/delete OK: the id of the value read (0: none written) */
    uint64_t seq;     /* put* OK: the new version; get/delete OK: the version read */
    int32_t pid;      /* who issued it, for the report */
    int16_t thread;
    uint16_t key;     /* ops are grouped by this */
    uint8_t kind;     /* lin_kind_e */
    uint8_t result;   /* lin_result_e */
} lin_op_t;

/* Also require every write that replaces a value to carry a higher version
 * than the value it replaces (the engine's sequence numbers only grow). */
#define LIN_SEQ_INCREASES 1u

typedef struct {
    unsigned flags;                 /* LIN_SEQ_INCREASES */
    FILE *report;                   /* where a failure is explained; NULL: nowhere */
    const char *const *key_names;   /* key_names[op.key] in the report; NULL: numbers */
    size_t nkey_names;
    /* Writes a value id readably into buf; NULL: hexadecimal. */
    void (*describe_val)(uint64_t val, char *buf, size_t n);
    uint64_t max_configs;           /* search budget per key; 0: 50 million */
} lin_config_t;

typedef struct {
    size_t keys, ops, indeterminate; /* ops checked (indeterminate gets dropped) */
    uint64_t configs;                /* configurations the search visited */
    int bad_key;                     /* the first key that failed, -1: none */
    size_t bad_keys;                 /* how many failed */
} lin_stats_t;

#define LIN_LINEARIZABLE 1
#define LIN_VIOLATION    0
#define LIN_GAVE_UP     (-1)  /* budget exhausted or malformed history */

/* Check the history of ops[0..n) (any order, any keys).  Returns one of
 * the three codes above (a violation on any key outranks giving up on
 * another); every key that is not LIN_LINEARIZABLE is explained on
 * cfg->report.  cfg and stats may be NULL. */
int lin_check(const lin_op_t *ops, size_t n, const lin_config_t *cfg, lin_stats_t *stats);

const char *lin_kind_name(unsigned kind);
const char *lin_result_name(unsigned result);

#endif
