/* Choosing among the certificates that cover a name (see sni.h). The
 * name rules themselves are common/hostname.c. */
#include "proxy/sni.h"

#include <stddef.h>

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
