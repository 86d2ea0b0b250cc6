/* proxy/sni.c: the reference's wildcard certificate rules, case by case. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/sni.h"

struct valid_case {
    const char *pattern;
    bool valid;
};

static void test_wildcard_valid(void **state)
{
    static const struct valid_case cases[] = {
        /* the reference's examples */
        {"*.example.com", true},
        {"*test.example.com", true},
        {"test*.example.com", false},
        /* one '*', leftmost label only */
        {"*.*.com", false},
        {"a.*.com", false},
        {"**.example.com", false},
        {"*a*.example.com", false},
        {"t*st.example.com", false},
        {"example.*", false},
        /* shape */
        {"*", false},
        {"*.", false},
        {"*..com", false},
        {"*.example..com", false},
        {"*.example.com.", false},
        {"*.com", true},
        {"*-api.example.com", true},
        {"*.EXAMPLE.com", true},
        {"*_x.example.com", false},
        /* not wildcards */
        {"www.example.com", false},
        {"", false},
        {NULL, false},
    };
    int failures = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool got = px_sni_wildcard_valid(cases[i].pattern);
        if (got != cases[i].valid) {
            print_error("px_sni_wildcard_valid(\"%s\") = %d, want %d\n",
                        cases[i].pattern ? cases[i].pattern : "(null)", got, cases[i].valid);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

struct match_case {
    const char *pattern;
    const char *host;
    bool match;
};

static void test_match(void **state)
{
    static const struct match_case cases[] = {
        /* the reference's examples */
        {"*.example.com", "test.example.com", true},
        {"*.example.com", "test.test.example.com", false},
        {"*.example.com", "xn--fsqu00a.example.com", true},
        {"*test.example.com", "xn--fsqu00atest.example.com", false},
        {"*.example.com", "test_test.example.com", false},
        /* '*' needs at least one character, of [0-9A-Za-z-] */
        {"*.example.com", "example.com", false},
        {"*.example.com", ".example.com", false},
        {"*test.example.com", "test.example.com", false},
        {"*test.example.com", "footest.example.com", true},
        {"*test.example.com", "a-1test.example.com", true},
        {"*test.example.com", "testfoo.example.com", false},
        {"*test.example.com", "foo_test.example.com", false},
        {"*.example.com", "a.example.com", true},
        {"*.example.com", "9.example.com", true},
        {"*.example.com", "-.example.com", true},
        {"*.example.com", "a b.example.com", false},
        {"*.example.com", "a*.example.com", false},
        /* IDNA labels and a '*' that is the whole label */
        {"*.example.com", "XN--FSQU00A.example.com", true},
        {"*test.example.com", "XN--abctest.example.com", false},
        {"*n--a.example.com", "xn--a.example.com", false},
        {"*x.example.com", "xn--ax.example.com", false},
        /* case-insensitive, trailing dot */
        {"*.Example.COM", "TEST.example.com", true},
        {"*TEST.example.com", "footest.EXAMPLE.com", true},
        {"*.example.com", "test.example.com.", true},
        {"www.example.com", "WWW.EXAMPLE.COM", true},
        {"www.example.com", "www.example.com.", true},
        /* exact names compare whole */
        {"www.example.com", "www.example.co", false},
        {"www.example.com", "www.example.com.au", false},
        {"www.example.com", "xwww.example.com", false},
        {"www.example.com", "", false},
        /* suffix must be equal, not merely a suffix */
        {"*.example.com", "a.badexample.com", false},
        {"*.example.com", "a.example.org", false},
        {"*.example.com", "a.example.com.evil.net", false},
        /* invalid patterns match nothing */
        {"test*.example.com", "test1.example.com", false},
        {"*.*.com", "a.b.com", false},
        {"a.*.com", "a.b.com", false},
        {"*", "localhost", false},
        /* a wildcard is not an exact name */
        {"*.example.com", "*.example.com", false},
        {"*.com", "example.com", true},
        {"*.com", "a.example.com", false},
    };
    int failures = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool got = px_sni_match(cases[i].pattern, cases[i].host);
        if (got != cases[i].match) {
            print_error("px_sni_match(\"%s\", \"%s\") = %d, want %d\n", cases[i].pattern,
                        cases[i].host, got, cases[i].match);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* host_len bounds the comparison: bytes past it are not part of the host. */
static void test_match_n_uses_length(void **state)
{
    const char *buf = "test.example.com:8443";
    assert_true(px_sni_match_n("*.example.com", buf, 16));
    assert_false(px_sni_match_n("*.example.com", buf, 15));
    assert_true(px_sni_match_n("test.example.com", buf, 16));
    assert_false(px_sni_match_n("test.example.com", buf, strlen(buf)));
}

static void test_too_long(void **state)
{
    char host[300];
    memset(host, 'a', sizeof host);
    memcpy(host + 254 - 12, ".example.com", 12);
    host[254] = '\0'; /* 254 characters: one too many */
    assert_false(px_sni_match("*.example.com", host));
    char out[300];
    assert_int_equal(px_sni_normalize(host, strlen(host), out, sizeof out), -1);
    assert_int_equal(px_sni_normalize(host + 1, strlen(host + 1), out, sizeof out), 253);
}

static void test_normalize(void **state)
{
    char out[64];
    assert_int_equal(px_sni_normalize("WWW.Example.COM.", 16, out, sizeof out), 15);
    assert_string_equal(out, "www.example.com");
    assert_int_equal(px_sni_normalize("under_score.test", 16, out, sizeof out), 16);
    assert_int_equal(px_sni_normalize("a..b", 4, out, sizeof out), -1);
    assert_int_equal(px_sni_normalize(".a", 2, out, sizeof out), -1);
    assert_int_equal(px_sni_normalize("", 0, out, sizeof out), -1);
    assert_int_equal(px_sni_normalize("*.a.b", 5, out, sizeof out), -1);
    assert_int_equal(px_sni_normalize("a b", 3, out, sizeof out), -1);
    assert_int_equal(px_sni_normalize("a\0b", 3, out, sizeof out), -1);
    assert_int_equal(px_sni_normalize("abcdef", 6, out, 6), -1); /* no room for the NUL */
}

/* ---- the choice among covering certificates ----------------------------- */

static const unsigned char SA13_BOTH[] = {0x04, 0x03, 0x08, 0x04};
static const unsigned char SA13_RSA[] = {0x08, 0x04, 0x04, 0x01};
static const unsigned char SA_EC256[] = {0x04, 0x03};
static const unsigned char SA12_BOTH[] = {0x04, 0x03, 0x04, 0x01};
static const unsigned char SA12_RSA[] = {0x04, 0x01, 0x08, 0x04};
static const unsigned char GROUPS_P256[] = {0x00, 0x1d, 0x00, 0x17};

/* The client capabilities of the table, as their ClientHellos say them. */
static const struct {
    const char *name;
    struct px_sni_hello h;
} clients[] = {
    {"1.3 both", {.tls13 = true, .sigalgs = SA13_BOTH, .sigalgs_len = sizeof SA13_BOTH}},
    {"1.3 RSA-only", {.tls13 = true, .sigalgs = SA13_RSA, .sigalgs_len = sizeof SA13_RSA}},
    {"1.3 ECDSA-only", {.tls13 = true, .sigalgs = SA_EC256, .sigalgs_len = sizeof SA_EC256}},
    {"1.2 both",
     {.sigalgs = SA12_BOTH,
      .sigalgs_len = sizeof SA12_BOTH,
      .suite_rsa = true,
      .suite_ecdsa = true}},
    {"1.2 RSA suites only",
     {.sigalgs = SA12_BOTH, .sigalgs_len = sizeof SA12_BOTH, .suite_rsa = true}},
    {"1.2 RSA sigalgs only",
     {.sigalgs = SA12_RSA, .sigalgs_len = sizeof SA12_RSA, .suite_rsa = true, .suite_ecdsa = true}},
    {"1.2 ECDSA suites only", {.suite_ecdsa = true}},
    {"1.2 both, P-256 group only",
     {.groups = GROUPS_P256,
      .groups_len = sizeof GROUPS_P256,
      .suite_rsa = true,
      .suite_ecdsa = true}},
};
#define N_CLIENTS (sizeof clients / sizeof clients[0])

struct cert_desc {
    bool exact;
    enum px_sni_key key;
    int bits;
};

struct choice_case {
    const char *what;
    struct cert_desc certs[3];
    size_t n;
    int want[N_CLIENTS]; /* index into certs, -1: none usable; in clients[] order */
};

static void test_choice_table(void **state)
{
    static const struct choice_case cases[] = {
        {"exact RSA vs ECDSA wildcard",
         {{true, PX_SNI_KEY_RSA, 2048}, {false, PX_SNI_KEY_P256, 256}},
         2,
         {0, 0, 1, 0, 0, 0, 1, 0}},
        {"exact ECDSA and exact RSA",
         {{true, PX_SNI_KEY_P256, 256}, {true, PX_SNI_KEY_RSA, 2048}},
         2,
         {0, 1, 0, 0, 1, 1, 0, 0}},
        {"ECDSA and RSA wildcards",
         {{false, PX_SNI_KEY_P256, 256}, {false, PX_SNI_KEY_RSA, 2048}},
         2,
         {0, 1, 0, 0, 1, 1, 0, 0}},
        {"exact ECDSA vs RSA wildcard",
         {{true, PX_SNI_KEY_P256, 256}, {false, PX_SNI_KEY_RSA, 2048}},
         2,
         {0, 1, 0, 0, 1, 1, 0, 0}},
        {"exact RSA, RSA wildcard, ECDSA wildcard",
         {{false, PX_SNI_KEY_RSA, 4096},
          {true, PX_SNI_KEY_RSA, 2048},
          {false, PX_SNI_KEY_P256, 256}},
         3,
         {1, 1, 2, 1, 1, 1, 2, 1}},
        {"only an ECDSA wildcard", {{false, PX_SNI_KEY_P256, 256}}, 1, {0, -1, 0, 0, -1, -1, 0, 0}},
        {"only an exact RSA", {{true, PX_SNI_KEY_RSA, 2048}}, 1, {0, 0, -1, 0, 0, 0, -1, 0}},
        {"two exact RSA: the longer key",
         {{true, PX_SNI_KEY_RSA, 2048}, {true, PX_SNI_KEY_RSA, 4096}},
         2,
         {1, 1, -1, 1, 1, 1, -1, 1}},
        {"P-384 and P-256: the curve the client signs with",
         {{true, PX_SNI_KEY_P384, 384}, {true, PX_SNI_KEY_P256, 256}},
         2,
         {1, -1, 1, 0, -1, -1, 0, 1}},
        {"Ed25519 is not offered by these clients",
         {{true, PX_SNI_KEY_ED25519, 253}, {false, PX_SNI_KEY_RSA, 2048}},
         2,
         {1, 1, -1, 1, 1, 1, -1, 1}},
    };
    int failures = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (size_t k = 0; k < N_CLIENTS; k++) {
            struct px_sni_cand c[3];
            for (size_t j = 0; j < cases[i].n; j++)
                c[j] = (struct px_sni_cand){
                    .exact = cases[i].certs[j].exact,
                    .rsa = cases[i].certs[j].key == PX_SNI_KEY_RSA,
                    .usable = px_sni_key_usable(&clients[k].h, cases[i].certs[j].key),
                    .bits = cases[i].certs[j].bits,
                    .not_after = 1000};
            int got = px_sni_choose(c, cases[i].n);
            if (got != cases[i].want[k]) {
                print_error("%s, client %s: chose %d, want %d\n", cases[i].what, clients[k].name,
                            got, cases[i].want[k]);
                failures++;
            }
        }
    }
    assert_int_equal(failures, 0);
}

/* The tie-breakers after name and kind: SHA before MD5, longer key, later
 * expiry; and an unusable certificate never beats a usable one. */
static void test_cand_order(void **state)
{
    struct px_sni_cand base = {
        .exact = true, .rsa = true, .usable = true, .bits = 2048, .not_after = 100};
    struct px_sni_cand md5 = base, longer = base, later = base, wild_ec = base, unusable = base;
    md5.weak_hash = true;
    longer.bits = 4096;
    later.not_after = 200;
    wild_ec.exact = false;
    wild_ec.rsa = false;
    unusable.usable = false;
    unusable.rsa = false;
    assert_true(px_sni_cand_better(&base, NULL));
    assert_true(px_sni_cand_better(&base, &md5));
    assert_false(px_sni_cand_better(&md5, &base));
    assert_true(px_sni_cand_better(&md5, &wild_ec)); /* exact first, even MD5 */
    assert_true(px_sni_cand_better(&longer, &base));
    assert_true(px_sni_cand_better(&later, &base));
    assert_true(px_sni_cand_better(&longer, &later)); /* key size before expiry */
    assert_true(px_sni_cand_better(&wild_ec, &unusable));
    assert_false(px_sni_cand_better(&base, &base)); /* strict */
    struct px_sni_cand only_unusable[1] = {unusable};
    assert_int_equal(px_sni_choose(only_unusable, 1), -1);
    assert_int_equal(px_sni_choose(NULL, 0), -1);
    /* ties keep the first */
    struct px_sni_cand two[2] = {base, base};
    assert_int_equal(px_sni_choose(two, 2), 0);
}

static void test_key_usable_edges(void **state)
{
    static const unsigned char pss_pss[] = {0x08, 0x09};
    static const unsigned char ed[] = {0x08, 0x07, 0x08, 0x08};
    static const unsigned char sha1_ec[] = {0x02, 0x03};
    static const unsigned char sha1_rsa[] = {0x02, 0x01};
    struct px_sni_hello h = {.tls13 = true};
    assert_false(px_sni_key_usable(&h, PX_SNI_KEY_RSA)); /* TLS 1.3 needs signature_algorithms */
    assert_false(px_sni_key_usable(NULL, PX_SNI_KEY_RSA));
    h.sigalgs = pss_pss;
    h.sigalgs_len = sizeof pss_pss;
    assert_true(px_sni_key_usable(&h, PX_SNI_KEY_RSA_PSS));
    assert_false(px_sni_key_usable(&h, PX_SNI_KEY_RSA));
    h.sigalgs = sha1_rsa; /* rsa_pkcs1 schemes do not sign TLS 1.3 handshakes */
    h.sigalgs_len = sizeof sha1_rsa;
    assert_false(px_sni_key_usable(&h, PX_SNI_KEY_RSA));
    h.sigalgs = ed;
    h.sigalgs_len = sizeof ed;
    assert_true(px_sni_key_usable(&h, PX_SNI_KEY_ED25519));
    assert_true(px_sni_key_usable(&h, PX_SNI_KEY_ED448));
    assert_false(px_sni_key_usable(&h, PX_SNI_KEY_OTHER));

    struct px_sni_hello h12 = {.suite_rsa = true, .suite_ecdsa = true};
    assert_true(px_sni_key_usable(&h12, PX_SNI_KEY_RSA)); /* no signature_algorithms: defaults */
    assert_true(px_sni_key_usable(&h12, PX_SNI_KEY_P521));
    assert_false(px_sni_key_usable(&h12, PX_SNI_KEY_ED25519)); /* EdDSA must be named */
    h12.sigalgs = sha1_ec;
    h12.sigalgs_len = sizeof sha1_ec;
    assert_true(px_sni_key_usable(&h12, PX_SNI_KEY_P384)); /* any hash in TLS 1.2 */
    assert_false(px_sni_key_usable(&h12, PX_SNI_KEY_RSA));
    h12.groups = GROUPS_P256;
    h12.groups_len = sizeof GROUPS_P256;
    assert_true(px_sni_key_usable(&h12, PX_SNI_KEY_P256));
    assert_false(px_sni_key_usable(&h12, PX_SNI_KEY_P384)); /* curve not in supported_groups */
    h12.suite_ecdsa = false;
    assert_false(px_sni_key_usable(&h12, PX_SNI_KEY_P256));
    /* an odd trailing byte is ignored, not read past */
    static const unsigned char odd[] = {0x04, 0x03, 0x08};
    struct px_sni_hello h3 = {.tls13 = true, .sigalgs = odd, .sigalgs_len = sizeof odd};
    assert_true(px_sni_key_usable(&h3, PX_SNI_KEY_P256));
    assert_false(px_sni_key_usable(&h3, PX_SNI_KEY_RSA));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wildcard_valid),      cmocka_unit_test(test_match),
        cmocka_unit_test(test_match_n_uses_length), cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_normalize),           cmocka_unit_test(test_choice_table),
        cmocka_unit_test(test_cand_order),          cmocka_unit_test(test_key_usable_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
