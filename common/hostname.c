/* Host-name rules (see hostname.h). Written against the reference's
 * wildcard rules rather than RFC 6125 where they differ: '*' may be
 * followed by more characters of its label ("*test.example.com"), but
 * never preceded by any. */
#include "common/hostname.h"

#include <string.h>

static bool is_ldh(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

static bool eq_nocase(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return false;
    return true;
}

/* True when s[0..n) is a dot-separated list of non-empty labels with no '*'. */
static bool labels_ok(const char *s, size_t n)
{
    if (n == 0 || s[0] == '.' || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '*')
            return false;
        if (s[i] == '.' && s[i + 1] == '.')
            return false;
    }
    return true;
}

bool cm_hostname_wildcard_valid(const char *pattern)
{
    if (pattern == NULL || pattern[0] != '*')
        return false;
    size_t len = strlen(pattern);
    if (len > CM_HOSTNAME_MAX)
        return false;
    const char *dot = strchr(pattern, '.');
    if (dot == NULL)
        return false;
    for (const char *p = pattern + 1; p < dot; p++)
        if (!is_ldh((unsigned char)*p))
            return false;
    return labels_ok(dot + 1, len - (size_t)(dot + 1 - pattern));
}

bool cm_hostname_match_n(const char *pattern, const char *host, size_t host_len)
{
    if (pattern == NULL || host == NULL)
        return false;
    if (host_len > 0 && host[host_len - 1] == '.')
        host_len--;
    if (host_len == 0 || host_len > CM_HOSTNAME_MAX)
        return false;

    size_t plen = strlen(pattern);
    if (pattern[0] != '*')
        return plen == host_len && eq_nocase(pattern, host, plen);
    if (!cm_hostname_wildcard_valid(pattern))
        return false;

    /* pattern = "*" fixed "." rest;  host = label "." rest */
    const char *pdot = strchr(pattern, '.');
    const char *fixed = pattern + 1;
    size_t fixed_len = (size_t)(pdot - fixed);
    const char *prest = pdot + 1;
    size_t prest_len = plen - (size_t)(prest - pattern);

    const char *hdot = memchr(host, '.', host_len);
    if (hdot == NULL)
        return false;
    size_t label_len = (size_t)(hdot - host);
    size_t hrest_len = host_len - label_len - 1;
    /* One level only: everything after the leftmost label must be equal. */
    if (hrest_len != prest_len || !eq_nocase(hdot + 1, prest, prest_len))
        return false;

    /* '*' covers at least one character. */
    if (label_len < fixed_len + 1)
        return false;
    if (!eq_nocase(host + label_len - fixed_len, fixed, fixed_len))
        return false;
    /* An IDNA A-label may only stand for a '*' that is the whole label. */
    if (fixed_len > 0 && label_len >= 4 && eq_nocase(host, "xn--", 4))
        return false;
    for (size_t i = 0; i < label_len - fixed_len; i++)
        if (!is_ldh((unsigned char)host[i]))
            return false;
    return true;
}

bool cm_hostname_match(const char *pattern, const char *host)
{
    return host != NULL && cm_hostname_match_n(pattern, host, strlen(host));
}

int cm_hostname_normalize(const char *host, size_t host_len, char *out, size_t outsz)
{
    if (host == NULL || out == NULL)
        return -1;
    if (host_len > 0 && host[host_len - 1] == '.')
        host_len--;
    if (host_len == 0 || host_len > CM_HOSTNAME_MAX || host_len >= outsz)
        return -1;
    for (size_t i = 0; i < host_len; i++) {
        unsigned char c = (unsigned char)host[i];
        if (c == '.') {
            if (i == 0 || host[i - 1] == '.')
                return -1;
        } else if (!is_ldh(c) && c != '_') {
            return -1;
        }
        out[i] = (char)lower(c);
    }
    out[host_len] = '\0';
    return (int)host_len;
}
