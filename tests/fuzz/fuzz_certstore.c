/* Fuzz target: a certificate file and a key file through the certificate
 * store (reconciler/certstore.c), as `albd validate` and a reload parse
 * them: the PEM chain (parsed in a library context with no algorithms),
 * the certificate's public key (decoded by the store's kept decoder), the
 * private key (fast path by PEM label and PKCS#8 algorithm, else OpenSSL's
 * generic reader), the facts, then the objects decoded again from the DER
 * the entry keeps, as the first handshake selecting it does.
 *
 * Input: byte 0 flags (bit 0: the certificate part is DER, wrapped here
 * as one PEM CERTIFICATE block; bit 1: the key part is DER, wrapped as a
 * PEM PRIVATE KEY block, or EC PRIVATE KEY with bit 2), so that the
 * fuzzer mutates the DER itself rather than its base64; a big-endian
 * 16-bit length n; n bytes of certificate; the rest the key (none when
 * empty).
 *
 * Asserts: no crash, no sanitizer report, no leak; every name an entry
 * read is lowercase, and its SNI names are not empty; an entry the parse
 * accepted decodes again at first use, in the default library context as
 * OpenSSL parses a certificate with its key, and what OpenSSL's own X509 says
 * there — the private key matches, self-signed, CA, the SHA-256
 * fingerprint, the public key's type and size — is what the store said. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
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

/* der (not empty) as one PEM block labelled name, malloc'd in *out; its
 * length. */
static size_t pem_wrap(const char *name, const uint8_t *der, size_t len, char **out)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL || PEM_write_bio(b, name, "", der, (long)len) <= 0)
        abort();
    char *p;
    long n = BIO_get_mem_data(b, &p);
    *out = malloc((size_t)n);
    if (*out == NULL)
        abort();
    memcpy(*out, p, (size_t)n);
    BIO_free(b);
    return (size_t)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    uint8_t flags = data[0];
    size_t n = (size_t)data[1] << 8 | data[2];
    if (n > size - 3)
        n = size - 3;
    size_t klen = size - 3 - n;
    const uint8_t *cdata = data + 3, *kdata = data + 3 + n;
    const char *cert = (const char *)cdata, *key = klen ? (const char *)kdata : NULL;
    char *cert_pem = NULL, *key_pem = NULL;
    if ((flags & 1) && n > 0) {
        n = pem_wrap("CERTIFICATE", cdata, n, &cert_pem);
        cert = cert_pem;
    }
    if ((flags & 2) && key != NULL) {
        klen = pem_wrap(flags & 4 ? "EC PRIVATE KEY" : "PRIVATE KEY", kdata, klen, &key_pem);
        key = key_pem;
    }
    struct rc_certstore_in in = {.cert_pem = cert, .cert_len = n, .key_pem = key, .key_len = klen};
    struct rc_cert_parsed *e = NULL;
    if (rc_certstore_acquire(&in, 1, &e) != 0) {
        free(cert_pem);
        OPENSSL_clear_free(key_pem, klen);
        return 0; /* out of memory */
    }
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
    free(cert_pem);
    OPENSSL_clear_free(key_pem, klen);
    return 0;
}
