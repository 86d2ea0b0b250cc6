/* The store of parsed certificates (certstore.c): byte-identical inputs
 * share one entry and are parsed once; a changed key or certificate is a
 * new entry; an entry lives while referenced and a sweep frees it after;
 * every key format the fast decoder takes gives the key OpenSSL's generic
 * reader gives, and the ones it does not take still parse (or fail) as
 * before; the facts that need the certificate's public key (which the
 * store decodes itself) are OpenSSL's own; a large batch parses on
 * several threads with duplicates collapsed. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "../lib/x509_fixture.h"
#include "reconciler/certstore.h"
#include "test_files.h"

/* ---- certificate factory ------------------------------------------------ */

static EVP_PKEY *key_ec(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    return k;
}

enum key_form { PKCS8, TRADITIONAL, ECPARAMS_FIRST, PKCS8_ENCRYPTED, TRADITIONAL_ENCRYPTED };

static char *pem_key(EVP_PKEY *k, enum key_form form)
{
    BIO *b = BIO_new(BIO_s_mem());
    switch (form) {
    case PKCS8:
        assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
        break;
    case ECPARAMS_FIRST:
        BIO_puts(b,
                 "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n");
        /* fall through */
    case TRADITIONAL:
        assert_int_equal(PEM_write_bio_PrivateKey_traditional(b, k, NULL, NULL, 0, NULL, NULL), 1);
        break;
    case PKCS8_ENCRYPTED:
        assert_int_equal(
            PEM_write_bio_PKCS8PrivateKey(b, k, EVP_aes_128_cbc(), NULL, 0, NULL, "secret"), 1);
        break;
    case TRADITIONAL_ENCRYPTED:
        assert_int_equal(
            PEM_write_bio_PrivateKey_traditional(b, k, EVP_aes_128_cbc(), NULL, 0, NULL, "secret"),
            1);
        break;
    }
    return ut_bio_str(b);
}

static struct rc_certstore_in input(const char *cert, const char *key)
{
    return (struct rc_certstore_in){.cert_pem = cert,
                                    .cert_len = cert ? strlen(cert) : 0,
                                    .key_pem = key,
                                    .key_len = key ? strlen(key) : 0};
}

/* A fresh P-256 key (*k, the caller frees it) and the PEM of a 90-day
 * certificate for name. */
static char *ec_cert(const char *name, EVP_PKEY **k)
{
    *k = key_ec();
    X509 *x = ut_make_cert(*k, name, NULL, NULL, NULL, false, 90);
    char *pem = ut_pem_certs(x, NULL);
    X509_free(x);
    return pem;
}

/* Frees what a batch test made: n certificate and key PEMs and keys. */
static void free_batch(char **certs, char **keys, EVP_PKEY **k, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(certs[i]);
        free(keys[i]);
        EVP_PKEY_free(k[i]);
    }
}

static struct rc_cert_parsed *acquire1(const char *cert, const char *key)
{
    struct rc_certstore_in in = input(cert, key);
    struct rc_cert_parsed *e = NULL;
    assert_int_equal(rc_certstore_acquire(&in, 1, &e), 0);
    assert_non_null(e);
    return e;
}

/* e's objects, decoded on demand (rc_cert_parsed_objects()). */
static const struct rc_cert_objects *objs(struct rc_cert_parsed *e)
{
    const struct rc_cert_objects *o = rc_cert_parsed_objects(e);
    assert_non_null(o);
    return o;
}

static size_t parsed_count(void)
{
    struct rc_certstore_stats st;
    rc_certstore_stats(&st);
    return st.parsed;
}

static size_t entry_count(void)
{
    struct rc_certstore_stats st;
    rc_certstore_stats(&st);
    return st.entries;
}

static int teardown(void **state)
{
    (void)state;
    rc_certstore_sweep();
    return entry_count() == 0 ? 0 : -1; /* a test left a reference */
}

/* ---- tests -------------------------------------------------------------- */

static void test_identical_inputs_share_one_parse(void **state)
{
    (void)state;
    EVP_PKEY *k = key_ec();
    X509 *x = ut_make_cert(k, "a.example", "DNS:A.example,DNS:*.b.example,DNS:*bad*.example", NULL,
                           NULL, false, 90);
    char *cert = ut_pem_certs(x, NULL), *key = pem_key(k, PKCS8);
    /* A second copy of the same bytes at another address. */
    char *cert2 = strdup(cert), *key2 = strdup(key);
    size_t before = parsed_count();

    struct rc_cert_parsed *e1 = acquire1(cert, key);
    struct rc_cert_parsed *e2 = acquire1(cert2, key2);
    assert_ptr_equal(e1, e2);
    assert_int_equal(parsed_count(), before + 1);
    assert_int_equal(e1->status, RC_CERT_PARSE_OK);
    assert_non_null(objs(e1)->leaf);
    assert_null(objs(e1)->chain);
    assert_int_equal(EVP_PKEY_eq(objs(e1)->pkey, k), 1);
    assert_int_equal(X509_cmp(objs(e1)->leaf, x), 0);
    /* Facts as the validator shows them: every DNS name, lowercased. */
    assert_int_equal(e1->n_dns_names, 3);
    assert_string_equal(e1->dns_names[0], "a.example");
    assert_string_equal(e1->dns_names[2], "*bad*.example");
    /* Names SNI selects by: the invalid wildcard is not one. */
    assert_int_equal(e1->n_tls_names, 2);
    assert_string_equal(e1->tls_names[0], "a.example");
    assert_string_equal(e1->tls_names[1], "*.b.example");
    assert_string_equal(e1->subject, "CN=a.example");
    assert_int_equal(strlen(e1->fingerprint_sha256), 64);
    assert_int_equal(e1->pub_base_id, EVP_PKEY_EC);
    assert_int_equal(e1->pub_bits, 256);
    assert_int_equal(e1->curve_nid, NID_X9_62_prime256v1);
    assert_false(e1->is_ca);

    /* The id given by the caller is trusted: a lookup without the PEM. */
    struct rc_certstore_in by_id = {.id = e1->id};
    struct rc_cert_parsed *e3 = NULL;
    assert_int_equal(rc_certstore_acquire(&by_id, 1, &e3), 0);
    assert_ptr_equal(e3, e1);
    assert_int_equal(parsed_count(), before + 1);

    rc_cert_parsed_unref(e1);
    rc_cert_parsed_unref(e2);
    rc_cert_parsed_unref(e3);
    free(cert);
    free(key);
    free(cert2);
    free(key2);
    X509_free(x);
    EVP_PKEY_free(k);
}

static void test_entry_lives_while_referenced(void **state)
{
    (void)state;
    EVP_PKEY *k = key_ec();
    X509 *x = ut_make_cert(k, "live.example", NULL, NULL, NULL, false, 90);
    char *cert = ut_pem_certs(x, NULL), *key = pem_key(k, PKCS8);
    rc_certstore_sweep();
    size_t base = entry_count();

    struct rc_cert_parsed *e = acquire1(cert, key);
    struct rc_cert_parsed *again = rc_cert_parsed_ref(e);
    assert_int_equal(entry_count(), base + 1);
    rc_cert_parsed_unref(e);
    assert_int_equal(rc_certstore_sweep(), 0); /* one reference left */
    assert_int_equal(entry_count(), base + 1);
    assert_int_equal(X509_cmp(objs(again)->leaf, x), 0); /* still usable */
    rc_cert_parsed_unref(again);
    /* Unreferenced, it waits for the sweep: found again without a parse. */
    size_t before = parsed_count();
    struct rc_cert_parsed *back = acquire1(cert, key);
    assert_ptr_equal(back, again);
    assert_int_equal(parsed_count(), before);
    rc_cert_parsed_unref(back);
    assert_int_equal(rc_certstore_sweep(), 1);
    assert_int_equal(entry_count(), base);
    /* After the sweep, the same bytes are parsed again. */
    struct rc_cert_parsed *fresh = acquire1(cert, key);
    assert_int_equal(parsed_count(), before + 1);
    assert_int_equal(fresh->status, RC_CERT_PARSE_OK);
    rc_cert_parsed_unref(fresh);
    free(cert);
    free(key);
    X509_free(x);
    EVP_PKEY_free(k);
}

static void test_changed_input_is_a_new_entry(void **state)
{
    (void)state;
    EVP_PKEY *k1 = key_ec(), *k2 = key_ec();
    X509 *x1 = ut_make_cert(k1, "renew.example", "DNS:renew.example", NULL, NULL, false, 90);
    X509 *x2 = ut_make_cert(k2, "renew.example", "DNS:renew.example", NULL, NULL, false, 90);
    char *c1 = ut_pem_certs(x1, NULL), *c2 = ut_pem_certs(x2, NULL);
    char *p1 = pem_key(k1, PKCS8), *p2 = pem_key(k2, PKCS8);

    struct rc_cert_parsed *old = acquire1(c1, p1);
    struct rc_cert_parsed *renewed = acquire1(c2, p2);
    struct rc_cert_parsed *mismatch = acquire1(c1, p2);
    struct rc_cert_parsed *no_key = acquire1(c1, NULL);
    assert_ptr_not_equal(old, renewed);
    assert_ptr_not_equal(old, mismatch);
    assert_ptr_not_equal(old, no_key);
    assert_int_not_equal(memcmp(old->id, renewed->id, RC_CERTSTORE_ID_LEN), 0);
    assert_int_equal(old->status, RC_CERT_PARSE_OK);
    assert_int_equal(renewed->status, RC_CERT_PARSE_OK);
    assert_int_equal(EVP_PKEY_eq(objs(renewed)->pkey, k2), 1);
    assert_int_equal(mismatch->status, RC_CERT_PARSE_KEY_MISMATCH);
    assert_null(rc_cert_parsed_objects(mismatch)); /* nothing a context may serve */
    assert_int_equal(no_key->status, RC_CERT_PARSE_OK);
    assert_null(objs(no_key)->pkey);
    assert_int_equal(X509_cmp(objs(no_key)->leaf, x1), 0);

    rc_cert_parsed_unref(old);
    rc_cert_parsed_unref(renewed);
    rc_cert_parsed_unref(mismatch);
    rc_cert_parsed_unref(no_key);
    free(c1);
    free(c2);
    free(p1);
    free(p2);
    X509_free(x1);
    X509_free(x2);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
}

/* Every form the fast decoder reads gives the same key; encrypted and
 * malformed keys fail as OpenSSL's generic reader fails them. */
static void test_key_forms(void **state)
{
    (void)state;
    EVP_PKEY *ec = key_ec();
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(rsa);
    assert_non_null(ed);
    EVP_PKEY *keys[] = {ec, rsa, ed};
    for (size_t i = 0; i < 3; i++) {
        X509 *x = ut_make_cert(keys[i], "k.example", NULL, NULL, NULL, false, 90);
        char *cert = ut_pem_certs(x, NULL);
        enum key_form forms[] = {PKCS8, TRADITIONAL, ECPARAMS_FIRST, PKCS8_ENCRYPTED,
                                 TRADITIONAL_ENCRYPTED};
        for (size_t f = 0; f < 5; f++) {
            if (keys[i] == ed && (forms[f] == TRADITIONAL || forms[f] == ECPARAMS_FIRST ||
                                  forms[f] == TRADITIONAL_ENCRYPTED))
                continue; /* EdDSA keys have no traditional form */
            char *key = pem_key(keys[i], forms[f]);
            struct rc_cert_parsed *e = acquire1(cert, key);
            bool encrypted = forms[f] == PKCS8_ENCRYPTED || forms[f] == TRADITIONAL_ENCRYPTED;
            assert_int_equal(e->status, encrypted ? RC_CERT_PARSE_BAD_KEY : RC_CERT_PARSE_OK);
            if (!encrypted)
                assert_int_equal(EVP_PKEY_eq(objs(e)->pkey, keys[i]), 1);
            rc_cert_parsed_unref(e);
            free(key);
        }
        struct rc_cert_parsed *bad = acquire1(cert, "-----BEGIN PRIVATE KEY-----\nAAAA\n"
                                                    "-----END PRIVATE KEY-----\n");
        assert_int_equal(bad->status, RC_CERT_PARSE_BAD_KEY);
        rc_cert_parsed_unref(bad);
        free(cert);
        X509_free(x);
    }
    struct rc_cert_parsed *none = acquire1("not a certificate", NULL);
    assert_int_equal(none->status, RC_CERT_PARSE_NO_CERT);
    assert_null(rc_cert_parsed_objects(none));
    rc_cert_parsed_unref(none);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ed);
}

static void test_chain_and_ca_facts(void **state)
{
    (void)state;
    EVP_PKEY *cak = key_ec(), *k = key_ec();
    X509 *ca = ut_make_cert(cak, "Test CA", NULL, NULL, NULL, true, 90);
    X509 *leaf = ut_make_cert(k, "Leaf.example", NULL, ca, cak, false, 90);
    char *cert = ut_pem_certs(leaf, ca), *key = pem_key(k, PKCS8), *ca_pem = ut_pem_certs(ca, NULL);
    struct rc_cert_parsed *e = acquire1(cert, key);
    assert_int_equal(e->status, RC_CERT_PARSE_OK);
    assert_non_null(objs(e)->chain);
    assert_int_equal(sk_X509_num(objs(e)->chain), 1);
    assert_int_equal(X509_cmp(sk_X509_value(objs(e)->chain, 0), ca), 0);
    assert_int_equal(X509_cmp(objs(e)->leaf, leaf), 0);
    assert_string_equal(e->issuer, "CN=Test CA");
    /* No SAN: the CN, lowercased for the validator and for SNI. */
    assert_int_equal(e->n_dns_names, 1);
    assert_string_equal(e->dns_names[0], "leaf.example");
    assert_int_equal(e->n_tls_names, 1);
    assert_string_equal(e->tls_names[0], "leaf.example");
    struct rc_cert_parsed *c = acquire1(ca_pem, NULL);
    assert_true(c->is_ca);
    assert_true(c->self_signed);
    rc_cert_parsed_unref(e);
    rc_cert_parsed_unref(c);
    free(cert);
    free(key);
    free(ca_pem);
    X509_free(ca);
    X509_free(leaf);
    EVP_PKEY_free(cak);
    EVP_PKEY_free(k);
}

/* What OpenSSL's own X509, parsed in the default library context with its
 * public key, says of cert: the store parses certificates without their
 * public key and decodes it itself, so each fact that needs the key must
 * come out the same. */
static void assert_facts_as_openssl(const char *cert, EVP_PKEY *right, EVP_PKEY *wrong)
{
    BIO *b = BIO_new_mem_buf(cert, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_non_null(x);
    uint32_t flags = X509_get_extension_flags(x);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    assert_int_equal(X509_digest(x, EVP_sha256(), md, &mdlen), 1);
    char hex[65] = "";
    for (unsigned i = 0; i < mdlen && i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    const EVP_PKEY *pub = X509_get0_pubkey(x);
    assert_non_null(pub);

    char *key = pem_key(right, PKCS8), *other = pem_key(wrong, PKCS8);
    struct rc_cert_parsed *e = acquire1(cert, key), *m = acquire1(cert, other);
    assert_int_equal(e->status, RC_CERT_PARSE_OK);
    assert_int_equal(X509_check_private_key(x, right), 1);
    assert_int_equal(m->status, RC_CERT_PARSE_KEY_MISMATCH);
    assert_int_equal(e->self_signed, (flags & EXFLAG_SS) != 0);
    assert_int_equal(e->is_ca, (flags & EXFLAG_CA) != 0);
    assert_string_equal(e->fingerprint_sha256, hex);
    assert_int_equal(e->pub_base_id, EVP_PKEY_get_base_id(pub));
    assert_int_equal(e->pub_bits, EVP_PKEY_get_bits(pub));
    assert_int_equal(m->pub_base_id, EVP_PKEY_get_base_id(pub));
    rc_cert_parsed_unref(e);
    rc_cert_parsed_unref(m);
    free(key);
    free(other);
    X509_free(x);
}

/* x re-signed by key (after extensions were added), with RSA-PSS padding
 * when pss. */
static void resign(X509 *x, EVP_PKEY *key, bool pss)
{
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    bool eddsa = EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519;
    assert_int_equal(EVP_DigestSignInit(mc, &pc, eddsa ? NULL : EVP_sha256(), NULL, key), 1);
    if (pss)
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING), 1);
    assert_true(X509_sign_ctx(x, mc) > 0);
    EVP_MD_CTX_free(mc);
}

static void test_facts_match_openssl(void **state)
{
    (void)state;
    EVP_PKEY *p256 = key_ec(), *p384 = EVP_EC_gen("P-384"), *rsa = EVP_RSA_gen(2048),
             *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"), *other = key_ec();
    assert_non_null(p384);
    assert_non_null(rsa);
    assert_non_null(ed);
    EVP_PKEY *self[] = {p256, p384, rsa, ed};
    for (size_t i = 0; i < 4; i++) {
        /* Self-signed, a leaf and a CA: OpenSSL flags both self-signed. */
        for (int ca = 0; ca < 2; ca++) {
            X509 *x = ut_make_cert(self[i], "self.example", NULL, NULL, NULL, ca, 90);
            char *pem = ut_pem_certs(x, NULL);
            assert_facts_as_openssl(pem, self[i], other);
            free(pem);
            X509_free(x);
        }
    }
    /* Signed by a CA: neither self-issued nor self-signed. */
    X509 *ca = ut_make_cert(rsa, "Facts CA", NULL, NULL, NULL, true, 90);
    X509 *leaf = ut_make_cert(p256, "leaf.example", NULL, ca, rsa, false, 90);
    char *pem = ut_pem_certs(leaf, ca);
    assert_facts_as_openssl(pem, p256, other);
    free(pem);
    X509_free(leaf);
    /* Self-issued (its issuer's name is its own) but signed with an RSA
     * algorithm while its key is EC: not self-signed. */
    X509 *same = ut_make_cert(rsa, "same.example", NULL, NULL, NULL, true, 90);
    leaf = ut_make_cert(p256, "same.example", NULL, same, rsa, false, 90);
    pem = ut_pem_certs(leaf, NULL);
    assert_facts_as_openssl(pem, p256, other);
    free(pem);
    X509_free(leaf);
    /* Self-issued, an algorithm of its key's type, but its authority key
     * identifier names another key: not self-signed. */
    X509 *named = ut_make_cert(p384, "same.example", NULL, NULL, NULL, true, 90);
    ut_add_ext(named, named, NID_subject_key_identifier, "hash");
    resign(named, p384, false);
    leaf = ut_make_cert(p256, "same.example", NULL, named, p384, false, 90);
    ut_add_ext(leaf, named, NID_subject_key_identifier, "hash");
    ut_add_ext(leaf, named, NID_authority_key_identifier, "keyid:always");
    resign(leaf, p384, false);
    pem = ut_pem_certs(leaf, NULL);
    assert_facts_as_openssl(pem, p256, other);
    free(pem);
    X509_free(leaf);
    /* ... and naming its own key: self-signed. */
    ut_add_ext(named, named, NID_authority_key_identifier, "keyid:always");
    resign(named, p384, false);
    pem = ut_pem_certs(named, NULL);
    assert_facts_as_openssl(pem, p384, other);
    free(pem);
    /* An RSA key signing with RSA-PSS: self-signed (OpenSSL's one
     * exception to "the algorithm is the key's type"). */
    X509 *pss = ut_make_cert(rsa, "pss.example", NULL, NULL, NULL, false, 90);
    resign(pss, rsa, true);
    pem = ut_pem_certs(pss, NULL);
    assert_facts_as_openssl(pem, rsa, other);
    free(pem);
    X509_free(pss);
    X509_free(named);
    X509_free(same);
    X509_free(ca);
    EVP_PKEY_free(p256);
    EVP_PKEY_free(p384);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(other);
}

/* A certificate whose subject CN and subjectAltName hold a NUL byte
 * (found by the certstore fuzz harness: the lowercased copy was shorter
 * than the name's length and was written past its end). The names read
 * stop at the NUL, and none of them selects by SNI. */
static void test_names_with_nul(void **state)
{
    (void)state;
    EVP_PKEY *k = key_ec();
    static const char cn[] = "A\0B.example", dns[] = "WWW\0evil.example";
    for (int with_san = 0; with_san < 2; with_san++) {
        X509 *x = ut_make_cert(k, "placeholder", NULL, NULL, NULL, false, 90);
        X509_NAME *name = X509_NAME_new();
        assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                    (const unsigned char *)cn, sizeof cn - 1, -1,
                                                    0),
                         1);
        assert_int_equal(X509_set_subject_name(x, name), 1);
        X509_NAME_free(name);
        if (with_san) {
            GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
            GENERAL_NAME *g = GENERAL_NAME_new();
            ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
            assert_int_equal(ASN1_STRING_set(ia5, dns, sizeof dns - 1), 1);
            GENERAL_NAME_set0_value(g, GEN_DNS, ia5);
            sk_GENERAL_NAME_push(gens, g);
            assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, 0), 1);
            GENERAL_NAMES_free(gens);
        }
        assert_true(X509_sign(x, k, EVP_sha256()) > 0);
        char *cert = ut_pem_certs(x, NULL), *key = pem_key(k, PKCS8);
        struct rc_cert_parsed *e = acquire1(cert, key);
        assert_int_equal(e->status, RC_CERT_PARSE_OK);
        assert_int_equal(e->n_dns_names, 1);
        assert_string_equal(e->dns_names[0], with_san ? "www" : "a");
        assert_int_equal(e->n_tls_names, 0);
        rc_cert_parsed_unref(e);
        free(cert);
        free(key);
        X509_free(x);
    }
    EVP_PKEY_free(k);
}

/* A batch large enough for the parse threads, with each input twice. */
static void test_batch_parses_in_parallel(void **state)
{
    (void)state;
    enum { N = 48 };
    char *certs[N], *keys[N];
    struct rc_certstore_in in[2 * N];
    struct rc_cert_parsed *out[2 * N];
    EVP_PKEY *k[N];
    for (size_t i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof name, "h%zu.example", i);
        certs[i] = ec_cert(name, &k[i]);
        keys[i] = pem_key(k[i], i % 2 ? PKCS8 : TRADITIONAL);
        in[i] = input(certs[i], keys[i]);
        in[N + i] = input(certs[i], keys[i]);
    }
    size_t before = parsed_count(), entries = entry_count();
    assert_int_equal(rc_certstore_acquire(in, 2 * N, out), 0);
    assert_int_equal(entry_count(), entries + N);
    assert_true(parsed_count() >= before + N);
    for (size_t i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof name, "h%zu.example", i);
        assert_ptr_equal(out[i], out[N + i]);
        assert_int_equal(out[i]->status, RC_CERT_PARSE_OK);
        assert_string_equal(out[i]->tls_names[0], name);
        assert_int_equal(EVP_PKEY_eq(objs(out[i])->pkey, k[i]), 1);
    }
    for (size_t i = 0; i < 2 * N; i++)
        rc_cert_parsed_unref(out[i]);
    assert_int_equal(rc_certstore_sweep(), N);
    free_batch(certs, keys, k, N);
}

/* Two parses of the same input agree on every fact. */
static void assert_same_parse(const struct rc_cert_parsed *a, const struct rc_cert_parsed *b)
{
    assert_int_equal(a->status, b->status);
    if (a->status == RC_CERT_PARSE_NO_CERT)
        return;
    assert_string_equal(a->subject, b->subject);
    assert_string_equal(a->issuer, b->issuer);
    assert_int_equal(a->n_dns_names, b->n_dns_names);
    for (size_t i = 0; i < a->n_dns_names; i++)
        assert_string_equal(a->dns_names[i], b->dns_names[i]);
    assert_int_equal(a->n_tls_names, b->n_tls_names);
    assert_int_equal(a->not_before, b->not_before);
    assert_int_equal(a->not_after, b->not_after);
    assert_string_equal(a->fingerprint_sha256, b->fingerprint_sha256);
    assert_int_equal(a->pub_base_id, b->pub_base_id);
    assert_int_equal(a->pub_bits, b->pub_bits);
    assert_int_equal(a->key_base_id, b->key_base_id);
    assert_int_equal(a->key_bits, b->key_bits);
    assert_int_equal(a->curve_nid, b->curve_nid);
    assert_int_equal(a->is_ca, b->is_ca);
    assert_int_equal(a->self_signed, b->self_signed);
    assert_int_equal(a->weak_hash, b->weak_hash);
}

/* A batch on several threads parses each in a library context of the
 * thread's own: every outcome (keys of each type and form, a chain, a
 * mismatched, an encrypted and a missing key, PEM blocks before the
 * certificate, no certificate at all) comes out as it does parsed alone
 * on the calling thread in the default context, and the objects decoded
 * later from the batch's entries are the right ones. */
static void test_threads_parse_as_one_does(void **state)
{
    (void)state;
    enum { N = 45, CASES = 9 };
    char *certs[N], *keys[N];
    EVP_PKEY *k[N];
    struct rc_certstore_in in[N];
    struct rc_cert_parsed *alone[N], *batch[N];
    EVP_PKEY *rsa = EVP_RSA_gen(2048), *cak = key_ec();
    assert_non_null(rsa);
    X509 *ca = ut_make_cert(cak, "Batch CA", NULL, NULL, NULL, true, 90);
    for (size_t i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof name, "t%zu.example", i);
        keys[i] = NULL;
        k[i] = NULL;
        X509 *x = NULL;
        switch (i % CASES) {
        case 0: /* PKCS#8 */
        case 4: /* another certificate's key */
        case 5: /* an encrypted key */
            certs[i] = ec_cert(name, &k[i]);
            keys[i] =
                pem_key(i % CASES == 4 ? cak : k[i], i % CASES == 5 ? PKCS8_ENCRYPTED : PKCS8);
            break;
        case 1: /* EC PARAMETERS, then the traditional key */
            certs[i] = ec_cert(name, &k[i]);
            keys[i] = pem_key(k[i], ECPARAMS_FIRST);
            break;
        case 2: /* RSA, traditional */
            EVP_PKEY_up_ref(rsa);
            k[i] = rsa;
            x = ut_make_cert(rsa, name, NULL, NULL, NULL, false, 90);
            certs[i] = ut_pem_certs(x, NULL);
            keys[i] = pem_key(rsa, TRADITIONAL);
            break;
        case 3: /* Ed25519 */
            k[i] = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
            x = ut_make_cert(k[i], name, NULL, NULL, NULL, false, 90);
            certs[i] = ut_pem_certs(x, NULL);
            keys[i] = pem_key(k[i], PKCS8);
            break;
        case 6: /* a leaf and its CA */
            k[i] = key_ec();
            x = ut_make_cert(k[i], name, NULL, ca, cak, false, 90);
            certs[i] = ut_pem_certs(x, ca);
            keys[i] = pem_key(k[i], PKCS8);
            break;
        case 7: { /* another PEM block first (skipped), then a CA, no key */
            EVP_PKEY *ck = key_ec();
            x = ut_make_cert(ck, name, NULL, NULL, NULL, true, 90);
            char *pem = ut_pem_certs(x, NULL);
            const char *params =
                "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n";
            certs[i] = malloc(strlen(params) + strlen(pem) + 1);
            assert_non_null(certs[i]);
            strcpy(certs[i], params);
            strcat(certs[i], pem);
            free(pem);
            EVP_PKEY_free(ck);
            break;
        }
        default: /* no certificate */
            certs[i] = malloc(64);
            assert_non_null(certs[i]);
            snprintf(certs[i], 64, "not a certificate %zu", i);
            break;
        }
        X509_free(x);
        in[i] = input(certs[i], keys[i]);
    }
    /* One at a time (below the size that starts threads), facts only;
     * then all at once on threads, a TLS context's acquire, which never
     * takes a facts-only entry: each input parsed both ways. */
    for (size_t i = 0; i < N; i++)
        assert_int_equal(rc_certstore_acquire_facts(&in[i], 1, &alone[i]), 0);
    size_t before = parsed_count();
    assert_int_equal(rc_certstore_acquire(in, N, batch), 0);
    assert_int_equal(parsed_count(), before + N);
    for (size_t i = 0; i < N; i++) {
        assert_ptr_not_equal(alone[i], batch[i]);
        assert_same_parse(alone[i], batch[i]);
        enum rc_cert_parse want = i % CASES == 4   ? RC_CERT_PARSE_KEY_MISMATCH
                                  : i % CASES == 5 ? RC_CERT_PARSE_BAD_KEY
                                  : i % CASES == 8 ? RC_CERT_PARSE_NO_CERT
                                                   : RC_CERT_PARSE_OK;
        assert_int_equal(batch[i]->status, want);
        if (want != RC_CERT_PARSE_OK)
            continue;
        /* Made again in the default context from what the batch kept. */
        const struct rc_cert_objects *o = objs(batch[i]);
        BIO *bio = BIO_new_mem_buf(certs[i], -1);
        X509 *leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        BIO_free(bio);
        assert_non_null(leaf);
        assert_int_equal(X509_cmp(o->leaf, leaf), 0);
        X509_free(leaf);
        assert_int_equal(o->chain ? sk_X509_num(o->chain) : 0, i % CASES == 6 ? 1 : 0);
        if (k[i] != NULL)
            assert_int_equal(EVP_PKEY_eq(o->pkey, k[i]), 1);
        else
            assert_null(o->pkey);
    }
    assert_string_equal(batch[6]->issuer, "CN=Batch CA");
    assert_int_equal(batch[2]->pub_base_id, EVP_PKEY_RSA);
    assert_int_equal(batch[3]->key_base_id, EVP_PKEY_ED25519);
    assert_true(batch[7]->is_ca);
    for (size_t i = 0; i < N; i++) {
        rc_cert_parsed_unref(alone[i]);
        rc_cert_parsed_unref(batch[i]);
    }
    assert_int_equal(rc_certstore_sweep(), 2 * N);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(cak);
    X509_free(ca);
    free_batch(certs, keys, k, N);
}

/* A one-shot load's batch (rc_certstore_acquire_facts()): the facts, with
 * no OpenSSL object kept; a TLS context's acquire never takes such an
 * entry (it parses the input again), while a facts acquire takes a full
 * entry that is there. */
static void test_facts_only_batch(void **state)
{
    (void)state;
    enum { N = 40 };
    char *certs[N], *keys[N];
    struct rc_certstore_in in[N];
    struct rc_cert_parsed *facts[N], *full[N], *again[N];
    EVP_PKEY *k[N];
    for (size_t i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof name, "f%zu.example", i);
        certs[i] = ec_cert(name, &k[i]);
        /* The last one's key is another's: the mismatch is still found. */
        keys[i] = pem_key(i == N - 1 ? k[0] : k[i], PKCS8);
        in[i] = input(certs[i], keys[i]);
    }
    size_t before = parsed_count(), entries = entry_count();
    assert_int_equal(rc_certstore_acquire_facts(in, N, facts), 0);
    assert_int_equal(parsed_count(), before + N);
    assert_int_equal(entry_count(), entries + N);
    for (size_t i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof name, "f%zu.example", i);
        assert_true(facts[i]->facts_only);
        assert_null(facts[i]->der);
        assert_null(facts[i]->key_der);
        assert_null(rc_cert_parsed_objects(facts[i]));
        assert_int_equal(facts[i]->status,
                         i == N - 1 ? RC_CERT_PARSE_KEY_MISMATCH : RC_CERT_PARSE_OK);
        assert_string_equal(facts[i]->dns_names[0], name);
        assert_int_equal(strlen(facts[i]->fingerprint_sha256), 64);
        assert_int_equal(facts[i]->pub_bits, 256);
        assert_true(facts[i]->not_after > facts[i]->not_before);
    }
    /* A TLS context's acquire: parsed again, objects kept, same facts. */
    assert_int_equal(rc_certstore_acquire(in, N, full), 0);
    assert_int_equal(parsed_count(), before + 2 * N);
    for (size_t i = 0; i < N; i++) {
        assert_ptr_not_equal(full[i], facts[i]);
        assert_false(full[i]->facts_only);
        assert_string_equal(full[i]->fingerprint_sha256, facts[i]->fingerprint_sha256);
        if (i < N - 1)
            assert_int_equal(EVP_PKEY_eq(objs(full[i])->pkey, k[i]), 1);
    }
    /* Facts again: found in the store, nothing parsed. */
    assert_int_equal(rc_certstore_acquire_facts(in, N, again), 0);
    assert_int_equal(parsed_count(), before + 2 * N);
    for (size_t i = 0; i < N; i++) {
        rc_cert_parsed_unref(facts[i]);
        rc_cert_parsed_unref(full[i]);
        rc_cert_parsed_unref(again[i]);
    }
    assert_int_equal(rc_certstore_sweep(), 2 * N);
    free_batch(certs, keys, k, N);
}

/* Parsing ahead (rc_certstore_ahead_start()): the certificates of files
 * are parsed into the store on another thread; the acquire that follows
 * stops it and parses only what it had not done, so every input is parsed
 * exactly once; ending it without an acquire leaves entries nobody
 * references (a sweep frees them). */
static void test_parse_ahead(void **state)
{
    (void)state;
    enum { N = 64 };
    char dir[256], name[64];
    assert_int_equal(tf_mkdtemp(dir, sizeof dir, "ahead"), 0);
    char *certs[N], *keys[N], *cpaths[N], *kpaths[N];
    struct rc_certstore_in in[N];
    struct rc_cert_parsed *out[N];
    EVP_PKEY *k[N];
    for (size_t i = 0; i < N; i++) {
        snprintf(name, sizeof name, "a%zu.example", i);
        certs[i] = ec_cert(name, &k[i]);
        keys[i] = pem_key(k[i], i % 2 ? PKCS8 : TRADITIONAL);
        snprintf(name, sizeof name, "a%zu.crt", i);
        tf_put(dir, name, certs[i]);
        assert_true(asprintf(&cpaths[i], "%s/%s", dir, name) > 0);
        snprintf(name, sizeof name, "a%zu.key", i);
        tf_put(dir, name, keys[i]);
        assert_true(asprintf(&kpaths[i], "%s/%s", dir, name) > 0);
        in[i] = input(certs[i], keys[i]);
    }
    /* A path that cannot be read is left to the load. */
    free(kpaths[N - 1]);
    assert_true(asprintf(&kpaths[N - 1], "%s/missing.key", dir) > 0);

    size_t before = parsed_count(), entries = entry_count();
    struct rc_certstore_ahead *a = rc_certstore_ahead_start((const char *const *)cpaths,
                                                            (const char *const *)kpaths, N, false);
    /* (NULL on one core: then the acquire parses everything.) */
    assert_int_equal(rc_certstore_acquire(in, N, out), 0);
    assert_int_equal(parsed_count(), before + N); /* none twice */
    assert_int_equal(entry_count(), entries + N);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(out[i]->status, RC_CERT_PARSE_OK);
        assert_false(out[i]->facts_only);
        assert_int_equal(EVP_PKEY_eq(objs(out[i])->pkey, k[i]), 1);
        rc_cert_parsed_unref(out[i]);
    }
    rc_certstore_ahead_end(a);
    assert_int_equal(rc_certstore_sweep(), N);

    /* Ended without an acquire: what it parsed waits for a sweep. */
    before = parsed_count();
    a = rc_certstore_ahead_start((const char *const *)cpaths, (const char *const *)kpaths, N, true);
    rc_certstore_ahead_end(a);
    assert_int_equal(rc_certstore_sweep(), parsed_count() - before);
    assert_int_equal(entry_count(), entries);

    free_batch(certs, keys, k, N);
    for (size_t i = 0; i < N; i++) {
        free(cpaths[i]);
        free(kpaths[i]);
    }
    assert_int_equal(tf_rm_rf(dir), 0);
}

static size_t decoded_count(void)
{
    struct rc_certstore_stats st;
    rc_certstore_stats(&st);
    return st.decoded;
}

struct first_use {
    struct rc_cert_parsed *e;
    pthread_barrier_t *go;
    const struct rc_cert_objects *got;
};

static void *first_use_thread(void *arg)
{
    struct first_use *u = arg;
    pthread_barrier_wait(u->go);
    u->got = rc_cert_parsed_objects(u->e);
    return NULL;
}

/* An acquired entry holds no OpenSSL object, only DER, until something
 * asks for its objects: then the leaf, chain and key are decoded, match
 * a fresh parse of the PEM, and stay (the next caller gets the same
 * objects, nothing decoded again). Two threads asking at once get one
 * published set (the other decode is freed: ASan sees no leak). */
static void test_objects_on_first_use(void **state)
{
    (void)state;
    enum { N = 12 };
    EVP_PKEY *cak = key_ec();
    X509 *ca = ut_make_cert(cak, "Lazy CA", NULL, NULL, NULL, true, 90);
    for (size_t i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof name, "lazy%zu.example", i);
        EVP_PKEY *k = i % 3 == 2 ? EVP_RSA_gen(2048) : key_ec();
        X509 *x = ut_make_cert(k, name, NULL, ca, cak, false, 90);
        char *cert = ut_pem_certs(x, ca), *key = pem_key(k, i % 2 ? PKCS8 : TRADITIONAL);
        size_t decoded = decoded_count();
        struct rc_cert_parsed *e = acquire1(cert, key);
        assert_int_equal(e->status, RC_CERT_PARSE_OK);
        /* Nothing decoded yet: DER only. */
        assert_null(rc_cert_parsed_peek(e));
        assert_non_null(e->der);
        assert_non_null(e->key_der);
        assert_int_equal(decoded_count(), decoded);
        assert_int_equal(e->key_base_id, i % 3 == 2 ? EVP_PKEY_RSA : EVP_PKEY_EC);
        assert_int_equal(e->key_bits, i % 3 == 2 ? 2048 : 256);

        pthread_barrier_t go;
        assert_int_equal(pthread_barrier_init(&go, NULL, 2), 0);
        struct first_use u[2] = {{.e = e, .go = &go}, {.e = e, .go = &go}};
        pthread_t t[2];
        for (int j = 0; j < 2; j++)
            assert_int_equal(pthread_create(&t[j], NULL, first_use_thread, &u[j]), 0);
        for (int j = 0; j < 2; j++)
            assert_int_equal(pthread_join(t[j], NULL), 0);
        pthread_barrier_destroy(&go);
        assert_non_null(u[0].got);
        assert_ptr_equal(u[0].got, u[1].got);
        assert_ptr_equal(rc_cert_parsed_peek(e), u[0].got);
        size_t after = decoded_count();
        assert_true(after >= decoded + 1 && after <= decoded + 2);
        assert_ptr_equal(rc_cert_parsed_objects(e), u[0].got);
        assert_int_equal(decoded_count(), after);

        /* The same objects a fresh parse of the PEM gives. */
        const struct rc_cert_objects *o = u[0].got;
        BIO *b = BIO_new_mem_buf(cert, -1);
        X509 *fresh = PEM_read_bio_X509(b, NULL, NULL, NULL);
        X509 *fresh_ca = PEM_read_bio_X509(b, NULL, NULL, NULL);
        BIO_free(b);
        assert_int_equal(X509_cmp(o->leaf, fresh), 0);
        assert_int_equal(sk_X509_num(o->chain), 1);
        assert_int_equal(X509_cmp(sk_X509_value(o->chain, 0), fresh_ca), 0);
        assert_int_equal(EVP_PKEY_eq(o->pkey, k), 1);
        assert_int_equal(X509_check_private_key(o->leaf, o->pkey), 1);
        X509_free(fresh);
        X509_free(fresh_ca);

        rc_cert_parsed_unref(e);
        free(cert);
        free(key);
        X509_free(x);
        EVP_PKEY_free(k);
    }
    X509_free(ca);
    EVP_PKEY_free(cak);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_identical_inputs_share_one_parse, teardown),
        cmocka_unit_test_teardown(test_entry_lives_while_referenced, teardown),
        cmocka_unit_test_teardown(test_changed_input_is_a_new_entry, teardown),
        cmocka_unit_test_teardown(test_key_forms, teardown),
        cmocka_unit_test_teardown(test_chain_and_ca_facts, teardown),
        cmocka_unit_test_teardown(test_facts_match_openssl, teardown),
        cmocka_unit_test_teardown(test_names_with_nul, teardown),
        cmocka_unit_test_teardown(test_batch_parses_in_parallel, teardown),
        cmocka_unit_test_teardown(test_threads_parse_as_one_does, teardown),
        cmocka_unit_test_teardown(test_facts_only_batch, teardown),
        cmocka_unit_test_teardown(test_parse_ahead, teardown),
        cmocka_unit_test_teardown(test_objects_on_first_use, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
