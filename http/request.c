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

const char *kvr_parse_set(apr_pool_t *p, const char *body, size_t len,
                          kvr_set_t *out)
{
    memset(out, 0, sizeof(*out));
    if (len == 0)
        return "empty body: expected a JSON object with \"key\" and \"value\"";
    if (memchr(body, '\0', len))
        return "body contains a NUL byte";
    if (!kvr_text_ok(body, len))
        return "body is not valid UTF-8";
    if (has_nul_escape(body, len))
        return "strings may not contain U+0000";
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!j)
        return "invalid JSON";
    /* Only whitespace may follow the object. */
    for (const char *q = end; q && q < body + len; q++) {
        if (*q != ' ' && *q != '\t' && *q != '\r' && *q != '\n') {
            cJSON_Delete(j);
            return "trailing data after the JSON object";
        }
    }
    const char *err = NULL;
    if (!cJSON_IsObject(j))
        err = "body must be a JSON object";
    const cJSON *k = err ? NULL : cJSON_GetObjectItemCaseSensitive(j, "key");
    const cJSON *v = err ? NULL : cJSON_GetObjectItemCaseSensitive(j, "value");
    const cJSON *t = err ? NULL : cJSON_GetObjectItemCaseSensitive(j, "ttl");
    if (!err && !k)
        err = "missing key";
    else if (!err && !cJSON_IsString(k))
        err = "key must be a string";
    else if (!err && k->valuestring[0] == '\0')
        err = "key must not be empty";
    if (!err) {
        out->klen = strlen(k->valuestring);
        out->key = apr_pstrmemdup(p, k->valuestring, out->klen);
    }
    if (!err && !v)
        err = "missing value";
    else if (!err && !cJSON_IsString(v))
        err = "value must be a string";
    if (!err && t) {
        double d = cJSON_IsNumber(t) ? t->valuedouble : 0;
        if (!cJSON_IsNumber(t) || d < 1 || d > 1e12 || d != (double)(long long)d)
            err = "ttl must be a whole number of seconds, at least 1";
        else {
            out->has_ttl = 1;
            out->ttl = (long long)d;
        }
    }
    if (!err) {
        out->vlen = strlen(v->valuestring);
        out->val = apr_pstrmemdup(p, v->valuestring, out->vlen);
    }
    cJSON_Delete(j);
    return err;
}

char *kvr_json_kv(apr_pool_t *p, const char *k1, const char *v1, size_t v1len,
                  const char *k2, const char *v2, size_t v2len)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    char *a = apr_pstrmemdup(p, v1, v1len);
    cJSON_AddStringToObject(o, k1, a);
    if (k2) {
        char *b = apr_pstrmemdup(p, v2, v2len);
        cJSON_AddStringToObject(o, k2, b);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s)
        return NULL;
    char *r = apr_pstrdup(p, s);
    cJSON_free(s);
    return r;
}
