/* Certificate name rules (see sni.h). Written against the reference's
 * wildcard rules rather than RFC 6125 where they differ: '*' may be
 * followed by more characters of its label ("*test.example.com"), but
 * never preceded by any. */
#include "proxy/sni.h"

#include <string.h>

#include "reconciler/names.h"

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

bool px_sni_wildcard_valid(const char *pattern)
{
    return rc_wildcard_valid(pattern);
}

bool px_sni_match_n(const char *pattern, const char *host, size_t host_len)
{
    if (pattern == NULL || host == NULL)
        return false;
    if (host_len > 0 && host[host_len - 1] == '.')
        host_len--;
    if (host_len == 0 || host_len > PX_SNI_NAME_MAX)
        return false;

    size_t plen = strlen(pattern);
    if (pattern[0] != '*')
        return plen == host_len && eq_nocase(pattern, host, plen);
    if (!px_sni_wildcard_valid(pattern))
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

bool px_sni_match(const char *pattern, const char *host)
{
    return host != NULL && px_sni_match_n(pattern, host, strlen(host));
}

int px_sni_normalize(const char *host, size_t host_len, char *out, size_t outsz)
{
    if (host == NULL || out == NULL)
        return -1;
    if (host_len > 0 && host[host_len - 1] == '.')
        host_len--;
    if (host_len == 0 || host_len > PX_SNI_NAME_MAX || host_len >= outsz)
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

/* ---- the choice --------------------------------------------------------- */

static bool list_has(const unsigned char *list, size_t len, unsigned lo, unsigned hi)
{
    for (size_t i = 0; i + 1 < len; i += 2) {
        unsigned v = ((unsigned)list[i] << 8) | list[i + 1];
        if (v >= lo && v <= hi)
            return true;
    }
    return false;
}

/* An ECDSA signature scheme with any hash (TLS 1.2: 0x0203 sha1 ... 0x0603
 * sha512; the low byte 3 is "ecdsa"). */
static bool any_ecdsa_scheme(const unsigned char *list, size_t len)
{
    for (size_t i = 0; i + 1 < len; i += 2)
        if (list[i + 1] == 3 && list[i] >= 2 && list[i] <= 6)
            return true;
    return false;
}

static bool any_rsa_scheme(const unsigned char *list, size_t len)
{
    for (size_t i = 0; i + 1 < len; i += 2)
        if (list[i + 1] == 1 && list[i] >= 2 && list[i] <= 6)
            return true;
    return list_has(list, len, 0x0804, 0x0806); /* rsa_pss_rsae_* */
}

bool px_sni_key_usable(const struct px_sni_hello *h, enum px_sni_key key)
{
    if (h == NULL)
        return false;
    const unsigned char *sa = h->sigalgs;
    size_t n = h->sigalgs_len;
    if (h->tls13) {
        if (sa == NULL)
            return false; /* mandatory in TLS 1.3 */
        switch (key) {
        case PX_SNI_KEY_RSA:
            return list_has(sa, n, 0x0804, 0x0806);
        case PX_SNI_KEY_RSA_PSS:
            return list_has(sa, n, 0x0809, 0x080b);
        case PX_SNI_KEY_P256:
            return list_has(sa, n, 0x0403, 0x0403);
        case PX_SNI_KEY_P384:
            return list_has(sa, n, 0x0503, 0x0503);
        case PX_SNI_KEY_P521:
            return list_has(sa, n, 0x0603, 0x0603);
        case PX_SNI_KEY_ED25519:
            return list_has(sa, n, 0x0807, 0x0807);
        case PX_SNI_KEY_ED448:
            return list_has(sa, n, 0x0808, 0x0808);
        default:
            return false;
        }
    }
    unsigned group = 0;
    switch (key) {
    case PX_SNI_KEY_RSA:
        return h->suite_rsa && (sa == NULL || any_rsa_scheme(sa, n));
    case PX_SNI_KEY_RSA_PSS:
        return h->suite_rsa && (sa == NULL || list_has(sa, n, 0x0809, 0x080b));
    case PX_SNI_KEY_P256:
        group = 23;
        break;
    case PX_SNI_KEY_P384:
        group = 24;
        break;
    case PX_SNI_KEY_P521:
        group = 25;
        break;
    case PX_SNI_KEY_ED25519:
        return h->suite_ecdsa && sa != NULL && list_has(sa, n, 0x0807, 0x0807);
    case PX_SNI_KEY_ED448:
        return h->suite_ecdsa && sa != NULL && list_has(sa, n, 0x0808, 0x0808);
    default:
        return false;
    }
    return h->suite_ecdsa && (sa == NULL || any_ecdsa_scheme(sa, n)) &&
           (h->groups == NULL || list_has(h->groups, h->groups_len, group, group));
}

bool px_sni_cand_better(const struct px_sni_cand *a, const struct px_sni_cand *b)
{
    if (b == NULL)
        return true;
    if (a->usable != b->usable)
        return a->usable;
    if (a->exact != b->exact)
        return a->exact;
    if (a->rsa != b->rsa)
        return !a->rsa;
    if (a->weak_hash != b->weak_hash)
        return !a->weak_hash;
    if (a->bits != b->bits)
        return a->bits > b->bits;
    return a->not_after > b->not_after;
}

int px_sni_choose(const struct px_sni_cand *c, size_t n)
{
    int best = -1;
    for (size_t i = 0; i < n; i++)
        if (c[i].usable && (best < 0 || px_sni_cand_better(&c[i], &c[best])))
            best = (int)i;
    return best;
}
