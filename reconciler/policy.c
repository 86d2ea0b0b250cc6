/* TLS security policies: the reference's system policies as a built-in
 * table (alb-api.md §5.1) and custom TLSPolicy documents (§5.2), turned
 * into the cipher strings OpenSSL takes. */
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconciler/arena.h"
#include "reconciler/build.h"
#include "reconciler/field.h"
#include "reconciler/meta.h"
#include "reconciler/policy.h"

/* Every cipher a policy may name, with the versions it is valid for. */
struct cipher {
    const char *name;
    unsigned versions;
};

#define V10_12 (RC_TLS_1_0 | RC_TLS_1_1 | RC_TLS_1_2)
static const struct cipher ciphers[] = {
    {"ECDHE-ECDSA-AES128-GCM-SHA256", RC_TLS_1_2},
    {"ECDHE-ECDSA-AES256-GCM-SHA384", RC_TLS_1_2},
    {"ECDHE-ECDSA-AES128-SHA256", RC_TLS_1_2},
    {"ECDHE-ECDSA-AES256-SHA384", RC_TLS_1_2},
    {"ECDHE-RSA-AES128-GCM-SHA256", RC_TLS_1_2},
    {"ECDHE-RSA-AES256-GCM-SHA384", RC_TLS_1_2},
    {"ECDHE-RSA-AES128-SHA256", RC_TLS_1_2},
    {"ECDHE-RSA-AES256-SHA384", RC_TLS_1_2},
    {"AES128-GCM-SHA256", RC_TLS_1_2},
    {"AES256-GCM-SHA384", RC_TLS_1_2},
    {"AES128-SHA256", RC_TLS_1_2},
    {"AES256-SHA256", RC_TLS_1_2},
    {"ECDHE-ECDSA-AES128-SHA", V10_12},
    {"ECDHE-ECDSA-AES256-SHA", V10_12},
    {"ECDHE-RSA-AES128-SHA", V10_12},
    {"ECDHE-RSA-AES256-SHA", V10_12},
    {"AES128-SHA", V10_12},
    {"AES256-SHA", V10_12},
    {"DES-CBC3-SHA", V10_12},
    {"TLS_AES_128_GCM_SHA256", RC_TLS_1_3},
    {"TLS_AES_256_GCM_SHA384", RC_TLS_1_3},
    {"TLS_CHACHA20_POLY1305_SHA256", RC_TLS_1_3},
    {"TLS_AES_128_CCM_SHA256", RC_TLS_1_3},
    {"TLS_AES_128_CCM_8_SHA256", RC_TLS_1_3},
};
#define N_CIPHERS (sizeof(ciphers) / sizeof(ciphers[0]))

/* The system policies, in name order. A bit per cipher in `ciphers`. */
#define C(i) (1ull << (i))
#define ECDHE_GCM (C(0) | C(1) | C(4) | C(5))
#define ECDHE_CBC256 (C(2) | C(3) | C(6) | C(7))
#define ECDHE_SHA (C(12) | C(13) | C(14) | C(15))
#define RSA_KX (C(8) | C(9) | C(10) | C(11) | C(16) | C(17) | C(18))
#define TLS13 (C(19) | C(20) | C(21) | C(22) | C(23))
static const struct {
    const char *name;
    unsigned versions;
    unsigned long long ciphers;
} system_policies[] = {
    {"tls_cipher_policy_1_0", V10_12, ECDHE_GCM | ECDHE_CBC256 | ECDHE_SHA | RSA_KX},
    {"tls_cipher_policy_1_0_to_1_3", V10_12 | RC_TLS_1_3, ECDHE_GCM | TLS13},
    {"tls_cipher_policy_1_1", RC_TLS_1_1 | RC_TLS_1_2,
     ECDHE_GCM | ECDHE_CBC256 | ECDHE_SHA | RSA_KX},
    {"tls_cipher_policy_1_2", RC_TLS_1_2, ECDHE_GCM | ECDHE_CBC256 | ECDHE_SHA | RSA_KX},
    {"tls_cipher_policy_1_2_strict", RC_TLS_1_2, ECDHE_GCM | ECDHE_CBC256 | ECDHE_SHA},
    {"tls_cipher_policy_1_2_strict_with_1_3", RC_TLS_1_2 | RC_TLS_1_3,
     ECDHE_GCM | ECDHE_CBC256 | ECDHE_SHA | TLS13},
};
#define N_SYSTEM (sizeof(system_policies) / sizeof(system_policies[0]))

size_t rc_system_policy_count(void)
{
    return N_SYSTEM;
}

bool rc_is_system_policy(const char *name)
{
    for (size_t i = 0; i < N_SYSTEM; i++)
        if (!strcmp(system_policies[i].name, name))
            return true;
    return false;
}

static const struct cipher *find_cipher(const char *name)
{
    for (size_t i = 0; i < N_CIPHERS; i++)
        if (!strcmp(ciphers[i].name, name))
            return &ciphers[i];
    return NULL;
}

/* Joins the names into the two OpenSSL strings. OpenSSL 3 offers TLS 1.0/1.1
 * and 3DES only at security level 0, so such policies carry @SECLEVEL=0. */
static int finish(struct rc_load *L, struct rc_tls_policy *p)
{
    size_t total = 32;
    for (size_t i = 0; i < p->n_ciphers; i++)
        total += strlen(p->ciphers[i]) + 1;
    char *list = rc_arena_alloc(L->arena, total);
    char *suites = rc_arena_alloc(L->arena, total);
    if (list == NULL || suites == NULL)
        return -1;
    bool weak = (p->versions & (RC_TLS_1_0 | RC_TLS_1_1)) != 0;
    for (size_t i = 0; i < p->n_ciphers; i++) {
        const char *n = p->ciphers[i];
        char *dst = strncmp(n, "TLS_", 4) == 0 ? suites : list;
        if (*dst)
            strcat(dst, ":");
        strcat(dst, n);
        weak = weak || !strcmp(n, "DES-CBC3-SHA");
    }
    if (weak && *list)
        strcat(list, ":@SECLEVEL=0");
    p->cipher_list = list;
    p->ciphersuites = suites;
    return 0;
}

int rc_system_policy(struct rc_load *L, size_t i, struct rc_tls_policy *p)
{
    memset(p, 0, sizeof(*p));
    p->meta.kind = "TLSPolicy";
    p->meta.name = system_policies[i].name;
    p->system = true;
    p->versions = system_policies[i].versions;
    p->ciphers = rc_arena_alloc(L->arena, N_CIPHERS * sizeof(*p->ciphers));
    if (p->ciphers == NULL)
        return -1;
    for (size_t c = 0; c < N_CIPHERS; c++)
        if (system_policies[i].ciphers & C(c))
            p->ciphers[p->n_ciphers++] = ciphers[c].name;
    if (finish(L, p) != 0)
        return -1;
    char *canon = NULL;
    if (asprintf(&canon, "%s|%u|%s|%s", p->meta.name, p->versions, p->cipher_list,
                 p->ciphersuites) < 0)
        return -1;
    rc_sha256_hex(canon, strlen(canon), p->meta.digest);
    free(canon);
    return 0;
}

static unsigned version_bit(const char *v)
{
    static const char *const names[] = {"TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"};
    for (unsigned i = 0; i < 4; i++)
        if (!strcmp(v, names[i]))
            return 1u << i;
    return 0;
}

/* Whether this machine's OpenSSL knows the cipher name. */
static bool openssl_knows(struct rc_load *L, const char *name)
{
    int ok = strncmp(name, "TLS_", 4) == 0 ? SSL_CTX_set_ciphersuites(L->scratch, name)
                                           : SSL_CTX_set_cipher_list(L->scratch, name);
    ERR_clear_error();
    return ok == 1;
}

int rc_build_policy(struct rc_load *L, struct rc_doc *d, struct rc_tls_policy *p)
{
    yaml_node_t *root = rc_doc_root(d);
    yaml_node_t *spec = rc_at(d, root, "spec");
    if (rc_fill_meta(L, d, &p->meta, NULL, 0, NULL, 0) != 0)
        return -2;
    int rc = 0;
    if (rc_is_system_policy(d->name)) {
        rc_doc_err(L, d, RC_ERROR, rc_at(d, root, "metadata.name"), "metadata.name",
                   "\"%s\" is the name of a system policy", d->name);
        rc = -1;
    }
    yaml_node_t *vers = rc_at(d, spec, "tlsVersions");
    for (yaml_node_item_t *it = vers->data.sequence.items.start; it < vers->data.sequence.items.top;
         it++)
        p->versions |= version_bit(rc_y_str(yaml_document_get_node(d->y, *it)));

    yaml_node_t *cs = rc_at(d, spec, "ciphers");
    yaml_node_item_t *start = cs->data.sequence.items.start;
    size_t n = (size_t)(cs->data.sequence.items.top - start);
    p->ciphers = rc_arena_alloc(L->arena, n * sizeof(*p->ciphers));
    if (p->ciphers == NULL)
        return -2;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *cn = yaml_document_get_node(d->y, start[i]);
        const char *name = rc_y_str(cn);
        char path[48];
        snprintf(path, sizeof(path), "spec.ciphers[%zu]", i);
        const struct cipher *c = find_cipher(name);
        if (c == NULL) {
            rc_doc_err(L, d, RC_ERROR, cn, path, "unknown cipher \"%s\"", name);
            rc = -1;
            continue;
        }
        if (!openssl_knows(L, name)) {
            rc_doc_err(L, d, RC_ERROR, cn, path, "cipher \"%s\" is not available in this OpenSSL",
                       name);
            rc = -1;
            continue;
        }
        if ((c->versions & p->versions) == 0) {
            rc_doc_err(L, d, RC_ERROR, cn, path,
                       "cipher \"%s\" is not valid for any of the selected tlsVersions", name);
            rc = -1;
            continue;
        }
        p->ciphers[p->n_ciphers++] = c->name;
    }
    if (finish(L, p) != 0)
        return -2;
    return rc;
}
