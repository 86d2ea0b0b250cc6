/* proxy/tls_ctx.c and proxy/tls_keys.c: real handshakes between a client
 * SSL and a server SSL from px_tls_ctx_new(), connected by a BIO pair (no
 * sockets), over keys and certificates made here with libcrypto. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "../lib/x509_fixture.h"
#include "proxy/tls_ctx.h"
#include "proxy/tls_keys.h"

/* ---- certificate factory ------------------------------------------------ */

static EVP_PKEY *key_ec(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    return k;
}

static EVP_PKEY *key_rsa(void)
{
    EVP_PKEY *k = EVP_RSA_gen(2048);
    assert_non_null(k);
    return k;
}

static char *pem_key(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *s = strndup(data, (size_t)n);
    BIO_free(b);
    return s;
}

static void cert_fill(struct rc_certificate *c, const char *name, X509 *leaf, X509 *chain1,
                      EVP_PKEY *key)
{
    memset(c, 0, sizeof *c);
    c->meta.name = name;
    c->type = key ? RC_CERT_SERVER : RC_CERT_CA;
    c->cert_pem = ut_pem_certs(leaf, chain1);
    c->cert_pem_len = strlen(c->cert_pem);
    if (key) {
        c->key_pem = pem_key(key);
        c->key_pem_len = strlen(c->key_pem);
    }
}

static void cert_cleanup(struct rc_certificate *c)
{
    free((char *)c->cert_pem);
    free((char *)c->key_pem);
}

/* ---- fixtures ----------------------------------------------------------- */

#define ALL12                                                                                      \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-SHA256:"       \
    "ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:"           \
    "ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES256-SHA384:AES128-GCM-SHA256:AES256-GCM-SHA384:"         \
    "AES128-SHA256:AES256-SHA256:ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:"                   \
    "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA:AES128-SHA:AES256-SHA:DES-CBC3-SHA"
#define STRICT12                                                                                   \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"                                 \
    "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES128-GCM-SHA256:"             \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES256-SHA384:"                 \
    "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES128-SHA:"                          \
    "ECDHE-RSA-AES256-SHA"
#define SUITES13                                                                                   \
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:"                  \
    "TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256"

/* The reference's system policies (alb-api.md 5.1), by hand. */
static struct rc_tls_policy pol_1_0 = {.meta = {.name = "tls_cipher_policy_1_0"},
                                       .system = true,
                                       .versions = RC_TLS_1_0 | RC_TLS_1_1 | RC_TLS_1_2,
                                       .cipher_list = ALL12,
                                       .ciphersuites = ""};
static struct rc_tls_policy pol_1_1 = {.meta = {.name = "tls_cipher_policy_1_1"},
                                       .system = true,
                                       .versions = RC_TLS_1_1 | RC_TLS_1_2,
                                       .cipher_list = ALL12,
                                       .ciphersuites = ""};
static struct rc_tls_policy pol_1_2 = {.meta = {.name = "tls_cipher_policy_1_2"},
                                       .system = true,
                                       .versions = RC_TLS_1_2,
                                       .cipher_list = ALL12,
                                       .ciphersuites = ""};
static struct rc_tls_policy pol_1_2_strict = {.meta = {.name = "tls_cipher_policy_1_2_strict"},
                                              .system = true,
                                              .versions = RC_TLS_1_2,
                                              .cipher_list = STRICT12,
                                              .ciphersuites = ""};
static struct rc_tls_policy pol_1_2_strict_13 = {
    .meta = {.name = "tls_cipher_policy_1_2_strict_with_1_3"},
    .system = true,
    .versions = RC_TLS_1_2 | RC_TLS_1_3,
    .cipher_list = STRICT12,
    .ciphersuites = SUITES13};

struct fx {
    EVP_PKEY *ca_key, *inter_key, *def_key, *www_ec_key, *www_rsa_key, *wild_key, *client_key,
        *rogue_key;
    X509 *ca, *inter, *def, *www_ec, *www_rsa, *wild, *client, *rogue;
    struct rc_certificate c_def, c_www_ec, c_www_rsa, c_wild, c_ca;
    const struct rc_certificate *ext[3];
    const struct rc_certificate *cas[1];
    struct rc_listener l;
    struct px_tls_keys *keys;
};
static struct fx F;

static void listener_init(struct rc_listener *l, const struct rc_tls_policy *pol)
{
    memset(l, 0, sizeof *l);
    l->meta.name = "web-https";
    l->protocol = RC_LISTENER_HTTPS;
    l->port = 443;
    l->http2 = true;
    l->tls.certificate = &F.c_def;
    l->tls.extension_certificates = F.ext;
    l->tls.n_extension_certificates = 3;
    l->tls.policy = pol;
}

static int setup(void **state)
{
    F.ca_key = key_ec();
    F.ca = ut_make_cert(F.ca_key, "Test CA", NULL, NULL, NULL, true, 30);
    F.inter_key = key_ec();
    F.inter = ut_make_cert(F.inter_key, "Test Intermediate", NULL, F.ca, F.ca_key, true, 30);
    F.def_key = key_rsa();
    F.def = ut_make_cert(F.def_key, "default.test", "DNS:default.test", F.ca, F.ca_key, false, 30);
    F.www_ec_key = key_ec();
    F.www_ec = ut_make_cert(F.www_ec_key, "www.example.com", "DNS:www.example.com,DNS:example.com",
                            F.inter, F.inter_key, false, 30);
    F.www_rsa_key = key_rsa();
    F.www_rsa = ut_make_cert(F.www_rsa_key, "www.example.com rsa", "DNS:www.example.com", F.ca,
                             F.ca_key, false, 30);
    F.wild_key = key_ec();
    F.wild = ut_make_cert(F.wild_key, "wild.test", "DNS:*.wild.test", F.ca, F.ca_key, false, 30);
    F.client_key = key_ec();
    F.client = ut_make_cert(F.client_key, "client-1", NULL, F.ca, F.ca_key, false, 30);
    F.rogue_key = key_ec();
    F.rogue = ut_make_cert(F.rogue_key, "rogue", NULL, NULL, NULL, false, 30);

    cert_fill(&F.c_def, "default-cert", F.def, NULL, F.def_key);
    cert_fill(&F.c_www_ec, "www-ec", F.www_ec, F.inter, F.www_ec_key);
    cert_fill(&F.c_www_rsa, "www-rsa", F.www_rsa, NULL, F.www_rsa_key);
    cert_fill(&F.c_wild, "wild", F.wild, NULL, F.wild_key);
    cert_fill(&F.c_ca, "corp-ca", F.ca, NULL, NULL);
    F.ext[0] = &F.c_www_ec;
    F.ext[1] = &F.c_www_rsa;
    F.ext[2] = &F.c_wild;
    F.cas[0] = &F.c_ca;
    listener_init(&F.l, &pol_1_2_strict_13);
    F.keys = px_tls_keys_new();
    assert_non_null(F.keys);
    return 0;
}

static int teardown(void **state)
{
    px_tls_keys_unref(F.keys);
    struct rc_certificate *cs[] = {&F.c_def, &F.c_www_ec, &F.c_www_rsa, &F.c_wild, &F.c_ca};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
        cert_cleanup(cs[i]);
    X509 *xs[] = {F.ca, F.inter, F.def, F.www_ec, F.www_rsa, F.wild, F.client, F.rogue};
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++)
        X509_free(xs[i]);
    EVP_PKEY *ks[] = {F.ca_key,      F.inter_key, F.def_key,    F.www_ec_key,
                      F.www_rsa_key, F.wild_key,  F.client_key, F.rogue_key};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++)
        EVP_PKEY_free(ks[i]);
    return 0;
}

/* ---- handshakes --------------------------------------------------------- */

struct client_opts {
    int version;         /* 0: any */
    const char *ciphers; /* TLS <= 1.2 list, NULL: default */
    const char *suites;  /* TLS 1.3, NULL: default */
    const char *sigalgs; /* NULL: default */
    const char *alpn;    /* wire format, NULL: none */
    size_t alpn_len;
    X509 *cert; /* client certificate */
    EVP_PKEY *key;
};

static SSL_CTX *client_ctx(const struct client_opts *o)
{
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());
    assert_non_null(c);
    SSL_CTX_set_security_level(c, 0);
    assert_int_equal(SSL_CTX_set_cipher_list(c, o->ciphers ? o->ciphers : "ALL:@SECLEVEL=0"), 1);
    if (o->suites)
        assert_int_equal(SSL_CTX_set_ciphersuites(c, o->suites), 1);
    SSL_CTX_set_min_proto_version(c, o->version ? o->version : TLS1_VERSION);
    SSL_CTX_set_max_proto_version(c, o->version ? o->version : TLS1_3_VERSION);
    if (o->sigalgs)
        assert_int_equal(SSL_CTX_set1_sigalgs_list(c, o->sigalgs), 1);
    if (o->alpn)
        assert_int_equal(
            SSL_CTX_set_alpn_protos(c, (const unsigned char *)o->alpn, (unsigned int)o->alpn_len),
            0);
    if (o->cert) {
        assert_int_equal(SSL_CTX_use_certificate(c, o->cert), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey(c, o->key), 1);
    }
    /* No client cache: freeing a context whose cache holds a session
     * marks that session not resumable. */
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    return c;
}

struct conn {
    SSL *c, *s;
    bool ok;
};

static bool pending_ok(SSL *ssl, int rc)
{
    int e = SSL_get_error(ssl, rc);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

/* Runs a handshake; ok when both ends completed it. Then moves one byte
 * each way so that TLS 1.3 session tickets reach the client. */
static struct conn hs(SSL_CTX *sctx, const struct client_opts *o, const char *sni,
                      SSL_SESSION *resume)
{
    struct conn k = {0};
    SSL_CTX *cctx = client_ctx(o);
    k.c = SSL_new(cctx);
    k.s = SSL_new(sctx);
    SSL_CTX_free(cctx); /* the SSL keeps its own reference */
    assert_non_null(k.c);
    assert_non_null(k.s);
    BIO *bc, *bs;
    assert_int_equal(BIO_new_bio_pair(&bc, 0, &bs, 0), 1);
    SSL_set_bio(k.c, bc, bc);
    SSL_set_bio(k.s, bs, bs);
    SSL_set_connect_state(k.c);
    SSL_set_accept_state(k.s);
    if (sni)
        assert_int_equal(SSL_set_tlsext_host_name(k.c, sni), 1);
    if (resume)
        assert_int_equal(SSL_set_session(k.c, resume), 1);
    bool cdone = false, sdone = false;
    for (int i = 0; i < 50 && !(cdone && sdone); i++) {
        if (!cdone) {
            int r = SSL_do_handshake(k.c);
            if (r == 1)
                cdone = true;
            else if (!pending_ok(k.c, r))
                break;
        }
        if (!sdone) {
            int r = SSL_do_handshake(k.s);
            if (r == 1)
                sdone = true;
            else if (!pending_ok(k.s, r))
                break;
        }
    }
    k.ok = cdone && sdone;
    if (k.ok) {
        char b;
        assert_int_equal(SSL_write(k.s, "s", 1), 1);
        assert_int_equal(SSL_read(k.c, &b, 1), 1);
        assert_int_equal(SSL_write(k.c, "c", 1), 1);
        assert_int_equal(SSL_read(k.s, &b, 1), 1);
    }
    ERR_clear_error();
    return k;
}

static void conn_free(struct conn *k)
{
    /* A connection freed without a shutdown has its session marked not
     * resumable; these end cleanly. */
    SSL_set_shutdown(k->c, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_set_shutdown(k->s, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(k->c);
    SSL_free(k->s);
}

static SSL_CTX *server_ctx(const struct rc_listener *l, struct px_tls_keys *keys, bool h2)
{
    char err[256] = "";
    SSL_CTX *ctx = px_tls_ctx_new(l, keys, h2, err, sizeof err);
    if (ctx == NULL)
        print_error("px_tls_ctx_new: %s\n", err);
    assert_non_null(ctx);
    return ctx;
}

/* CN of the certificate the client received. */
static void peer_cn(SSL *c, char *buf, size_t len)
{
    X509 *x = SSL_get0_peer_certificate(c);
    assert_non_null(x);
    assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, (int)len) >
                0);
}

static void expect_cert(SSL_CTX *ctx, const struct client_opts *o, const char *sni,
                        const char *want_cn)
{
    struct conn k = hs(ctx, o, sni, NULL);
    assert_true(k.ok);
    char cn[128];
    peer_cn(k.c, cn, sizeof cn);
    if (strcmp(cn, want_cn) != 0)
        print_error("SNI %s: got %s, want %s\n", sni ? sni : "(none)", cn, want_cn);
    assert_string_equal(cn, want_cn);
    conn_free(&k);
}

/* ---- tests -------------------------------------------------------------- */

static void test_sni_selection(void **state)
{
    SSL_CTX *ctx = server_ctx(&F.l, F.keys, false);
    struct client_opts o = {0};
    expect_cert(ctx, &o, "www.example.com", "www.example.com");
    expect_cert(ctx, &o, "WWW.Example.COM", "www.example.com");
    expect_cert(ctx, &o, "example.com", "www.example.com");
    expect_cert(ctx, &o, "foo.wild.test", "wild.test");
    expect_cert(ctx, &o, "FOO-1.Wild.Test", "wild.test");
    expect_cert(ctx, &o, "a.b.wild.test", "default.test");     /* one level only */
    expect_cert(ctx, &o, "foo_bar.wild.test", "default.test"); /* '_' not covered */
    expect_cert(ctx, &o, "unknown.test", "default.test");
    expect_cert(ctx, &o, NULL, "default.test");

    /* The full chain is sent: leaf then intermediate. */
    struct conn k = hs(ctx, &o, "www.example.com", NULL);
    assert_true(k.ok);
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(k.c);
    assert_non_null(chain);
    assert_int_equal(sk_X509_num(chain), 2);
    assert_int_equal(X509_cmp(sk_X509_value(chain, 1), F.inter), 0);
    conn_free(&k);
    SSL_CTX_free(ctx);
}

static int peer_key_id(SSL *c)
{
    X509 *x = SSL_get0_peer_certificate(c);
    assert_non_null(x);
    return EVP_PKEY_get_base_id(X509_get0_pubkey(x));
}

static void test_ecdsa_or_rsa_by_client(void **state)
{
    SSL_CTX *ctx = server_ctx(&F.l, F.keys, false);
    struct {
        struct client_opts o;
        int want;
    } cases[] = {
        {{0}, EVP_PKEY_EC}, /* ECDSA preferred when the client can do both */
        {{.version = TLS1_2_VERSION}, EVP_PKEY_EC},
        {{.sigalgs = "rsa_pss_rsae_sha256:rsa_pkcs1_sha256"}, EVP_PKEY_RSA},
        {{.version = TLS1_2_VERSION, .sigalgs = "RSA+SHA256:RSA-PSS+SHA256"}, EVP_PKEY_RSA},
        {{.version = TLS1_2_VERSION, .ciphers = "ECDHE-RSA-AES128-GCM-SHA256"}, EVP_PKEY_RSA},
        {{.version = TLS1_2_VERSION, .ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256"}, EVP_PKEY_EC},
        {{.sigalgs = "ecdsa_secp256r1_sha256"}, EVP_PKEY_EC},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct conn k = hs(ctx, &cases[i].o, "www.example.com", NULL);
        assert_true(k.ok);
        if (peer_key_id(k.c) != cases[i].want)
            print_error("case %zu: key %d, want %d\n", i, peer_key_id(k.c), cases[i].want);
        assert_int_equal(peer_key_id(k.c), cases[i].want);
        conn_free(&k);
    }
    /* A wildcard-only name with one ECDSA certificate and an RSA-only client:
     * no certificate fits, the handshake fails rather than lying. */
    struct client_opts rsa_only = {.sigalgs = "rsa_pss_rsae_sha256:rsa_pkcs1_sha256"};
    struct conn k = hs(ctx, &rsa_only, "x.wild.test", NULL);
    assert_false(k.ok);
    conn_free(&k);
    SSL_CTX_free(ctx);
}

struct version_case {
    struct rc_tls_policy *pol;
    bool accept[4]; /* TLS 1.0, 1.1, 1.2, 1.3 */
};

static void test_policy_versions(void **state)
{
    static struct rc_tls_policy gap = {.meta = {.name = "gap"},
                                       .versions = RC_TLS_1_0 | RC_TLS_1_2,
                                       .cipher_list = ALL12,
                                       .ciphersuites = ""};
    const struct version_case cases[] = {
        {&pol_1_0, {true, true, true, false}},
        {&pol_1_1, {false, true, true, false}},
        {&pol_1_2, {false, false, true, false}},
        {&pol_1_2_strict, {false, false, true, false}},
        {&pol_1_2_strict_13, {false, false, true, true}},
        {&gap, {true, false, true, false}},
    };
    static const int versions[4] = {TLS1_VERSION, TLS1_1_VERSION, TLS1_2_VERSION, TLS1_3_VERSION};
    int failures = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct rc_listener l;
        listener_init(&l, cases[i].pol);
        SSL_CTX *ctx = server_ctx(&l, F.keys, false);
        for (int v = 0; v < 4; v++) {
            struct client_opts o = {.version = versions[v]};
            struct conn k = hs(ctx, &o, "www.example.com", NULL);
            if (k.ok != cases[i].accept[v] || (k.ok && SSL_version(k.s) != versions[v])) {
                print_error("%s: TLS version 0x%x: handshake %s\n", cases[i].pol->meta.name,
                            versions[v], k.ok ? "succeeded" : "failed");
                failures++;
            }
            conn_free(&k);
        }
        SSL_CTX_free(ctx);
    }
    assert_int_equal(failures, 0);
}

static void test_policy_ciphers(void **state)
{
    struct rc_listener l;
    listener_init(&l, &pol_1_2);
    SSL_CTX *ctx12 = server_ctx(&l, F.keys, false);
    listener_init(&l, &pol_1_2_strict);
    SSL_CTX *strict = server_ctx(&l, F.keys, false);

    /* Outside every policy: CHACHA20 suites for TLS 1.2. */
    struct client_opts chacha = {.version = TLS1_2_VERSION,
                                 .ciphers =
                                     "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"};
    struct conn k = hs(ctx12, &chacha, "www.example.com", NULL);
    assert_false(k.ok);
    conn_free(&k);

    /* Plain RSA key exchange: in 1_2, not in 1_2_strict. */
    struct client_opts rsakx = {.version = TLS1_2_VERSION, .ciphers = "AES128-GCM-SHA256"};
    k = hs(ctx12, &rsakx, "www.example.com", NULL);
    assert_true(k.ok);
    assert_string_equal(SSL_get_cipher_name(k.s), "AES128-GCM-SHA256");
    conn_free(&k);
    k = hs(strict, &rsakx, "www.example.com", NULL);
    assert_false(k.ok);
    conn_free(&k);

    /* Server preference: the policy's first suite wins over the client's. */
    struct client_opts pref = {.version = TLS1_2_VERSION,
                               .ciphers = "ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES128-GCM-SHA256"};
    k = hs(strict, &pref, "www.example.com", NULL);
    assert_true(k.ok);
    assert_string_equal(SSL_get_cipher_name(k.s), "ECDHE-ECDSA-AES128-GCM-SHA256");
    conn_free(&k);
    SSL_CTX_free(ctx12);
    SSL_CTX_free(strict);

    /* TLS 1.3 suites come from the policy too. */
    struct rc_tls_policy only256 = pol_1_2_strict_13;
    only256.meta.name = "only256";
    only256.ciphersuites = "TLS_AES_256_GCM_SHA384";
    listener_init(&l, &only256);
    SSL_CTX *c13 = server_ctx(&l, F.keys, false);
    struct client_opts want128 = {.version = TLS1_3_VERSION, .suites = "TLS_AES_128_GCM_SHA256"};
    k = hs(c13, &want128, "www.example.com", NULL);
    assert_false(k.ok);
    conn_free(&k);
    struct client_opts want256 = {.version = TLS1_3_VERSION, .suites = "TLS_AES_256_GCM_SHA384"};
    k = hs(c13, &want256, "www.example.com", NULL);
    assert_true(k.ok);
    conn_free(&k);
    SSL_CTX_free(c13);
}

static void test_renegotiation_refused(void **state)
{
    struct rc_listener l;
    listener_init(&l, &pol_1_2);
    SSL_CTX *ctx = server_ctx(&l, F.keys, false);
    struct client_opts o = {.version = TLS1_2_VERSION};
    struct conn k = hs(ctx, &o, "www.example.com", NULL);
    assert_true(k.ok);
    assert_true(SSL_get_options(k.s) & SSL_OP_NO_RENEGOTIATION);
    assert_int_equal(SSL_renegotiate(k.s), 0); /* the server never starts one */
    ERR_clear_error();

    assert_int_equal(SSL_renegotiate(k.c), 1);
    bool renegotiated = false, client_failed = false;
    char b[8];
    for (int i = 0; i < 20 && !client_failed; i++) {
        int r = SSL_do_handshake(k.c);
        if (r == 1 && SSL_renegotiate_pending(k.c) == 0) {
            renegotiated = true;
            break;
        }
        if (r <= 0 && !pending_ok(k.c, r))
            client_failed = true;
        (void)SSL_read(k.s, b, sizeof b);
    }
    assert_false(renegotiated);
    assert_true(client_failed);
    ERR_clear_error();
    conn_free(&k);
    SSL_CTX_free(ctx);
}

static void test_ticket_lifetime(void **state)
{
    SSL_CTX *ctx = server_ctx(&F.l, F.keys, false);
    assert_int_equal(SSL_CTX_get_timeout(ctx), 300);
    assert_int_equal(SSL_CTX_get_session_cache_mode(ctx), SSL_SESS_CACHE_OFF);
    static const int versions[] = {TLS1_2_VERSION, TLS1_3_VERSION};
    for (size_t i = 0; i < 2; i++) {
        struct client_opts o = {.version = versions[i]};
        struct conn k = hs(ctx, &o, "www.example.com", NULL);
        assert_true(k.ok);
        SSL_SESSION *sess = SSL_get1_session(k.c);
        assert_non_null(sess);
        assert_true(SSL_SESSION_has_ticket(sess));
        assert_int_equal(SSL_SESSION_get_ticket_lifetime_hint(sess), 300);
        SSL_SESSION_free(sess);
        conn_free(&k);
    }
    SSL_CTX_free(ctx);
}

/* A session from one context resumes on another, built later, when both
 * share the key ring: what happens across a configuration swap. */
static bool resumes(SSL_CTX *first, SSL_CTX *second, int version)
{
    struct client_opts o = {.version = version};
    struct conn k = hs(first, &o, "www.example.com", NULL);
    assert_true(k.ok);
    assert_false(SSL_session_reused(k.c));
    SSL_SESSION *sess = SSL_get1_session(k.c);
    assert_non_null(sess);
    conn_free(&k);
    k = hs(second, &o, "www.example.com", sess);
    assert_true(k.ok);
    bool reused = SSL_session_reused(k.c);
    conn_free(&k);
    SSL_SESSION_free(sess);
    return reused;
}

static void test_resumption_across_contexts(void **state)
{
    struct px_tls_keys *ring = px_tls_keys_new();
    assert_non_null(ring);
    SSL_CTX *a = server_ctx(&F.l, ring, false);
    /* The swapped-in configuration: one extension certificate fewer. */
    struct rc_listener l2 = F.l;
    l2.tls.n_extension_certificates = 2;
    SSL_CTX *b = server_ctx(&l2, ring, true);
    for (int v = TLS1_2_VERSION; v <= TLS1_3_VERSION; v++) {
        assert_true(resumes(a, b, v));
        assert_true(resumes(a, a, v));
    }

    /* Another ring cannot read the tickets. */
    struct px_tls_keys *other = px_tls_keys_new();
    assert_non_null(other);
    SSL_CTX *c = server_ctx(&F.l, other, false);
    assert_false(resumes(a, c, TLS1_3_VERSION));
    assert_false(resumes(a, c, TLS1_2_VERSION));

    /* Another listener (session id context) does not resume either. */
    struct rc_listener l3 = F.l;
    l3.meta.name = "other-listener";
    SSL_CTX *d = server_ctx(&l3, ring, false);
    assert_false(resumes(a, d, TLS1_3_VERSION));

    /* One rotation: the previous key still decrypts; two: it is gone. */
    struct client_opts o = {0};
    struct conn k = hs(a, &o, "www.example.com", NULL);
    assert_true(k.ok);
    SSL_SESSION *sess = SSL_get1_session(k.c);
    conn_free(&k);
    assert_int_equal(px_tls_keys_rotate(ring), 0);
    assert_int_equal(px_tls_keys_count(ring), 2);
    k = hs(b, &o, "www.example.com", sess);
    assert_true(k.ok && SSL_session_reused(k.c));
    conn_free(&k);
    assert_int_equal(px_tls_keys_rotate(ring), 0);
    assert_int_equal(px_tls_keys_count(ring), 2);
    k = hs(b, &o, "www.example.com", sess);
    assert_true(k.ok);
    assert_false(SSL_session_reused(k.c));
    conn_free(&k);
    SSL_SESSION_free(sess);

    SSL_CTX_free(a);
    SSL_CTX_free(b);
    SSL_CTX_free(c);
    SSL_CTX_free(d);
    px_tls_keys_unref(other);
    px_tls_keys_unref(ring); /* the contexts are gone: this frees it (ASan checks) */
}

static void write_file(const char *path, const unsigned char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void test_ticket_key_files(void **state)
{
    char dir[] = "/tmp/albd-tls-keys-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char p48[64], p80[64], pbad[64];
    snprintf(p48, sizeof p48, "%s/k48", dir);
    snprintf(p80, sizeof p80, "%s/k80", dir);
    snprintf(pbad, sizeof pbad, "%s/bad", dir);
    unsigned char buf[80], buf48[48];
    assert_int_equal(RAND_bytes(buf, sizeof buf), 1);
    assert_int_equal(RAND_bytes(buf48, sizeof buf48), 1);
    write_file(p80, buf, 80);
    write_file(p48, buf48, 48);
    write_file(pbad, buf, 50);

    char err[256];
    const char *paths80[] = {p80};
    const char *paths48[] = {p48, p80};
    /* Two members of a fleet load the same file: they resume each other's
     * sessions. */
    struct px_tls_keys *m1 = px_tls_keys_new_from_files(paths80, 1, err, sizeof err);
    struct px_tls_keys *m2 = px_tls_keys_new_from_files(paths80, 1, err, sizeof err);
    struct px_tls_keys *m3 = px_tls_keys_new_from_files(paths48, 2, err, sizeof err);
    assert_non_null(m1);
    assert_non_null(m2);
    assert_non_null(m3);
    assert_int_equal(px_tls_keys_count(m3), 2);
    assert_int_equal(px_tls_keys_rotate(m1), -ENOTSUP);
    SSL_CTX *a = server_ctx(&F.l, m1, false);
    SSL_CTX *b = server_ctx(&F.l, m2, false);
    SSL_CTX *c = server_ctx(&F.l, m3, false);
    assert_true(resumes(a, b, TLS1_3_VERSION));
    assert_true(resumes(b, a, TLS1_2_VERSION));
    /* m3 encrypts with the 48-byte (AES-128) key and still reads m1's. */
    assert_true(resumes(c, c, TLS1_3_VERSION));
    assert_true(resumes(a, c, TLS1_3_VERSION));
    SSL_CTX_free(a);
    SSL_CTX_free(b);
    SSL_CTX_free(c);
    px_tls_keys_unref(m1);
    px_tls_keys_unref(m2);
    px_tls_keys_unref(m3);

    const char *bad[] = {pbad};
    err[0] = '\0';
    assert_null(px_tls_keys_new_from_files(bad, 1, err, sizeof err));
    assert_non_null(strstr(err, "48 or 80 bytes"));
    const char *twice[] = {p80, p80};
    assert_null(px_tls_keys_new_from_files(twice, 2, err, sizeof err));
    assert_non_null(strstr(err, "same key name"));
    const char *missing[] = {"/nonexistent/albd-key"};
    assert_null(px_tls_keys_new_from_files(missing, 1, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/albd-key"));
    unlink(p48);
    unlink(p80);
    unlink(pbad);
    rmdir(dir);
}

static void test_mutual_tls(void **state)
{
    struct rc_listener l;
    listener_init(&l, &pol_1_2_strict_13);
    l.tls.mutual.enabled = true;
    l.tls.mutual.ca_certificates = F.cas;
    l.tls.mutual.n_ca_certificates = 1;
    SSL_CTX *ctx = server_ctx(&l, F.keys, false);
    for (int v = TLS1_2_VERSION; v <= TLS1_3_VERSION; v++) {
        /* Required: no certificate, no connection. */
        struct client_opts none = {.version = v};
        struct conn k = hs(ctx, &none, "www.example.com", NULL);
        assert_false(k.ok);
        conn_free(&k);
        /* Refused: a certificate from another CA. */
        struct client_opts rogue = {.version = v, .cert = F.rogue, .key = F.rogue_key};
        k = hs(ctx, &rogue, "www.example.com", NULL);
        assert_false(k.ok);
        conn_free(&k);
        /* Accepted, and the header values. */
        struct client_opts good = {.version = v, .cert = F.client, .key = F.client_key};
        k = hs(ctx, &good, "www.example.com", NULL);
        assert_true(k.ok);
        STACK_OF(X509_NAME) *sent = SSL_get_client_CA_list(k.c);
        assert_non_null(sent);
        assert_int_equal(sk_X509_NAME_num(sent), 1);
        assert_int_equal(X509_NAME_cmp(sk_X509_NAME_value(sent, 0), X509_get_subject_name(F.ca)),
                         0);
        struct px_client_cert cc;
        assert_int_equal(px_tls_client_cert_info(k.s, &cc), 0);
        assert_true(cc.present);
        assert_string_equal(cc.subject_dn, "CN=client-1");
        assert_string_equal(cc.issuer_dn, "CN=Test CA");
        assert_string_equal(cc.verify, "SUCCESS");
        unsigned char md[32];
        unsigned int mdlen = 0;
        assert_int_equal(X509_digest(F.client, EVP_sha256(), md, &mdlen), 1);
        char hex[65];
        for (unsigned int i = 0; i < mdlen; i++)
            snprintf(hex + 2 * i, 3, "%02x", md[i]);
        assert_string_equal(cc.fingerprint, hex);
        conn_free(&k);
    }
    SSL_CTX_free(ctx);

    /* Without mutual TLS no certificate is asked for. */
    ctx = server_ctx(&F.l, F.keys, false);
    struct client_opts good = {.cert = F.client, .key = F.client_key};
    struct conn k = hs(ctx, &good, "www.example.com", NULL);
    assert_true(k.ok);
    struct px_client_cert cc;
    assert_int_equal(px_tls_client_cert_info(k.s, &cc), 0);
    assert_false(cc.present);
    assert_string_equal(cc.verify, "NONE");
    conn_free(&k);
    SSL_CTX_free(ctx);
}

static void expect_alpn(SSL_CTX *ctx, const char *offer, size_t len, const char *want)
{
    struct client_opts o = {.alpn = offer, .alpn_len = len};
    struct conn k = hs(ctx, &o, "www.example.com", NULL);
    assert_true(k.ok);
    const unsigned char *p;
    unsigned int n;
    SSL_get0_alpn_selected(k.c, &p, &n);
    char got[32] = "";
    if (n > 0)
        memcpy(got, p, n < sizeof got - 1 ? n : sizeof got - 1);
    if (strcmp(got, want) != 0)
        print_error("ALPN: got \"%s\", want \"%s\"\n", got, want);
    assert_string_equal(got, want);
    conn_free(&k);
}

static void test_alpn(void **state)
{
    static const char both[] = "\x02h2\x08http/1.1";
    static const char h2only[] = "\x02h2";
    static const char other[] = "\x08spdy/3.1";
    SSL_CTX *no_h2 = server_ctx(&F.l, F.keys, false);
    expect_alpn(no_h2, both, sizeof both - 1, "http/1.1");
    expect_alpn(no_h2, h2only, sizeof h2only - 1, "");
    expect_alpn(no_h2, NULL, 0, "");
    SSL_CTX *h2 = server_ctx(&F.l, F.keys, true);
    expect_alpn(h2, both, sizeof both - 1, "h2");
    expect_alpn(h2, h2only, sizeof h2only - 1, "h2");
    expect_alpn(h2, other, sizeof other - 1, "");
    struct rc_listener l = F.l;
    l.http2 = false;
    SSL_CTX *off = server_ctx(&l, F.keys, true);
    expect_alpn(off, both, sizeof both - 1, "http/1.1");
    SSL_CTX_free(no_h2);
    SSL_CTX_free(h2);
    SSL_CTX_free(off);
}

static bool allowed(SSL *s, const char *host)
{
    return px_tls_host_allowed(s, host, strlen(host));
}

static void test_host_allowed(void **state)
{
    SSL_CTX *ctx = server_ctx(&F.l, F.keys, false);
    struct client_opts o = {0};
    struct conn k = hs(ctx, &o, "foo.wild.test", NULL);
    assert_true(k.ok);
    assert_true(allowed(k.s, "foo.wild.test"));
    assert_true(allowed(k.s, "bar.wild.test"));
    assert_true(allowed(k.s, "BAR.Wild.test:8443"));
    assert_true(allowed(k.s, "bar.wild.test."));
    assert_false(allowed(k.s, "x.y.wild.test"));
    assert_false(allowed(k.s, "www.example.com"));
    assert_false(allowed(k.s, "bar.wild.test:44x"));
    assert_false(allowed(k.s, "[::1]:443"));
    assert_false(allowed(k.s, ""));
    assert_true(px_tls_host_allowed(k.s, "bar.wild.test:443 trailing", 17));
    conn_free(&k);

    /* No SNI: the default certificate's names. */
    k = hs(ctx, &o, NULL, NULL);
    assert_true(k.ok);
    assert_true(allowed(k.s, "default.test"));
    assert_false(allowed(k.s, "www.example.com"));
    conn_free(&k);

    /* The certificate actually served counts: the RSA one for www lacks
     * example.com, the ECDSA one has it. */
    struct client_opts rsa = {.sigalgs = "rsa_pss_rsae_sha256:rsa_pkcs1_sha256"};
    k = hs(ctx, &rsa, "www.example.com", NULL);
    assert_true(k.ok);
    assert_true(allowed(k.s, "www.example.com"));
    assert_false(allowed(k.s, "example.com"));
    conn_free(&k);
    k = hs(ctx, &o, "www.example.com", NULL);
    assert_true(k.ok);
    assert_true(allowed(k.s, "example.com"));
    conn_free(&k);

    /* Resumed handshakes select too. */
    k = hs(ctx, &o, "foo.wild.test", NULL);
    SSL_SESSION *sess = SSL_get1_session(k.c);
    conn_free(&k);
    k = hs(ctx, &o, "foo.wild.test", sess);
    assert_true(k.ok && SSL_session_reused(k.c));
    assert_true(allowed(k.s, "bar.wild.test"));
    assert_false(allowed(k.s, "default.test"));
    conn_free(&k);
    SSL_SESSION_free(sess);
    SSL_CTX_free(ctx);
}

static void test_build_errors(void **state)
{
    char err[256];
    struct rc_listener l;

    /* A key that is not the certificate's: refused, and the key is not quoted. */
    struct rc_certificate wrong = F.c_www_ec;
    wrong.meta.name = "mismatched";
    wrong.key_pem = F.c_def.key_pem;
    wrong.key_pem_len = F.c_def.key_pem_len;
    const struct rc_certificate *ext[] = {&wrong};
    listener_init(&l, &pol_1_2);
    l.tls.extension_certificates = ext;
    l.tls.n_extension_certificates = 1;
    err[0] = '\0';
    assert_null(px_tls_ctx_new(&l, F.keys, false, err, sizeof err));
    assert_non_null(strstr(err, "web-https"));
    assert_non_null(strstr(err, "mismatched"));
    assert_null(strstr(err, "PRIVATE"));
    assert_null(strstr(err, F.c_def.key_pem + 40));

    /* Garbage PEM. */
    struct rc_certificate junk = F.c_def;
    junk.meta.name = "junk";
    junk.cert_pem = "not a certificate";
    junk.cert_pem_len = strlen(junk.cert_pem);
    listener_init(&l, &pol_1_2);
    l.tls.certificate = &junk;
    assert_null(px_tls_ctx_new(&l, F.keys, false, err, sizeof err));
    assert_non_null(strstr(err, "junk"));

    /* TLS 1.3 without suites; a list with no cipher OpenSSL knows. */
    struct rc_tls_policy bad = pol_1_2_strict_13;
    bad.meta.name = "no-suites";
    bad.ciphersuites = "";
    listener_init(&l, &bad);
    assert_null(px_tls_ctx_new(&l, F.keys, false, err, sizeof err));
    assert_non_null(strstr(err, "no-suites"));
    struct rc_tls_policy only3des = pol_1_2;
    only3des.meta.name = "only-3des";
    only3des.cipher_list = "DES-CBC3-SHA";
    listener_init(&l, &only3des);
    assert_null(px_tls_ctx_new(&l, F.keys, false, err, sizeof err));
    assert_non_null(strstr(err, "only-3des"));

    /* Mutual TLS without a CA. */
    listener_init(&l, &pol_1_2);
    l.tls.mutual.enabled = true;
    assert_null(px_tls_ctx_new(&l, F.keys, false, err, sizeof err));
    assert_non_null(strstr(err, "mutual"));

    /* No certificate at all. */
    listener_init(&l, &pol_1_2);
    l.tls.certificate = NULL;
    assert_null(px_tls_ctx_new(&l, F.keys, false, err, sizeof err));
    ERR_clear_error();
}

/* Thousands of names: selection goes through the index, not a scan, and
 * stays correct. One key is shared so that the test stays fast. */
static void test_many_certificates(void **state)
{
    enum { N = 1500 };
    EVP_PKEY *k = key_ec();
    char *key_pem = pem_key(k);
    struct rc_certificate *certs = calloc(N, sizeof *certs);
    const struct rc_certificate **ext = calloc(N, sizeof *ext);
    char(*names)[32] = calloc(N, sizeof *names);
    assert_non_null(certs);
    assert_non_null(ext);
    assert_non_null(names);
    for (int i = 0; i < N; i++) {
        char cn[64], san[160];
        snprintf(names[i], sizeof names[i], "cert-%d", i);
        snprintf(cn, sizeof cn, "host%d.example.net", i);
        snprintf(san, sizeof san, "DNS:host%d.example.net,DNS:*.zone%d.example.net", i, i);
        X509 *x = ut_make_cert(k, cn, san, NULL, NULL, false, 30);
        certs[i].meta.name = names[i];
        certs[i].cert_pem = ut_pem_certs(x, NULL);
        certs[i].cert_pem_len = strlen(certs[i].cert_pem);
        certs[i].key_pem = key_pem;
        certs[i].key_pem_len = strlen(key_pem);
        ext[i] = &certs[i];
        X509_free(x);
    }
    struct rc_listener l;
    listener_init(&l, &pol_1_2_strict_13);
    l.tls.extension_certificates = ext;
    l.tls.n_extension_certificates = N;
    SSL_CTX *ctx = server_ctx(&l, F.keys, false);
    struct client_opts o = {0};
    expect_cert(ctx, &o, "host1234.example.net", "host1234.example.net");
    expect_cert(ctx, &o, "a.zone77.example.net", "host77.example.net");
    expect_cert(ctx, &o, "host0.example.net", "host0.example.net");
    expect_cert(ctx, &o, "host1500.example.net", "default.test");
    SSL_CTX_free(ctx);
    for (int i = 0; i < N; i++)
        free((char *)certs[i].cert_pem);
    free(certs);
    free(ext);
    free(names);
    free(key_pem);
    EVP_PKEY_free(k);
}

/* Contexts built from byte-identical certificates share the parsed
 * objects (reconciler/certstore.h): a rebuilt listener holds nothing
 * twice. A changed certificate is its own; a context outlives the one it
 * shared with. */
static void test_contexts_share_parsed_certificates(void **state)
{
    SSL_CTX *a = server_ctx(&F.l, F.keys, false);
    /* The same PEM at other addresses, as a later model holds it. */
    struct rc_certificate def2 = F.c_def, wild2 = F.c_wild;
    def2.cert_pem = strdup(F.c_def.cert_pem);
    def2.key_pem = strdup(F.c_def.key_pem);
    wild2.cert_pem = strdup(F.c_wild.cert_pem);
    wild2.key_pem = strdup(F.c_wild.key_pem);
    const struct rc_certificate *ext2[] = {&F.c_www_ec, &F.c_www_rsa, &wild2};
    struct rc_listener l2;
    listener_init(&l2, &pol_1_2_strict_13);
    l2.tls.certificate = &def2;
    l2.tls.extension_certificates = ext2;
    SSL_CTX *b = server_ctx(&l2, F.keys, false);
    assert_ptr_equal(SSL_CTX_get0_certificate(a), SSL_CTX_get0_certificate(b));
    assert_ptr_equal(SSL_CTX_get0_privatekey(a), SSL_CTX_get0_privatekey(b));
    struct client_opts o = {0};
    struct conn ka = hs(a, &o, "x.wild.test", NULL), kb = hs(b, &o, "x.wild.test", NULL);
    assert_true(ka.ok);
    assert_true(kb.ok);
    assert_ptr_equal(SSL_get_certificate(ka.s), SSL_get_certificate(kb.s));

    /* Renewed: a new key and certificate for the same names. */
    EVP_PKEY *k = key_ec();
    X509 *renewed =
        ut_make_cert(k, "wild.test renewed", "DNS:*.wild.test", F.ca, F.ca_key, false, 30);
    struct rc_certificate wild3;
    cert_fill(&wild3, "wild", renewed, NULL, k);
    const struct rc_certificate *ext3[] = {&F.c_www_ec, &F.c_www_rsa, &wild3};
    struct rc_listener l3;
    listener_init(&l3, &pol_1_2_strict_13);
    l3.tls.extension_certificates = ext3;
    SSL_CTX *c = server_ctx(&l3, F.keys, false);
    assert_ptr_equal(SSL_CTX_get0_certificate(a), SSL_CTX_get0_certificate(c));
    SSL_CTX_free(a);
    SSL_CTX_free(b);
    expect_cert(c, &o, "x.wild.test", "wild.test renewed");
    expect_cert(c, &o, "www.example.com", "www.example.com");
    conn_free(&ka);
    conn_free(&kb);
    SSL_CTX_free(c);
    cert_cleanup(&def2);
    cert_cleanup(&wild2);
    cert_cleanup(&wild3);
    X509_free(renewed);
    EVP_PKEY_free(k);
}

/* The reference's order over real handshakes: exact name before wildcard,
 * and only then ECDSA before RSA; a client that cannot verify the winner
 * gets the best certificate it can verify. */
static void test_precedence_name_then_key(void **state)
{
    EVP_PKEY *rsa1 = key_rsa(), *rsa2 = key_rsa(), *ec1 = key_ec();
    X509 *exact_rsa =
        ut_make_cert(rsa1, "exact rsa", "DNS:exact.wild.test", F.ca, F.ca_key, false, 30);
    X509 *wild_rsa = ut_make_cert(rsa2, "wild rsa", "DNS:*.wild.test", F.ca, F.ca_key, false, 30);
    X509 *exact_ec = ut_make_cert(ec1, "exact ec", "DNS:ec.wild.test", F.ca, F.ca_key, false, 30);
    struct rc_certificate c1, c2, c3;
    cert_fill(&c1, "exact-rsa", exact_rsa, NULL, rsa1);
    cert_fill(&c2, "wild-rsa", wild_rsa, NULL, rsa2);
    cert_fill(&c3, "exact-ec", exact_ec, NULL, ec1);
    const struct rc_certificate *ext[] = {&F.c_wild, &c1, &c2, &c3};
    struct rc_listener l;
    listener_init(&l, &pol_1_2_strict_13);
    l.tls.extension_certificates = ext;
    l.tls.n_extension_certificates = 4;
    SSL_CTX *ctx = server_ctx(&l, F.keys, false);

    static const char *rsa_algs = "rsa_pss_rsae_sha256:rsa_pkcs1_sha256";
    static const char *ec_algs = "ecdsa_secp256r1_sha256";
    const struct {
        const char *sni;
        struct client_opts o;
        const char *want;
    } cases[] = {
        /* exact RSA vs ECDSA wildcard: exact wins for any client that can verify it */
        {"exact.wild.test", {0}, "exact rsa"},
        {"exact.wild.test", {.version = TLS1_2_VERSION}, "exact rsa"},
        {"exact.wild.test", {.sigalgs = rsa_algs}, "exact rsa"},
        {"exact.wild.test", {.sigalgs = ec_algs}, "wild.test"},
        {"exact.wild.test",
         {.version = TLS1_2_VERSION, .ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256"},
         "wild.test"},
        /* two wildcards: ECDSA first, RSA for an RSA-only client */
        {"other.wild.test", {0}, "wild.test"},
        {"other.wild.test", {.version = TLS1_2_VERSION}, "wild.test"},
        {"other.wild.test", {.sigalgs = rsa_algs}, "wild rsa"},
        {"other.wild.test",
         {.version = TLS1_2_VERSION, .ciphers = "ECDHE-RSA-AES128-GCM-SHA256"},
         "wild rsa"},
        {"other.wild.test", {.version = TLS1_2_VERSION, .sigalgs = "RSA+SHA256"}, "wild rsa"},
        /* exact ECDSA: an RSA-only client gets the best RSA match, the wildcard */
        {"ec.wild.test", {0}, "exact ec"},
        {"ec.wild.test", {.sigalgs = rsa_algs}, "wild rsa"},
        {"ec.wild.test", {.version = TLS1_2_VERSION, .sigalgs = "RSA+SHA256"}, "wild rsa"},
        {"ec.wild.test", {.version = TLS1_2_VERSION}, "exact ec"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_cert(ctx, &cases[i].o, cases[i].sni, cases[i].want);
    SSL_CTX_free(ctx);
    struct rc_certificate *cs[] = {&c1, &c2, &c3};
    for (size_t i = 0; i < 3; i++)
        cert_cleanup(cs[i]);
    X509_free(exact_rsa);
    X509_free(wild_rsa);
    X509_free(exact_ec);
    EVP_PKEY_free(rsa1);
    EVP_PKEY_free(rsa2);
    EVP_PKEY_free(ec1);
}

/* Counts the NewSessionTicket messages a server sends. */
static void count_tickets(int write_p, int version, int content_type, const void *buf, size_t len,
                          SSL *ssl, void *arg)
{
    if (write_p && content_type == SSL3_RT_HANDSHAKE && len > 0 &&
        ((const unsigned char *)buf)[0] == SSL3_MT_NEWSESSION_TICKET)
        (*(int *)arg)++;
}

/* What the handshake path leaves out, and what it must still do: one TLS
 * 1.3 ticket per full handshake, not OpenSSL's two (tls_keys.h), or as
 * many as the ring says, and one when resumed (the callback renews, see
 * tls_ctx.c); the listener's default certificate served without being
 * installed again, and other certificates installed over it, on the same
 * context, in any order; no chain built from an empty store, and with
 * mTLS the chain built from the client CAs as before. */
static void test_handshake_work(void **state)
{
    struct client_opts o13 = {.version = TLS1_3_VERSION};
    SSL_CTX *ctx = NULL;
    struct conn k;
    int tickets = 0; /* the last context's message callback counts here until it is freed */
    static const unsigned wants[] = {3, PX_TLS_TICKETS_DEFAULT}; /* the last context stays */
    for (size_t i = 0; i < 2; i++) {
        unsigned want = wants[i];
        SSL_CTX_free(ctx);
        px_tls_keys_set_tickets(F.keys, want);
        ctx = server_ctx(&F.l, F.keys, false);
        tickets = 0;
        SSL_CTX_set_msg_callback(ctx, count_tickets);
        SSL_CTX_set_msg_callback_arg(ctx, &tickets);
        k = hs(ctx, &o13, "www.example.com", NULL);
        assert_true(k.ok);
        assert_int_equal(tickets, (int)want);
        SSL_SESSION *sess = SSL_get1_session(k.c);
        conn_free(&k);
        tickets = 0;
        k = hs(ctx, &o13, "www.example.com", sess);
        assert_true(k.ok && SSL_session_reused(k.c));
        assert_int_equal(tickets, 1);
        conn_free(&k);
        SSL_SESSION_free(sess);
    }
    assert_int_equal(px_tls_keys_tickets(F.keys), 1);
    px_tls_keys_set_tickets(F.keys, 0);
    assert_int_equal(px_tls_keys_tickets(F.keys), 1);
    px_tls_keys_set_tickets(F.keys, 99);
    assert_int_equal(px_tls_keys_tickets(F.keys), PX_TLS_TICKETS_MAX);
    px_tls_keys_set_tickets(F.keys, PX_TLS_TICKETS_DEFAULT);

    /* Defaults and others alternating on one context. */
    struct client_opts o = {0};
    const char *sni[] = {NULL, "www.example.com", "unknown.test", "foo.wild.test", NULL};
    const char *cn[] = {"default.test", "www.example.com", "default.test", "wild.test",
                        "default.test"};
    const char *host[] = {"default.test", "www.example.com", "default.test", "foo.wild.test",
                          "default.test"};
    for (size_t i = 0; i < sizeof sni / sizeof sni[0]; i++) {
        k = hs(ctx, &o, sni[i], NULL);
        assert_true(k.ok);
        char got[128];
        peer_cn(k.c, got, sizeof got);
        assert_string_equal(got, cn[i]);
        assert_true(SSL_get_certificate(k.s) != NULL);
        assert_true(px_tls_host_allowed(k.s, host[i], strlen(host[i])));
        STACK_OF(X509) *chain = SSL_get_peer_cert_chain(k.c);
        /* www-ec comes with its intermediate; the others alone. */
        assert_int_equal(sk_X509_num(chain), i == 1 ? 2 : 1);
        conn_free(&k);
    }
    SSL_CTX_free(ctx);

    /* A one-certificate listener serves its certificate to every client. */
    struct rc_listener one;
    listener_init(&one, &pol_1_2_strict_13);
    one.tls.n_extension_certificates = 0;
    ctx = server_ctx(&one, F.keys, false);
    for (int v = TLS1_2_VERSION; v <= TLS1_3_VERSION; v++) {
        struct client_opts ov = {.version = v};
        k = hs(ctx, &ov, "default.test", NULL);
        assert_true(k.ok);
        char got[128];
        peer_cn(k.c, got, sizeof got);
        assert_string_equal(got, "default.test");
        assert_true(px_tls_host_allowed(k.s, "default.test", 12));
        assert_false(px_tls_host_allowed(k.s, "www.example.com", 15));
        conn_free(&k);
    }
    SSL_CTX_free(ctx);

    /* mTLS: the default certificate's issuer is a client CA, and OpenSSL
     * still completes its chain from the store. */
    struct rc_listener l;
    listener_init(&l, &pol_1_2_strict_13);
    l.tls.mutual.enabled = true;
    l.tls.mutual.ca_certificates = F.cas;
    l.tls.mutual.n_ca_certificates = 1;
    ctx = server_ctx(&l, F.keys, false);
    struct client_opts good = {.cert = F.client, .key = F.client_key};
    k = hs(ctx, &good, "default.test", NULL);
    assert_true(k.ok);
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(k.c);
    assert_true(sk_X509_num(chain) >= 2);
    assert_int_equal(X509_cmp(sk_X509_value(chain, 1), F.ca), 0);
    conn_free(&k);
    SSL_CTX_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sni_selection),
        cmocka_unit_test(test_ecdsa_or_rsa_by_client),
        cmocka_unit_test(test_policy_versions),
        cmocka_unit_test(test_policy_ciphers),
        cmocka_unit_test(test_renegotiation_refused),
        cmocka_unit_test(test_ticket_lifetime),
        cmocka_unit_test(test_resumption_across_contexts),
        cmocka_unit_test(test_ticket_key_files),
        cmocka_unit_test(test_mutual_tls),
        cmocka_unit_test(test_alpn),
        cmocka_unit_test(test_host_allowed),
        cmocka_unit_test(test_build_errors),
        cmocka_unit_test(test_many_certificates),
        cmocka_unit_test(test_contexts_share_parsed_certificates),
        cmocka_unit_test(test_precedence_name_then_key),
        cmocka_unit_test(test_handshake_work),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
