/* proxy/tls_headers.c: which client-certificate headers a client may not
 * send, what albd sends instead, and the domain-fronting check over a real
 * handshake (BIO pair, no sockets). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "proxy/tls_ctx.h"
#include "proxy/tls_headers.h"

#define H(n, v)                                                                                    \
    {                                                                                              \
        n, sizeof(n) - 1, v, sizeof(v) - 1                                                         \
    }

static bool has(const struct px_hdr *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (h[i].name_len == strlen(name) && !strncmp(h[i].name, name, h[i].name_len))
            return true;
    return false;
}

static void test_reserved_default_names(void **state)
{
    (void)state;
    /* Whatever the listener does, the reference's names are never
     * accepted from a client, in any case. */
    assert_true(px_tls_header_reserved(NULL, "X-Forwarded-Clientcert-subjectdn", 32));
    assert_true(px_tls_header_reserved(NULL, "x-forwarded-clientcert-ISSUERDN", 31));
    assert_true(px_tls_header_reserved(NULL, "X-Forwarded-Clientcert-fingerprint", 34));
    assert_true(px_tls_header_reserved(NULL, "X-FORWARDED-CLIENTCERT-CLIENTVERIFY", 35));
    assert_false(px_tls_header_reserved(NULL, "X-Forwarded-Clientcert", 22));
    assert_false(px_tls_header_reserved(NULL, "X-Forwarded-Clientcert-subjectdnx", 33));
    assert_false(px_tls_header_reserved(NULL, "X-Forwarded-For", 15));
    /* A prefix of a reserved name is not reserved. */
    assert_false(px_tls_header_reserved(NULL, "X-Forwarded-Clientcert-subjectdn", 31));
}

static void test_strip_keeps_order(void **state)
{
    (void)state;
    struct rc_listener l = {0};
    l.client_cert_headers.subject_dn = "x-client-dn"; /* an alias */
    struct px_hdr h[] = {
        H("Host", "a.test"),
        H("X-Client-DN", "CN=forged"),
        H("Accept", "*/*"),
        H("x-forwarded-clientcert-subjectdn", "CN=forged"),
        H("X-Forwarded-Clientcert-clientverify", "SUCCESS"),
        H("User-Agent", "t"),
    };
    size_t n = px_tls_headers_strip(&l, h, 6);
    assert_int_equal(n, 3);
    assert_memory_equal(h[0].name, "Host", 4);
    assert_memory_equal(h[1].name, "Accept", 6);
    assert_memory_equal(h[2].name, "User-Agent", 10);

    /* Disabled headers: the default names still go, others stay. */
    struct px_hdr h2[] = {H("X-Client-DN", "v"), H("X-Forwarded-Clientcert-issuerdn", "v")};
    assert_int_equal(px_tls_headers_strip(NULL, h2, 2), 1);
    assert_memory_equal(h2[0].name, "X-Client-DN", 11);
}

static void test_fill(void **state)
{
    (void)state;
    struct rc_listener l = {0};
    struct px_client_cert cc = {.present = true};
    strcpy(cc.subject_dn, "CN=client");
    strcpy(cc.issuer_dn, "CN=ca");
    strcpy(cc.fingerprint, "ab01");
    strcpy(cc.verify, "SUCCESS");
    struct px_hdr out[PX_TLS_HDR_MAX];
    assert_false(px_tls_headers_enabled(&l));
    assert_int_equal(px_tls_headers_fill(&l, &cc, out), 0);

    l.client_cert_headers.subject_dn = "X-Forwarded-Clientcert-subjectdn";
    l.client_cert_headers.fingerprint = "x-fp";
    l.client_cert_headers.client_verify = "X-Forwarded-Clientcert-clientverify";
    assert_true(px_tls_headers_enabled(&l));
    size_t n = px_tls_headers_fill(&l, &cc, out);
    assert_int_equal(n, 3);
    assert_true(has(out, n, "X-Forwarded-Clientcert-subjectdn"));
    assert_true(has(out, n, "x-fp"));
    assert_false(has(out, n, "X-Forwarded-Clientcert-issuerdn"));
    assert_int_equal(out[0].value_len, strlen("CN=client"));
    assert_memory_equal(out[0].value, "CN=client", out[0].value_len);
    assert_memory_equal(out[1].value, "ab01", 4);
    assert_memory_equal(out[2].value, "SUCCESS", 7);

    /* No certificate: only the verify result, "NONE". */
    struct px_client_cert none = {.present = false};
    strcpy(none.verify, "NONE");
    n = px_tls_headers_fill(&l, &none, out);
    assert_int_equal(n, 1);
    assert_memory_equal(out[0].name, "X-Forwarded-Clientcert-clientverify", 35);
    assert_memory_equal(out[0].value, "NONE", 4);
}

static void test_check_needed(void **state)
{
    (void)state;
    struct rc_listener l = {0};
    l.protocol = RC_LISTENER_HTTPS;
    assert_false(px_tls_host_check_needed(&l));
    l.tls.strict_sni = true;
    assert_true(px_tls_host_check_needed(&l));
    l.tls.strict_sni = false;
    l.tls.mutual.enabled = true;
    assert_true(px_tls_host_check_needed(&l));
    l.protocol = RC_LISTENER_HTTP;
    assert_false(px_tls_host_check_needed(&l));
    assert_false(px_tls_host_check_needed(NULL));
}

/* ---- a real handshake for px_tls_check_request -------------------------- */

static char *to_pem(X509 *x, EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_non_null(b);
    if (x)
        assert_int_equal(PEM_write_bio_X509(b, x), 1);
    else
        assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *s = strndup(data, (size_t)n);
    assert_non_null(s);
    BIO_free(b);
    return s;
}

/* A self-signed ECDSA certificate for www.example.com and *.api.example.com. */
static void make_cert(char **cert_pem, char **key_pem)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"www.example.com",
                               -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_set_pubkey(x, k);
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name,
                                              "DNS:www.example.com,DNS:*.api.example.com");
    assert_non_null(ext);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);
    *cert_pem = to_pem(x, NULL);
    *key_pem = to_pem(NULL, k);
    X509_free(x);
    EVP_PKEY_free(k);
}

static bool want(SSL *s, int rc)
{
    int e = SSL_get_error(s, rc);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

static void test_check_request(void **state)
{
    (void)state;
    struct rc_certificate cert = {0};
    char *cp, *kp;
    make_cert(&cp, &kp);
    cert.meta.name = "www";
    cert.type = RC_CERT_SERVER;
    cert.cert_pem = cp;
    cert.cert_pem_len = strlen(cp);
    cert.key_pem = kp;
    cert.key_pem_len = strlen(kp);
    struct rc_tls_policy pol = {.meta = {.name = "p"},
                                .system = true,
                                .versions = RC_TLS_1_2 | RC_TLS_1_3,
                                .cipher_list = "ECDHE-ECDSA-AES128-GCM-SHA256",
                                .ciphersuites = "TLS_AES_128_GCM_SHA256"};
    struct rc_listener l = {0};
    l.meta.name = "l";
    l.protocol = RC_LISTENER_HTTPS;
    l.tls.certificate = &cert;
    l.tls.policy = &pol;
    l.tls.strict_sni = true;
    char err[256] = "";
    SSL_CTX *sctx = px_tls_ctx_new(&l, NULL, false, err, sizeof err);
    if (!sctx)
        print_error("%s\n", err);
    assert_non_null(sctx);
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(cctx);
    SSL *c = SSL_new(cctx), *s = SSL_new(sctx);
    assert_non_null(c);
    assert_non_null(s);
    BIO *bc, *bs;
    assert_int_equal(BIO_new_bio_pair(&bc, 0, &bs, 0), 1);
    SSL_set_bio(c, bc, bc);
    SSL_set_bio(s, bs, bs);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    SSL_set_tlsext_host_name(c, "www.example.com");
    bool cd = false, sd = false;
    for (int i = 0; i < 50 && !(cd && sd); i++) {
        int r;
        if (!cd && ((r = SSL_do_handshake(c)) == 1 || !want(c, r)))
            cd = r == 1;
        if (!sd && ((r = SSL_do_handshake(s)) == 1 || !want(s, r)))
            sd = r == 1;
    }
    assert_true(cd && sd);

    struct px_hdr ok[] = {H("Host", "www.example.com:443")};
    struct px_hdr wild[] = {H("host", "v1.api.example.com")};
    struct px_hdr other[] = {H("Host", "evil.example.net")};
    struct px_hdr two[] = {H("Host", "www.example.com"), H("Host", "evil.example.net")};
    struct px_hdr none[] = {H("Accept", "*/*")};
    assert_int_equal(px_tls_check_request(s, "/", 1, ok, 1), 0);
    assert_int_equal(px_tls_check_request(s, "/x", 2, wild, 1), 0);
    assert_int_equal(px_tls_check_request(s, "/", 1, other, 1), 421);
    assert_int_equal(px_tls_check_request(s, "/", 1, two, 2), 421);
    assert_int_equal(px_tls_check_request(s, "/", 1, none, 1), 421);
    assert_int_equal(px_tls_check_request(s, NULL, 0, ok, 1), 0);
    /* Absolute-form targets: their authority counts too (userinfo aside). */
    const char *t1 = "https://evil.example.net/x";
    assert_int_equal(px_tls_check_request(s, t1, strlen(t1), ok, 1), 421);
    const char *t2 = "https://u:p@www.example.com:443/x?y=1";
    assert_int_equal(px_tls_check_request(s, t2, strlen(t2), ok, 1), 0);
    const char *t3 = "http://a.api.example.com";
    assert_int_equal(px_tls_check_request(s, t3, strlen(t3), none, 1), 0);
    const char *t4 = "/path?u=https://evil.example.net/";
    assert_int_equal(px_tls_check_request(s, t4, strlen(t4), ok, 1), 0);
    /* No SSL at all (plain bytes on a strict listener): never covered. */
    assert_int_equal(px_tls_check_request(NULL, "/", 1, ok, 1), 421);

    SSL_free(c);
    SSL_free(s);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    free(cp);
    OPENSSL_cleanse(kp, strlen(kp));
    free(kp);
    ERR_clear_error();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reserved_default_names),
        cmocka_unit_test(test_strip_keeps_order),
        cmocka_unit_test(test_fill),
        cmocka_unit_test(test_check_needed),
        cmocka_unit_test(test_check_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
