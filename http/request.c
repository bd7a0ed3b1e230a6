/* request.c -- query decoding, UTF-8 checks and /set body parsing
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

/* Parse body as exactly one JSON object with nothing after it but
 * whitespace; *err says why not.  The caller deletes the result. */
static cJSON *parse_object(const char *body, size_t len, const char *what,
                           const char **err)
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
    if (*err)
        return NULL;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!j) {
        *err = "invalid JSON";
        return NULL;
    }
    for (const char *q = end; q && q < body + len; q++) {
        if (*q != ' ' && *q != '\t' && *q != '\r' && *q != '\n') {
            *err = "trailing data after the JSON object";
            break;
        }
    }
    if (!*err && !cJSON_IsObject(j))
        *err = "body must be a JSON object";
    if (*err) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

/* "key" (non-empty string), and unless key_only "value" (string) and an
 * optional "ttl", from object j into out. */
static const char *kv_fields(apr_pool_t *p, const cJSON *j, int key_only, kvr_set_t *out)
{
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(j, "key");
    if (!k)
        return "missing key";
    if (!cJSON_IsString(k))
        return "key must be a string";
    if (k->valuestring[0] == '\0')
        return "key must not be empty";
    out->klen = strlen(k->valuestring);
    out->key = apr_pstrmemdup(p, k->valuestring, out->klen);
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
            return "ttl must be a whole number of seconds, at least 1";
        out->has_ttl = 1;
        out->ttl = (long long)d;
    }
    out->vlen = strlen(v->valuestring);
    out->val = apr_pstrmemdup(p, v->valuestring, out->vlen);
    return NULL;
}

const char *kvr_parse_set(apr_pool_t *p, const char *body, size_t len,
                          kvr_set_t *out)
{
    memset(out, 0, sizeof(*out));
    const char *err;
    cJSON *j = parse_object(body, len, "empty body: expected a JSON object with \"key\" and \"value\"", &err);
    if (!j)
        return err;
    err = kv_fields(p, j, 0, out);
    cJSON_Delete(j);
    return err;
}

const char *kvr_parse_batch(apr_pool_t *p, const char *body, size_t len, int max_ops,
                            kvr_op_t **ops, int *nops)
{
    *ops = NULL;
    *nops = 0;
    const char *err;
    cJSON *j = parse_object(body, len, "empty body: expected a JSON object with \"ops\"", &err);
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
            why = "\"op\" must be \"set\" or \"del\"";
        else if (!strcmp(op->valuestring, "set"))
            why = kv_fields(p, e, 0, &o[i].kv);
        else if (!strcmp(op->valuestring, "del")) {
            o[i].del = 1;
            why = kv_fields(p, e, 1, &o[i].kv);
            if (!why && (cJSON_GetObjectItemCaseSensitive(e, "value")
                         || cJSON_GetObjectItemCaseSensitive(e, "ttl")))
                why = "a del takes only a key";
        }
        else
            why = "\"op\" must be \"set\" or \"del\"";
        if (why)
            err = apr_psprintf(p, "ops[%d]: %s", i, why);
    }
    cJSON_Delete(j);
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

/* JSON string escaping, byte for byte as cJSON_PrintUnformatted does it
 * (", \\, \b, \f, \n, \r, \t by name, other bytes below 0x20 as \u00xx,
 * everything else as it is), so answers read the same as when they were
 * printed through a cJSON tree, without building one per answer.  Input
 * has no NUL (kvr_text_ok). */
static int json_escaped(unsigned char c)
{
    return c < 0x20 || c == '"' || c == '\\';
}

static size_t json_str_len(const char *s, size_t n)
{
    size_t len = n + 2;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (json_escaped(c))
            len += (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r'
                    || c == '\t') ? 1 : 5;
    }
    return len;
}

static char *json_str_put(char *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    *o++ = '"';
    size_t run = 0;   /* bytes copied as they are, pending */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!json_escaped(c)) {
            run++;
            continue;
        }
        memcpy(o, s + i - run, run);
        o += run;
        run = 0;
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    memcpy(o, s + n - run, run);
    o += run;
    *o++ = '"';
    return o;
}

char *kvr_json_kv(apr_pool_t *p, const char *k1, const char *v1, size_t v1len,
                  const char *k2, const char *v2, size_t v2len)
{
    size_t k1len = strlen(k1), k2len = k2 ? strlen(k2) : 0;
    size_t len = 2 + json_str_len(k1, k1len) + 1 + json_str_len(v1, v1len);
    if (k2)
        len += 1 + json_str_len(k2, k2len) + 1 + json_str_len(v2, v2len);
    char *out = apr_palloc(p, len + 1), *o = out;
    *o++ = '{';
    o = json_str_put(o, k1, k1len);
    *o++ = ':';
    o = json_str_put(o, v1, v1len);
    if (k2) {
        *o++ = ',';
        o = json_str_put(o, k2, k2len);
        *o++ = ':';
        o = json_str_put(o, v2, v2len);
    }
    *o++ = '}';
    *o = '\0';
    return out;
}
