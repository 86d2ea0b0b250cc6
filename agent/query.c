/* Query string parameters (see query.h). */
#include "agent/query.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes s[0..n) into out (room for n + 1 bytes). Returns the decoded
 * length, or -1 with err. */
static long decode(const char *s, size_t n, char *out, char *err, size_t errlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%') {
            int hi = i + 1 < n ? hex(s[i + 1]) : -1;
            int lo = i + 2 < n ? hex(s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                snprintf(err, errlen, "malformed percent-escape \"%.*s\" in the query string",
                         (int)(n - i < 3 ? n - i : 3), s + i);
                return -1;
            }
            if (hi == 0 && lo == 0) {
                snprintf(err, errlen, "an escaped NUL byte (%%00) in the query string");
                return -1;
            }
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return (long)o;
}

int ag_query_get(const char *query, const char *name, char sep, char **out, char *err,
                 size_t errlen)
{
    *out = NULL;
    if (query == NULL)
        return 0;
    char *acc = NULL;
    size_t acc_len = 0;
    bool found = false;
    const char *p = query;
    while (*p != '\0') {
        size_t plen = strcspn(p, "&");
        const char *eq = memchr(p, '=', plen);
        size_t nlen = eq ? (size_t)(eq - p) : plen;
        char *nbuf = malloc(nlen + 1);
        if (nbuf == NULL)
            goto nomem;
        long dn = decode(p, nlen, nbuf, err, errlen);
        bool match = dn >= 0 && strcmp(nbuf, name) == 0;
        free(nbuf);
        if (dn < 0)
            goto fail;
        if (match) {
            const char *v = eq ? eq + 1 : p + plen;
            size_t vlen = (size_t)(p + plen - v);
            char *grown = realloc(acc, acc_len + vlen + 2);
            if (grown == NULL)
                goto nomem;
            acc = grown;
            if (found)
                acc[acc_len++] = sep;
            long vn = decode(v, vlen, acc + acc_len, err, errlen);
            if (vn < 0)
                goto fail;
            acc_len += (size_t)vn;
            if (acc_len > AG_QUERY_VALUE_MAX) {
                snprintf(err, errlen, "the \"%s\" parameter is longer than %d bytes", name,
                         AG_QUERY_VALUE_MAX);
                goto fail;
            }
            found = true;
        }
        p += plen;
        if (*p == '&')
            p++;
    }
    *out = acc;
    return found ? 1 : 0;
nomem:
    snprintf(err, errlen, "out of memory");
fail:
    free(acc);
    return -1;
}
