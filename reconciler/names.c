/* Certificate name rules (see names.h). Written against the reference's
 * wildcard rules rather than RFC 6125 where they differ: '*' may be
 * followed by more characters of its label ("*test.example.com"), but
 * never preceded by any. */
#include "reconciler/names.h"

#include <stddef.h>
#include <string.h>

static bool is_ldh(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
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

bool rc_wildcard_valid(const char *pattern)
{
    if (pattern == NULL || pattern[0] != '*')
        return false;
    size_t len = strlen(pattern);
    if (len > RC_NAME_MAX)
        return false;
    const char *dot = strchr(pattern, '.');
    if (dot == NULL)
        return false;
    for (const char *p = pattern + 1; p < dot; p++)
        if (!is_ldh((unsigned char)*p))
            return false;
    return labels_ok(dot + 1, len - (size_t)(dot + 1 - pattern));
}
