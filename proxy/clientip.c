/* Retrieving the client IP from X-Forwarded-For (see clientip.h). */
#include "proxy/clientip.h"

#include <string.h>
#include <strings.h>

static bool is_xff(const struct px_hdr *h)
{
    return h->name_len == 15 && strncasecmp(h->name, "x-forwarded-for", 15) == 0;
}

static bool ows(char c)
{
    return c == ' ' || c == '\t';
}

/* True when s[0..len) is a port: 1 to 5 digits, 1-65535. */
static bool is_port(const char *s, size_t len)
{
    if (len == 0 || len > 5)
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    return v >= 1 && v <= 65535;
}

bool px_clientip_element(const char *s, size_t len, struct cm_ip *out)
{
    if (len == 0)
        return false;
    if (s[0] == '[') { /* "[v6]" or "[v6]:port" */
        const char *close = memchr(s, ']', len);
        if (!close)
            return false;
        size_t alen = (size_t)(close - s) - 1;
        size_t rest = len - alen - 2;
        if (rest && (close[1] != ':' || !is_port(close + 2, rest - 1)))
            return false;
        struct cm_ip a;
        if (!cm_ip_parse(s + 1, alen, &a) || cm_ip_is_v4(&a) || memchr(s + 1, '.', alen))
            return false; /* brackets hold an IPv6 address, RFC 3986 3.2.2 */
        *out = a;
        return true;
    }
    if (cm_ip_parse(s, len, out))
        return true;
    /* "a.b.c.d:port": one colon, a dotted quad before it. */
    const char *colon = memchr(s, ':', len);
    if (!colon || memchr(colon + 1, ':', len - (size_t)(colon - s) - 1))
        return false;
    size_t alen = (size_t)(colon - s);
    struct cm_ip a;
    if (!is_port(colon + 1, len - alen - 1) || !cm_ip_parse(s, alen, &a) || !cm_ip_is_v4(&a))
        return false;
    *out = a;
    return true;
}

/* Trims optional whitespace around v[0..*len); returns the start. */
static const char *trim(const char *v, size_t *len)
{
    size_t a = 0, b = *len;
    while (a < b && ows(v[a]))
        a++;
    while (b > a && ows(v[b - 1]))
        b--;
    *len = b - a;
    return v + a;
}

static bool trusted_has(const struct cm_cidr *t, size_t n, const struct cm_ip *a)
{
    for (size_t i = 0; i < n; i++)
        if (cm_cidr_contains(&t[i], a))
            return true;
    return false;
}

/* The leftmost non-empty element of the X-Forwarded-For fields: 1 with
 * *out set, 0 when there is none, -1 when it is unparsable. */
static int leftmost_of(const struct px_hdr *h, size_t n, struct cm_ip *out)
{
    for (size_t i = 0; i < n; i++) {
        if (!is_xff(&h[i]))
            continue;
        const char *v = h[i].value, *end = v + h[i].value_len;
        while (v < end) {
            const char *comma = memchr(v, ',', (size_t)(end - v));
            size_t len = (size_t)((comma ? comma : end) - v);
            const char *e = trim(v, &len);
            if (len)
                return px_clientip_element(e, len, out) ? 1 : -1;
            v = comma ? comma + 1 : end;
        }
    }
    return 0;
}

bool px_clientip_from_xff(const struct px_hdr *h, size_t n, const struct cm_cidr *trusted,
                          size_t n_trusted, bool leftmost, struct cm_ip *out)
{
    if (leftmost)
        return leftmost_of(h, n, out) == 1;
    size_t hops = 0;
    bool any = false;
    struct cm_ip last = {{0}};
    for (size_t i = n; i-- > 0;) {
        if (!is_xff(&h[i]))
            continue;
        const char *start = h[i].value, *end = start + h[i].value_len;
        while (end > start) {
            const char *e = end;
            while (e > start && e[-1] != ',')
                e--;
            size_t len = (size_t)(end - e);
            const char *el = trim(e, &len);
            end = e > start ? e - 1 : start;
            if (!len)
                continue; /* an empty list element */
            struct cm_ip a;
            if (!px_clientip_element(el, len, &a) || ++hops > PX_XFF_MAX_HOPS)
                return false; /* unparsable, or too long a chain: the peer */
            if (!trusted_has(trusted, n_trusted, &a)) {
                *out = a;
                return true;
            }
            last = a;
            any = true;
        }
    }
    if (any)
        *out = last; /* every hop trusted: the farthest one */
    return any;
}
