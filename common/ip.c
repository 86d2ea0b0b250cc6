/* IP addresses and CIDR ranges (see ip.h). */
#include "common/ip.h"

#include <arpa/inet.h>
#include <string.h>

static const uint8_t v4_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool cm_ip_parse(const char *s, size_t len, struct cm_ip *out)
{
    char text[CM_IP_TEXT_MAX];
    if (!s || len == 0 || len >= sizeof text)
        return false;
    memcpy(text, s, len);
    text[len] = '\0';
    if (memchr(text, '\0', len)) /* an embedded NUL is not part of an address */
        return false;
    struct cm_ip a;
    if (inet_pton(AF_INET, text, &a.b[12]) == 1) {
        memcpy(a.b, v4_prefix, sizeof v4_prefix);
        *out = a;
        return true;
    }
    if (inet_pton(AF_INET6, text, a.b) == 1) {
        *out = a;
        return true;
    }
    return false;
}

bool cm_ip_is_v4(const struct cm_ip *a)
{
    return memcmp(a->b, v4_prefix, sizeof v4_prefix) == 0;
}

size_t cm_ip_format(const struct cm_ip *a, char *out)
{
    const char *r = cm_ip_is_v4(a) ? inet_ntop(AF_INET, &a->b[12], out, CM_IP_TEXT_MAX)
                                   : inet_ntop(AF_INET6, a->b, out, CM_IP_TEXT_MAX);
    if (!r) {
        out[0] = '\0';
        return 0;
    }
    return strlen(out);
}

bool cm_ip_equal(const struct cm_ip *a, const struct cm_ip *b)
{
    return memcmp(a->b, b->b, sizeof a->b) == 0;
}

/* Clears every bit of a after the first bits. */
static void mask(struct cm_ip *a, int bits)
{
    for (int i = 0; i < 16; i++) {
        int keep = bits - i * 8;
        if (keep >= 8)
            continue;
        a->b[i] &= keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
    }
}

bool cm_cidr_parse(const char *s, size_t len, struct cm_cidr *out)
{
    if (!s)
        return false;
    const char *slash = memchr(s, '/', len);
    size_t alen = slash ? (size_t)(slash - s) : len;
    struct cm_ip a;
    if (!cm_ip_parse(s, alen, &a))
        return false;
    int max = cm_ip_is_v4(&a) ? 32 : 128;
    int n = max;
    if (slash) {
        const char *d = slash + 1, *end = s + len;
        if (d == end || end - d > 3)
            return false;
        n = 0;
        for (; d < end; d++) {
            if (*d < '0' || *d > '9')
                return false;
            n = n * 10 + (*d - '0');
        }
        if (n > max)
            return false;
    }
    int bits = max == 32 ? 96 + n : n;
    mask(&a, bits);
    out->net = a;
    out->bits = bits;
    return true;
}

bool cm_cidr_contains(const struct cm_cidr *r, const struct cm_ip *a)
{
    struct cm_ip m = *a;
    mask(&m, r->bits);
    return cm_ip_equal(&m, &r->net);
}
