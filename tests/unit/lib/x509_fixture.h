/* Certificates made in memory for unit tests (test_tls_ctx, test_certstore):
 * one place that knows how to build a leaf or CA with OpenSSL. Include
 * after <cmocka.h>. Static inline: a test that uses part of it gets no
 * unused-function warning. */
#ifndef ALBD_TESTS_UNIT_X509_FIXTURE_H
#define ALBD_TESTS_UNIT_X509_FIXTURE_H

#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <string.h>

static inline void ut_add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

/* A certificate for key with subject CN=cn and SAN (comma list of
 * "DNS:..." or NULL), valid from an hour ago for days days, signed by
 * issuer/issuer_key (self-signed when NULL; Ed25519 signers sign without
 * a digest). A CA gets basicConstraints CA:TRUE and keyCertSign. */
static inline X509 *ut_make_cert(EVP_PKEY *key, const char *cn, const char *san, X509 *issuer,
                                 EVP_PKEY *issuer_key, bool ca, long days)
{
    static long serial = 1;
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400L * days);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509_set_pubkey(x, key);
    ut_add_ext(x, issuer ? issuer : x, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
    if (ca)
        ut_add_ext(x, issuer ? issuer : x, NID_key_usage, "critical,keyCertSign,cRLSign");
    if (san)
        ut_add_ext(x, issuer ? issuer : x, NID_subject_alt_name, san);
    EVP_PKEY *signer = issuer_key ? issuer_key : key;
    bool eddsa = EVP_PKEY_get_base_id(signer) == EVP_PKEY_ED25519;
    assert_true(X509_sign(x, signer, eddsa ? NULL : EVP_sha256()) > 0);
    return x;
}

/* The contents of memory BIO b as a string (b is freed). */
static inline char *ut_bio_str(BIO *b)
{
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *s = strndup(data, (size_t)n);
    BIO_free(b);
    assert_non_null(s);
    return s;
}

/* leaf, then chain1 if not NULL, as PEM (malloc'd). */
static inline char *ut_pem_certs(X509 *leaf, X509 *chain1)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509(b, leaf), 1);
    if (chain1)
        assert_int_equal(PEM_write_bio_X509(b, chain1), 1);
    return ut_bio_str(b);
}

#endif
