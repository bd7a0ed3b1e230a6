/* request.c -- query decoding, UTF-8 checks, /set and /batch body
 * parsing (a shape check first, then cJSON), and JSON strings for answers
 * (request.h).  Everything here is hostile-input code: every length is
 * checked, nothing reads past a buffer, and no input is silently changed. */
#include <string.h>
#include <stdlib.h>
#include <apr_strings.h>
#include <cjson/cJSON.h>
#include "request.h"

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decode s[0..n) into out (n+1 bytes); returns decoded length or -1. */
static long form_decode(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+')
            out[o++] = ' ';
        else if (s[i] == '%') {
            if (i + 2 >= n)
                return -1;
            int h = hexval((unsigned char)s[i + 1]), l = hexval((unsigned char)s[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            out[o++] = (char)(h * 16 + l);
            i += 2;
        }
        else
            out[o++] = s[i];
    }
    out[o] = '\0';
    return (long)o;
}

int kvr_query_param(apr_pool_t *p, const char *args, const char *name,
                    char **out, size_t *len)
{
    if (!args)
        return 0;
    size_t nlen = strlen(name);
    const char *s = args;
    while (*s) {
        const char *amp = strchr(s, '&');
        size_t plen = amp ? (size_t)(amp - s) : strlen(s);
        const char *eq = memchr(s, '=', plen);
        size_t klen = eq ? (size_t)(eq - s) : plen;
        char *kbuf = apr_palloc(p, klen + 1);
        long kd = form_decode(s, klen, kbuf);
        if (kd == (long)nlen && memcmp(kbuf, name, nlen) == 0) {
            const char *v = eq ? eq + 1 : s + plen;
            size_t vlen = eq ? plen - klen - 1 : 0;
            char *buf = apr_palloc(p, vlen + 1);
            long d = form_decode(v, vlen, buf);
            if (d < 0)
                return -1;
            *out = buf;
            *len = (size_t)d;
            return 1;
        }
        if (!amp)
            break;
        s = amp + 1;
    }
    return 0;
}

int kvr_text_ok(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = u[i];
        if (c == 0)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        int need;
        unsigned cp, min;
        if ((c & 0xE0) == 0xC0) { need = 1; cp = c & 0x1F; min = 0x80; }
        else if ((c & 0xF0) == 0xE0) { need = 2; cp = c & 0x0F; min = 0x800; }
        else if ((c & 0xF8) == 0xF0) { need = 3; cp = c & 0x07; min = 0x10000; }
        else return 0;
        if (i + (size_t)need >= n)
            return 0;
        for (int k = 1; k <= need; k++) {
            if ((u[i + (size_t)k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (u[i + (size_t)k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += (size_t)need + 1;
    }
    return 1;
}

/* Inside JSON strings, find a \u0000 escape (the backslash itself not
 * escaped).  cJSON decodes it to a NUL and so truncates the string. */
static int has_nul_escape(const char *s, size_t n)
{
    int in_str = 0;
    for (size_t i = 0; i < n; i++) {
        if (!in_str) {
            if (s[i] == '"')
                in_str = 1;
            continue;
        }
        if (s[i] == '"')
            in_str = 0;
        else if (s[i] == '\\') {
            if (i + 5 < n && s[i + 1] == 'u' && s[i + 2] == '0' && s[i + 3] == '0'
                && s[i + 4] == '0' && s[i + 5] == '0')
                return 1;
            i++;   /* skip the escaped character */
        }
    }
    return 0;
}

/* ---- the shape of a body, checked before cJSON sees it ---------------
 * cJSON builds a tree of the whole body before anything can be looked at,
 * and every value costs a node of some 64 bytes whether anyone asked for
 * it or not (a 6 MB array of zeros took 247 MiB).  So a body's shape is
 * checked first, in one pass that allocates nothing: only the fields a
 * body may hold, each at most once, an object or array only where one is
 * expected, and at most max_ops operations.  Whatever passes has a tree of
 * at most 2 + max_ops * 5 nodes and strings no longer than the body, and
 * no nesting deeper than three, so cJSON's recursion stays shallow too.
 * The scan stops at the first thing out of place: a hostile body costs its
 * own bytes up to there, nothing more.  It does not check the grammar of
 * scalars (cJSON does); where it cannot follow the structure it says
 * "invalid JSON". */

typedef struct shape shape_t;
typedef struct {
    const char *name;
    const char *not_scalar;   /* the message when it holds an object or array */
    const shape_t *items;     /* non-NULL: an array of such objects (ops) */
} field_t;

struct shape {
    const char *what;         /* "a /set body", for the unknown-field message */
    const char *names;        /* "key, value and ttl" */
    int nfields;
    field_t fields[4];
};

#define TTL_MSG "ttl must be a whole number of seconds, at least 1"
#define OP_MSG "\"op\" must be \"set\" or \"del\""

static const shape_t set_shape = {
    "a /set body", "key, value and ttl", 3,
    { { "key", "key must be a string", NULL }, { "value", "value must be a string", NULL },
      { "ttl", TTL_MSG, NULL } } };
static const shape_t op_shape = {
    "an operation", "op, key, value and ttl", 4,
    { { "op", OP_MSG, NULL }, { "key", "key must be a string", NULL },
      { "value", "value must be a string", NULL }, { "ttl", TTL_MSG, NULL } } };
static const shape_t batch_shape = {
    "a /batch body", "ops", 1, { { "ops", "ops must be an array", &op_shape } } };

typedef struct {
    const char *p, *end;
    apr_pool_t *pool;
    int max_ops;
    const char *err;
} prescan_t;

static int fail(prescan_t *s, const char *err)
{
    if (!s->err)
        s->err = err;
    return 0;
}

static int at(const prescan_t *s, char c)
{
    return s->p < s->end && *s->p == c;
}

static void skip_ws(prescan_t *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

/* A string at s->p: its raw bytes (escapes as written) in *str, *len. */
static int scan_string(prescan_t *s, const char **str, size_t *len)
{
    const char *q = s->p + 1;
    while (q < s->end && *q != '"') {
        if (*q == '\\' && ++q == s->end)
            break;
        q++;
    }
    if (q >= s->end)
        return fail(s, "invalid JSON");
    *str = s->p + 1;
    *len = (size_t)(q - *str);
    s->p = q + 1;
    return 1;
}

/* A string, number or literal (its grammar is cJSON's to check). */
static int scan_scalar(prescan_t *s)
{
    const char *str;
    size_t len;
    if (at(s, '"'))
        return scan_string(s, &str, &len);
    const char *q = s->p;
    while (q < s->end && ((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'z')
                          || (*q >= 'A' && *q <= 'Z') || *q == '+' || *q == '-' || *q == '.'))
        q++;
    if (q == s->p)
        return fail(s, "invalid JSON");
    s->p = q;
    return 1;
}

/* A name for a message: at most 40 bytes of it, cut at a character. */
static const char *shown_name(apr_pool_t *p, const char *name, size_t len)
{
    if (len <= 40)
        return apr_pstrmemdup(p, name, len);
    size_t n = 40;
    while (n > 0 && ((unsigned char)name[n] & 0xC0) == 0x80)
        n--;
    return apr_pstrcat(p, apr_pstrmemdup(p, name, n), "...", NULL);
}

/* The prefix of a message about operation op ("ops[3]: "), or "" (-1). */
static const char *where(prescan_t *s, int op)
{
    return op < 0 ? "" : apr_psprintf(s->pool, "ops[%d]: ", op);
}

static int scan_object(prescan_t *s, const shape_t *sh, int op);

/* The ops array at s->p ('['): at most max_ops elements, none an array. */
static int scan_items(prescan_t *s, const shape_t *sh)
{
    s->p++;
    skip_ws(s);
    if (at(s, ']')) {
        s->p++;
        return 1;
    }
    for (int i = 0;; i++) {
        if (i == s->max_ops)
            return fail(s, apr_psprintf(s->pool, "too many ops: at most %d", s->max_ops));
        skip_ws(s);
        if (at(s, '['))
            return fail(s, apr_pstrcat(s->pool, where(s, i), "must be an object", NULL));
        if (at(s, '{') ? !scan_object(s, sh, i) : !scan_scalar(s))
            return 0;
        skip_ws(s);
        if (at(s, ']')) {
            s->p++;
            return 1;
        }
        if (!at(s, ','))
            return fail(s, "invalid JSON");
        s->p++;
    }
}

/* An object of shape sh at s->p ('{'): operation op, or the body (-1). */
static int scan_object(prescan_t *s, const shape_t *sh, int op)
{
    unsigned seen = 0;
    s->p++;
    skip_ws(s);
    if (at(s, '}')) {
        s->p++;
        return 1;
    }
    for (;;) {
        skip_ws(s);
        const char *name;
        size_t nlen;
        if (!at(s, '"') || !scan_string(s, &name, &nlen))
            return fail(s, "invalid JSON");
        int f = -1;
        for (int i = 0; i < sh->nfields && f < 0; i++)
            if (strlen(sh->fields[i].name) == nlen && !memcmp(sh->fields[i].name, name, nlen))
                f = i;
        if (f < 0)
            return fail(s, apr_psprintf(s->pool, "%sunknown field \"%s\": %s holds only %s", where(s, op),
                                        shown_name(s->pool, name, nlen), sh->what, sh->names));
        if (seen & (1u << f))
            return fail(s, apr_psprintf(s->pool, "%sduplicate field \"%s\"", where(s, op),
                                        sh->fields[f].name));
        seen |= 1u << f;
        skip_ws(s);
        if (!at(s, ':'))
            return fail(s, "invalid JSON");
        s->p++;
        skip_ws(s);
        const field_t *fd = &sh->fields[f];
        if (fd->items && at(s, '[')) {
            if (!scan_items(s, fd->items))
                return 0;
        }
        else if (at(s, '[') || at(s, '{'))
            return fail(s, apr_pstrcat(s->pool, where(s, op), fd->not_scalar, NULL));
        else if (!scan_scalar(s))
            return 0;
        skip_ws(s);
        if (at(s, '}')) {
            s->p++;
            return 1;
        }
        if (!at(s, ','))
            return fail(s, "invalid JSON");
        s->p++;
    }
}

/* NULL if body[0..len) may go to cJSON, else why not.  A top-level
 * scalar goes on (cJSON's tree of it is one node, it parses no further
 * than it, and its message says what is wrong); a top-level array does
 * not.  Nor does anything else: cJSON takes every byte up to 0x20 for
 * whitespace, so "\x07[0,0,...]" would be parsed whole. */
static const char *prescan(apr_pool_t *p, const char *body, size_t len, const shape_t *sh,
                           int max_ops)
{
    prescan_t s = { body, body + len, p, max_ops, NULL };
    if (len >= 3 && !memcmp(body, "\xEF\xBB\xBF", 3))   /* cJSON skips a BOM too */
        s.p += 3;
    skip_ws(&s);
    if (at(&s, '['))
        return "body must be a JSON object";
    if (at(&s, '{'))
        scan_object(&s, sh, -1);
    else
        scan_scalar(&s);
    return s.err;
}

/* ---- parsing ---------------------------------------------------------- */

static apr_status_t delete_tree(void *data)
{
    cJSON_Delete(data);
    return APR_SUCCESS;
}

/* Parse body as exactly one JSON object of shape sh with nothing after it
 * but whitespace; *err says why not.  The tree lives as long as p (the
 * fields point into it: no second copy of a value). */
static cJSON *parse_object(apr_pool_t *p, const char *body, size_t len, const shape_t *sh,
                           int max_ops, const char *what, const char **err)
{
    *err = NULL;
    if (len == 0) {
        *err = what;
        return NULL;
    }
    if (memchr(body, '\0', len))
        *err = "body contains a NUL byte";
    else if (!kvr_text_ok(body, len))
        *err = "body is not valid UTF-8";
    else if (has_nul_escape(body, len))
        *err = "strings may not contain U+0000";
    else
        *err = prescan(p, body, len, sh, max_ops);
    if (*err)
        return NULL;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!j) {
        *err = "invalid JSON";
        return NULL;
    }
    apr_pool_cleanup_register(p, j, delete_tree, apr_pool_cleanup_null);
    for (const char *q = end; q && q < body + len; q++) {
        if (*q != ' ' && *q != '\t' && *q != '\r' && *q != '\n') {
            *err = "trailing data after the JSON object";
            break;
        }
    }
    if (!*err && !cJSON_IsObject(j))
        *err = "body must be a JSON object";
    return *err ? NULL : j;
}

/* "key" (non-empty string), and unless key_only "value" (string) and an
 * optional "ttl", from object j into out (pointing into j). */
static const char *kv_fields(const cJSON *j, int key_only, kvr_set_t *out)
{
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(j, "key");
    if (!k)
        return "missing key";
    if (!cJSON_IsString(k))
        return "key must be a string";
    if (k->valuestring[0] == '\0')
        return "key must not be empty";
    out->klen = strlen(k->valuestring);
    out->key = k->valuestring;
    if (key_only)
        return NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "value");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "ttl");
    if (!v)
        return "missing value";
    if (!cJSON_IsString(v))
        return "value must be a string";
    if (t) {
        double d = cJSON_IsNumber(t) ? t->valuedouble : 0;
        if (!cJSON_IsNumber(t) || d < 1 || d > 1e12 || d != (double)(long long)d)
            return TTL_MSG;
        out->has_ttl = 1;
        out->ttl = (long long)d;
    }
    out->vlen = strlen(v->valuestring);
    out->val = v->valuestring;
    return NULL;
}

const char *kvr_parse_set(apr_pool_t *p, const char *body, size_t len,
                          kvr_set_t *out)
{
    memset(out, 0, sizeof(*out));
    const char *err;
    cJSON *j = parse_object(p, body, len, &set_shape, 0,
                            "empty body: expected a JSON object with \"key\" and \"value\"", &err);
    return j ? kv_fields(j, 0, out) : err;
}

const char *kvr_parse_batch(apr_pool_t *p, const char *body, size_t len, int max_ops,
                            kvr_op_t **ops, int *nops)
{
    *ops = NULL;
    *nops = 0;
    const char *err;
    cJSON *j = parse_object(p, body, len, &batch_shape, max_ops,
                            "empty body: expected a JSON object with \"ops\"", &err);
    if (!j)
        return err;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "ops");
    int n = a && cJSON_IsArray(a) ? cJSON_GetArraySize(a) : 0;
    if (!a)
        err = "missing ops";
    else if (!cJSON_IsArray(a))
        err = "ops must be an array";
    else if (n == 0)
        err = "ops must not be empty";
    else if (n > max_ops)
        err = apr_psprintf(p, "too many ops: at most %d", max_ops);
    kvr_op_t *o = err ? NULL : apr_pcalloc(p, sizeof(kvr_op_t) * (size_t)n);
    int i = 0;
    for (const cJSON *e = a ? a->child : NULL; !err && e; e = e->next, i++) {
        const cJSON *op = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "op") : NULL;
        const char *why = NULL;
        if (!cJSON_IsObject(e))
            why = "must be an object";
        else if (!cJSON_IsString(op))
            why = OP_MSG;
        else if (!strcmp(op->valuestring, "set"))
            why = kv_fields(e, 0, &o[i].kv);
        else if (!strcmp(op->valuestring, "del")) {
            o[i].del = 1;
            why = kv_fields(e, 1, &o[i].kv);
            if (!why && (cJSON_GetObjectItemCaseSensitive(e, "value")
                         || cJSON_GetObjectItemCaseSensitive(e, "ttl")))
                why = "a del takes only a key";
        }
        else
            why = OP_MSG;
        if (why)
            err = apr_psprintf(p, "ops[%d]: %s", i, why);
    }
    if (!err) {
        *ops = o;
        *nops = n;
    }
    return err;
}

int kvr_parse_etags(const char *h, int *star, apr_uint64_t *seqs, int max, int *n)
{
    *star = 0;
    *n = 0;
    const char *q = h;
    int any = 0;
    for (;;) {
        while (*q == ' ' || *q == '\t')
            q++;
        if (*q == '*' && !any) {
            *star = 1;
            q++;
        }
        else {
            int weak = q[0] == 'W' && q[1] == '/';
            if (weak)
                q += 2;
            if (*q != '"')
                return 0;
            q++;
            apr_uint64_t v = 0;
            int digits = 0, ours = 1;
            const char *open = q;
            while (*q && *q != '"') {
                if (*q >= '0' && *q <= '9' && digits < 19) {
                    v = v * 10 + (apr_uint64_t)(*q - '0');
                    digits++;
                }
                else
                    ours = 0;   /* a tag we never issued: matches nothing */
                q++;
            }
            if (*q != '"')
                return 0;
            q++;
            /* Strong comparison: weak tags and foreign ones never match. */
            if (!weak && ours && q - open > 1 && *n < max)
                seqs[(*n)++] = v;
        }
        any = 1;
        while (*q == ' ' || *q == '\t')
            q++;
        if (*q == '\0')
            break;
        if (*q != ',' || *star)
            return 0;
        q++;
    }
    return any;
}

/* ---- writing JSON ----------------------------------------------------- */

/* What a byte becomes inside a JSON string, as cJSON writes it: 0 for
 * itself, else the letter of a two-byte escape, or 'u' for \u00XX. */
static char escape_of(unsigned char c)
{
    switch (c) {
    case '"': return '"';
    case '\\': return '\\';
    case '\b': return 'b';
    case '\f': return 'f';
    case '\n': return 'n';
    case '\r': return 'r';
    case '\t': return 't';
    default: return c < 0x20 ? 'u' : 0;
    }
}

size_t kvr_json_len(const char *s, size_t n)
{
    size_t len = n + 2;
    for (size_t i = 0; i < n; i++) {
        char e = escape_of((unsigned char)s[i]);
        len += e == 0 ? 0 : e == 'u' ? 5 : 1;
    }
    return len;
}

char *kvr_json_put(char *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    *out++ = '"';
    size_t run = 0;   /* bytes copied as they are, in one go */
    for (size_t i = 0; i < n; i++) {
        char e = escape_of((unsigned char)s[i]);
        if (!e)
            continue;
        memcpy(out, s + run, i - run);
        out += i - run;
        run = i + 1;
        *out++ = '\\';
        *out++ = e;
        if (e == 'u') {
            *out++ = '0';
            *out++ = '0';
            *out++ = hex[(unsigned char)s[i] >> 4];
            *out++ = hex[(unsigned char)s[i] & 15];
        }
    }
    memcpy(out, s + run, n - run);
    out += n - run;
    *out++ = '"';
    return out;
}

char *kvr_json_kv(apr_pool_t *p, const char *k1, const char *v1, size_t v1len,
                  const char *k2, const char *v2, size_t v2len)
{
    size_t k1len = strlen(k1), k2len = k2 ? strlen(k2) : 0;
    size_t len = 2 + kvr_json_len(k1, k1len) + 1 + kvr_json_len(v1, v1len);
    if (k2)
        len += 1 + kvr_json_len(k2, k2len) + 1 + kvr_json_len(v2, v2len);
    char *json = apr_palloc(p, len + 1), *o = json;
    *o++ = '{';
    o = kvr_json_put(o, k1, k1len);
    *o++ = ':';
    o = kvr_json_put(o, v1, v1len);
    if (k2) {
        *o++ = ',';
        o = kvr_json_put(o, k2, k2len);
        *o++ = ':';
        o = kvr_json_put(o, v2, v2len);
    }
    *o++ = '}';
    *o = '\0';
    return json;
}
