/* Fuzz target: a certificate file and a key file through the certificate
 * store (reconciler/certstore.c), as `albd validate` and a reload parse
 * them: the PEM chain (parsed in a library context with no algorithms),
 * the certificate's public key (decoded by the store's kept decoder), the
 * private key (fast path by PEM label and PKCS#8 algorithm, else OpenSSL's
 * generic reader), the facts, then the objects decoded again from the DER
 * the entry keeps, as the first handshake selecting it does.
 *
 * Input: a big-endian 16-bit length n, n bytes of certificate PEM, the
 * rest the key PEM (none when empty).
 *
 * Asserts: no crash, no sanitizer report, no leak; every entry's names
 * are lowercase, non-empty and NUL-free; an entry the parse accepted
 * decodes again at first use, in the default library context as OpenSSL
 * parses a certificate with its key, and what OpenSSL's own X509 says
 * there — the private key matches, self-signed, CA, the SHA-256
 * fingerprint, the public key's type and size — is what the store said. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "reconciler/certstore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *s = names[i];
        if (s == NULL)
            abort();
        for (const char *p = s; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                abort();
    }
}

/* e (status OK) against OpenSSL's own reading of the DER it kept. */
static void check_objects(struct rc_cert_parsed *e, bool has_key)
{
    const struct rc_cert_objects *o = rc_cert_parsed_objects(e);
    if (o == NULL || o->leaf == NULL || (o->pkey != NULL) != has_key)
        abort();
    if (o->pkey != NULL && X509_check_private_key(o->leaf, o->pkey) != 1)
        abort();
    uint32_t flags = X509_get_extension_flags(o->leaf);
    if (e->self_signed != ((flags & EXFLAG_SS) != 0) || e->is_ca != ((flags & EXFLAG_CA) != 0))
        abort();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char hex[65] = "";
    if (X509_digest(o->leaf, EVP_sha256(), md, &mdlen) == 1)
        for (unsigned i = 0; i < mdlen && i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", md[i]);
    if (strcmp(hex, e->fingerprint_sha256) != 0)
        abort();
    const EVP_PKEY *pub = X509_get0_pubkey(o->leaf);
    int base = pub ? EVP_PKEY_get_base_id(pub) : 0, bits = pub ? EVP_PKEY_get_bits(pub) : 0;
    if (e->pub_base_id != base || e->pub_bits != bits)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t n = (size_t)data[0] << 8 | data[1];
    if (n > size - 2)
        n = size - 2;
    size_t klen = size - 2 - n;
    struct rc_certstore_in in = {.cert_pem = (const char *)data + 2,
                                 .cert_len = n,
                                 .key_pem = klen ? (const char *)data + 2 + n : NULL,
                                 .key_len = klen};
    struct rc_cert_parsed *e = NULL;
    if (rc_certstore_acquire(&in, 1, &e) != 0)
        return 0; /* out of memory */
    if (e == NULL)
        abort();
    switch (e->status) {
    case RC_CERT_PARSE_OK:
    case RC_CERT_PARSE_BAD_KEY:
    case RC_CERT_PARSE_KEY_MISMATCH:
        if (e->subject == NULL || e->issuer == NULL)
            abort();
        check_names(e->dns_names, e->n_dns_names);
        check_names(e->tls_names, e->n_tls_names);
        for (size_t i = 0; i < e->n_tls_names; i++)
            if (e->tls_names[i][0] == '\0')
                abort();
        if (e->status == RC_CERT_PARSE_OK)
            check_objects(e, klen > 0);
        break;
    case RC_CERT_PARSE_NO_CERT:
        if (rc_cert_parsed_objects(e) != NULL)
            abort();
        break;
    default:
        abort();
    }
    rc_cert_parsed_unref(e);
    rc_certstore_sweep();
    return 0;
}
