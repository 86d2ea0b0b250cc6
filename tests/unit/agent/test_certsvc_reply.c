/* agent/certsvc_reply.c: a certificate-service reply is accepted only when
 * it has the API's shape, is for the ID asked, and carries a certificate
 * that parses, matches its key and is valid now; the reason otherwise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "agent/certsvc_reply.h"

static time_t now;

/* A self-signed EC certificate valid from now+nb to now+na (seconds), as
 * PEM; *key_pem its key (both malloc'd). With other_key, the key is
 * another one (does not match). */
static char *make_cert(long nb, long na, bool other_key, char **key_pem)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    EVP_PKEY *k2 = other_key ? EVP_EC_gen("P-256") : NULL;
    assert_non_null(k);
    X509 *x = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_time_adj_ex(X509_getm_notBefore(x), 0, nb, &now);
    X509_time_adj_ex(X509_getm_notAfter(x), 0, na, &now);
    X509_set_pubkey(x, k);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"www.test", -1, -1, 0);
    X509_set_issuer_name(x, n);
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    char *p;
    long len = BIO_get_mem_data(b, &p);
    char *cert = strndup(p, (size_t)len);
    BIO_free(b);
    b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, k2 ? k2 : k, NULL, NULL, 0, NULL, NULL);
    len = BIO_get_mem_data(b, &p);
    *key_pem = strndup(p, (size_t)len);
    BIO_free(b);
    X509_free(x);
    EVP_PKEY_free(k);
    EVP_PKEY_free(k2);
    return cert;
}

/* The JSON text of a reply (malloc'd). */
static char *reply(const char *id, const char *version, const char *cert, const char *key)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", id, "version", version, "notAfter",
                          "2030-01-01T00:00:00Z", "certificate", cert, "privateKey", key);
    char *s = json_dumps(o, 0);
    json_decref(o);
    return s;
}

static enum ag_certsvc_result parse(const char *body, const char *id, struct ag_cert_reply *r,
                                    char *err, size_t errlen)
{
    err[0] = '\0';
    return ag_cert_reply_parse(body, strlen(body), id, now, r, err, errlen);
}

static void test_valid_reply(void **state)
{
    char *key, *cert = make_cert(-60, 86400, false, &key);
    char *body = reply("www", "v7", cert, key);
    struct ag_cert_reply r;
    char err[256];
    assert_int_equal(parse(body, "www", &r, err, sizeof err), AG_CS_UPDATED);
    assert_string_equal(r.version, "v7");
    assert_int_equal(r.cert_len, strlen(cert));
    assert_memory_equal(r.cert_pem, cert, r.cert_len);
    assert_int_equal(r.key_len, strlen(key));
    assert_memory_equal(r.key_pem, key, r.key_len);
    assert_true(r.not_after > now + 86000 && r.not_after <= now + 86400);
    assert_true(r.not_before <= now);
    ag_cert_reply_cleanup(&r);
    assert_null(r.key_pem);
    assert_null(r.cert_pem);
    free(body);
    free(cert);
    free(key);
}

static void test_refusals(void **state)
{
    char *key, *cert = make_cert(-60, 86400, false, &key);
    char *okey, *mcert = make_cert(-60, 86400, true, &okey);
    char *ekey, *expired = make_cert(-7200, -3600, false, &ekey);
    char *fkey, *future = make_cert(3600, 7200, false, &fkey);
    char *bodies[32];
    size_t nb = 0;
    struct {
        const char *body;
        const char *id;
        enum ag_certsvc_result want;
    } cases[] = {
        {"", "www", AG_CS_MALFORMED},
        {"{", "www", AG_CS_MALFORMED},
        {"[]", "www", AG_CS_MALFORMED},
        {"\"www\"", "www", AG_CS_MALFORMED},
        {"{\"id\": \"www\"}", "www", AG_CS_MALFORMED},
        {"{\"id\": 1, \"version\": \"1\", \"notAfter\": \"x\", \"certificate\": \"\", "
         "\"privateKey\": \"\"}",
         "www", AG_CS_MALFORMED},
        {"{\"id\": \"www\", \"id\": \"www\", \"version\": \"1\", \"notAfter\": \"x\", "
         "\"certificate\": \"\", \"privateKey\": \"\"}",
         "www", AG_CS_MALFORMED}, /* duplicate member */
        {bodies[nb++] = reply("www2", "1", cert, key), "www", AG_CS_WRONG_ID},
        {bodies[nb++] = reply("ww", "1", cert, key), "www", AG_CS_WRONG_ID},
        {bodies[nb++] = reply("WWW", "1", cert, key), "www", AG_CS_WRONG_ID},
        {bodies[nb++] = reply("www", "", cert, key), "www", AG_CS_MALFORMED},
        {bodies[nb++] = reply("www", "a\"b", cert, key), "www", AG_CS_MALFORMED},
        {bodies[nb++] = reply("www", "a b", cert, key), "www", AG_CS_MALFORMED},
        {bodies[nb++] = reply("www", "1", "not a certificate", key), "www", AG_CS_BAD_PEM},
        {bodies[nb++] = reply("www", "1", cert, "not a key"), "www", AG_CS_BAD_PEM},
        {bodies[nb++] = reply("www", "1", key, cert), "www", AG_CS_BAD_PEM},
        {bodies[nb++] = reply("www", "1", mcert, okey), "www", AG_CS_KEY_MISMATCH},
        {bodies[nb++] = reply("www", "1", cert, okey), "www", AG_CS_KEY_MISMATCH},
        {bodies[nb++] = reply("www", "1", expired, ekey), "www", AG_CS_EXPIRED},
        {bodies[nb++] = reply("www", "1", future, fkey), "www", AG_CS_NOT_YET_VALID},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct ag_cert_reply r;
        char err[256];
        enum ag_certsvc_result got = parse(cases[i].body, cases[i].id, &r, err, sizeof err);
        if (got != cases[i].want)
            fail_msg("case %zu: got %s, want %s (%s)", i, ag_certsvc_result_name(got),
                     ag_certsvc_result_name(cases[i].want), err);
        assert_true(err[0] != '\0');       /* a reason */
        assert_null(strstr(err, "BEGIN")); /* never any PEM */
        assert_null(r.key_pem);            /* nothing kept */
        assert_null(r.cert_pem);
        assert_null(r.version);
    }
    for (size_t i = 0; i < nb; i++)
        free(bodies[i]);
    free(cert), free(key), free(mcert), free(okey), free(expired), free(ekey), free(future),
        free(fkey);
}

static void test_too_large(void **state)
{
    struct ag_cert_reply r;
    char err[128];
    assert_int_equal(
        ag_cert_reply_parse("{}", AG_CERTSVC_MAX_REPLY + 1, "www", now, &r, err, sizeof err),
        AG_CS_TOO_LARGE);
}

static void test_result_names(void **state)
{
    for (int i = 0; i < AG_CS_N_RESULTS; i++) {
        const char *a = ag_certsvc_result_name((enum ag_certsvc_result)i);
        assert_non_null(a);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(a, ag_certsvc_result_name((enum ag_certsvc_result)j));
    }
    assert_string_equal(ag_certsvc_result_name(AG_CS_UPDATED), "updated");
    assert_string_equal(ag_certsvc_result_name(AG_CS_N_RESULTS), "internal");
}

int main(void)
{
    now = time(NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_reply),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_result_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
