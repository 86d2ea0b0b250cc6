/* proxy/sni.c: the choice among the certificates that cover a name (the
 * name rules themselves: tests/unit/common/test_hostname.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/sni.h"

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
        cmocka_unit_test(test_choice_table),
        cmocka_unit_test(test_cand_order),
        cmocka_unit_test(test_key_usable_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
