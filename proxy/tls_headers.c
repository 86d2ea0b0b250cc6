/* Client-certificate headers and the domain-fronting check (see
 * tls_headers.h). */
#include "proxy/tls_headers.h"

#include <string.h>
#include <strings.h>

#include "proxy/tls_ctx.h"

/* The reference's names: a client may never send these, whatever the
 * listener calls the headers it sends. */
static const char *const default_names[PX_TLS_HDR_MAX] = {
    "X-Forwarded-Clientcert-subjectdn",
    "X-Forwarded-Clientcert-issuerdn",
    "X-Forwarded-Clientcert-fingerprint",
    "X-Forwarded-Clientcert-clientverify",
};

/* '_' counts as '-' (px_header_name_eq): X_Forwarded_Clientcert_subjectdn
 * is the same variable to a CGI-style gateway. */
static bool name_is(const char *name, size_t len, const char *lit)
{
    return lit != NULL && px_header_name_eq(name, len, lit, strlen(lit));
}

/* The listener's names, in default_names order (NULL: disabled). */
static void listener_names(const struct rc_listener *l, const char *out[PX_TLS_HDR_MAX])
{
    out[0] = l ? l->client_cert_headers.subject_dn : NULL;
    out[1] = l ? l->client_cert_headers.issuer_dn : NULL;
    out[2] = l ? l->client_cert_headers.fingerprint : NULL;
    out[3] = l ? l->client_cert_headers.client_verify : NULL;
}

bool px_tls_header_reserved(const struct rc_listener *l, const char *name, size_t len)
{
    const char *names[PX_TLS_HDR_MAX];
    listener_names(l, names);
    for (size_t i = 0; i < PX_TLS_HDR_MAX; i++)
        if (name_is(name, len, default_names[i]) || name_is(name, len, names[i]))
            return true;
    return false;
}

size_t px_tls_headers_strip(const struct rc_listener *l, struct px_hdr *h, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (px_tls_header_reserved(l, h[i].name, h[i].name_len))
            continue;
        if (k != i)
            h[k] = h[i];
        k++;
    }
    return k;
}

bool px_tls_headers_enabled(const struct rc_listener *l)
{
    const char *names[PX_TLS_HDR_MAX];
    listener_names(l, names);
    for (size_t i = 0; i < PX_TLS_HDR_MAX; i++)
        if (names[i] != NULL)
            return true;
    return false;
}

size_t px_tls_headers_fill(const struct rc_listener *l, const struct px_client_cert *cc,
                           struct px_hdr *out)
{
    const char *names[PX_TLS_HDR_MAX];
    listener_names(l, names);
    const char *values[PX_TLS_HDR_MAX] = {cc->subject_dn, cc->issuer_dn, cc->fingerprint,
                                          cc->verify};
    size_t k = 0;
    for (size_t i = 0; i < PX_TLS_HDR_MAX; i++) {
        if (names[i] == NULL || (!cc->present && i != 3))
            continue;
        out[k++] = (struct px_hdr){names[i], strlen(names[i]), values[i], strlen(values[i])};
    }
    return k;
}

bool px_tls_host_check_needed(const struct rc_listener *l)
{
    return l != NULL && l->protocol == RC_LISTENER_HTTPS &&
           (l->tls.mutual.enabled || l->tls.strict_sni);
}

/* The authority of an absolute-form target without its userinfo; false
 * for origin-form ("/path"), asterisk-form and anything else. */
static bool target_authority(const char *t, size_t len, const char **host, size_t *host_len)
{
    if (t == NULL || len == 0 || t[0] == '/' || t[0] == '*')
        return false;
    const char *sep = NULL;
    for (size_t i = 0; i + 2 < len; i++) {
        if (t[i] == ':' && t[i + 1] == '/' && t[i + 2] == '/') {
            sep = t + i + 3;
            break;
        }
        if (t[i] == '/' || t[i] == '?' || t[i] == '#')
            break;
    }
    if (sep == NULL)
        return false;
    const char *end = sep;
    while (end < t + len && *end != '/' && *end != '?' && *end != '#')
        end++;
    for (const char *p = end; p > sep; p--)
        if (p[-1] == '@') {
            sep = p;
            break;
        }
    *host = sep;
    *host_len = (size_t)(end - sep);
    return true;
}

int px_tls_check_request(SSL *ssl, const char *target, size_t target_len, const struct px_hdr *h,
                         size_t n)
{
    bool named = false;
    const char *a;
    size_t alen;
    if (target_authority(target, target_len, &a, &alen)) {
        if (!px_tls_host_allowed(ssl, a, alen))
            return 421;
        named = true;
    }
    for (size_t i = 0; i < n; i++) {
        if (!name_is(h[i].name, h[i].name_len, "host"))
            continue;
        if (!px_tls_host_allowed(ssl, h[i].value, h[i].value_len))
            return 421;
        named = true;
    }
    return named ? 0 : 421;
}
