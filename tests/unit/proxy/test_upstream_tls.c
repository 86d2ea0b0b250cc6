/* proxy/upstream_tls.c: the client context of an HTTPS group verifies the
 * backend's certificate against the group's CAs and the name (SAN DNS for
 * a name, sent as SNI; no SNI for an IP literal), offers only http/1.1,
 * keeps each new session in the connection's pool and offers it again (the
 * next handshake resumes), says why a handshake failed (the X509 error),
 * and refuses a client certificate whose key does not match. Handshakes
 * run in memory against a server SSL_CTX (px_tls_io on both sides). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/backend-t.h"
#include "proxy/tls_io.h"
#include "proxy/upstream_tls.h"

static char *slurp(const char *rel, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/certs/%s", ALBD_TEST_DATA, rel);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = calloc(1, 1 << 16);
    assert_non_null(buf);
    *len = fread(buf, 1, (1 << 16) - 1, f);
    fclose(f);
    return buf;
}

struct fixture {
    struct rc_certificate server_as_ca, test_ca, client, bad_client;
    char *bufs[6];
    SSL_CTX *server;
};

static void cert(struct rc_certificate *c, const char *name, const char *digest, char *pem,
                 size_t len, char *key, size_t klen)
{
    memset(c, 0, sizeof *c);
    c->meta.name = name;
    snprintf(c->meta.digest, sizeof c->meta.digest, "%s", digest);
    c->type = key ? RC_CERT_SERVER : RC_CERT_CA;
    c->cert_pem = pem;
    c->cert_pem_len = len;
    c->key_pem = key;
    c->key_pem_len = klen;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    size_t n[6];
    f->bufs[0] = slurp("test-only-server.pem", &n[0]);
    f->bufs[1] = slurp("test-only-server.key", &n[1]);
    f->bufs[2] = slurp("test-only-ca.pem", &n[2]);
    f->bufs[3] = slurp("test-only-other.key", &n[3]);
    /* The self-signed server certificate trusted as its own anchor. */
    cert(&f->server_as_ca, "server-ca", "d1", f->bufs[0], n[0], NULL, 0);
    cert(&f->test_ca, "test-ca", "d2", f->bufs[2], n[2], NULL, 0);
    cert(&f->client, "client", "d3", f->bufs[0], n[0], f->bufs[1], n[1]);
    cert(&f->bad_client, "bad-client", "d4", f->bufs[0], n[0], f->bufs[3], n[3]);

    f->server = SSL_CTX_new(TLS_server_method());
    assert_non_null(f->server);
    BIO *b = BIO_new_mem_buf(f->bufs[0], (int)n[0]);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    b = BIO_new_mem_buf(f->bufs[1], (int)n[1]);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_int_equal(SSL_CTX_use_certificate(f->server, x), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(f->server, k), 1);
    X509_free(x);
    EVP_PKEY_free(k);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    SSL_CTX_free(f->server);
    for (int i = 0; i < 6; i++)
        free(f->bufs[i]);
    free(f);
    return 0;
}

static void group(struct rc_server_group *g, const struct rc_certificate **cas, size_t n,
                  const struct rc_certificate *client)
{
    memset(g, 0, sizeof *g);
    g->meta.name = "web";
    g->protocol = RC_GROUP_HTTPS;
    g->tls.ca_certificates = cas;
    g->tls.n_ca_certificates = n;
    g->tls.client_certificate = client;
}

/* Moves bytes between the two ends until both finished or one failed:
 * 1 connected, -1 the client's handshake failed. */
static int pump(struct px_tls_io *c, struct px_tls_io *s)
{
    char buf[65536];
    for (int i = 0; i < 20; i++) {
        int rc = px_tls_io_handshake(c);
        int rs = px_tls_io_handshake(s);
        size_t n;
        while ((n = px_tls_io_take(c, buf, sizeof buf)) > 0)
            assert_int_equal(px_tls_io_feed(s, buf, n), 0);
        while ((n = px_tls_io_take(s, buf, sizeof buf)) > 0)
            assert_int_equal(px_tls_io_feed(c, buf, n), 0);
        if (rc < 0)
            return -1;
        if (rc == 1 && rs == 1) {
            /* Let the client read the session tickets. */
            char tmp[16];
            px_tls_io_read(c, tmp, sizeof tmp);
            return 1;
        }
        if (rs < 0)
            return -1;
    }
    fail_msg("handshake did not finish");
    return -1;
}

/* One connection from client context cctx to the fixture's server. */
static size_t server_tickets = 2; /* tickets the server issues per connection */

static int connect_once(struct fixture *f, SSL_CTX *cctx, const char *name, struct px_pool *pool,
                        char *why, size_t whylen, bool *reused, const char **sni)
{
    struct px_tls_io *c = px_tls_io_new(cctx, NULL, NULL);
    struct px_tls_io *s = px_tls_io_new(f->server, NULL, NULL);
    assert_non_null(c);
    assert_non_null(s);
    SSL_set_num_tickets(px_tls_io_ssl(s), server_tickets);
    SSL_set_connect_state(px_tls_io_ssl(c));
    assert_int_equal(px_upstream_tls_setup(px_tls_io_ssl(c), name, pool), 0);
    int r = pump(c, s);
    if (r < 0 && why)
        px_upstream_tls_why(px_tls_io_ssl(c), why, whylen);
    if (reused)
        *reused = SSL_session_reused(px_tls_io_ssl(c));
    if (sni) {
        const char *v = SSL_get_servername(px_tls_io_ssl(s), TLSEXT_NAMETYPE_host_name);
        *sni = v ? (strcmp(v, "server.test") == 0 ? "server.test" : "other") : NULL;
    }
    if (r == 1) {
        const unsigned char *alpn;
        unsigned len;
        px_tls_io_alpn(c, &alpn, &len);
        assert_int_equal(len, 0); /* the server offers no ALPN: none chosen */
    }
    px_tls_io_free(c);
    px_tls_io_free(s);
    ERR_clear_error();
    return r;
}

static void verifies_name_and_resumes(void **state)
{
    struct fixture *f = *state;
    const struct rc_certificate *cas[] = {&f->server_as_ca};
    struct rc_server_group g;
    group(&g, cas, 1, NULL);
    char err[256] = "";
    SSL_CTX *ctx = px_upstream_tls_ctx_new(&g, err, sizeof err);
    assert_non_null(ctx);
    struct px_pool pool = {0};
    bool reused = true;
    const char *sni = NULL;
    assert_int_equal(connect_once(f, ctx, "server.test", &pool, NULL, 0, &reused, &sni), 1);
    assert_false(reused);
    assert_string_equal(sni, "server.test");
    assert_non_null(pool.tls_session); /* kept for the next connection */
    assert_int_equal(connect_once(f, ctx, "server.test", &pool, NULL, 0, &reused, NULL), 1);
    assert_true(reused);
    /* A server that issues no ticket on a resumed connection (nginx):
     * the pool's session must stay resumable for the one after. */
    server_tickets = 0;
    assert_int_equal(connect_once(f, ctx, "server.test", &pool, NULL, 0, &reused, NULL), 1);
    assert_true(reused);
    assert_int_equal(connect_once(f, ctx, "server.test", &pool, NULL, 0, &reused, NULL), 1);
    assert_true(reused);
    server_tickets = 2;
    /* A wildcard SAN covers one label (another name: another pool). */
    struct px_pool other = {0};
    assert_int_equal(connect_once(f, ctx, "a.server.test", &other, NULL, 0, &reused, NULL), 1);
    assert_false(reused);
    SSL_SESSION_free(other.tls_session);
    SSL_SESSION_free(pool.tls_session);
    SSL_CTX_free(ctx);
}

static void refuses_wrong_name_and_wrong_ca(void **state)
{
    struct fixture *f = *state;
    const struct rc_certificate *good[] = {&f->server_as_ca};
    const struct rc_certificate *other[] = {&f->test_ca};
    struct rc_server_group g;
    char err[256] = "", why[256] = "";
    const char *sni = "unset";

    group(&g, good, 1, NULL);
    SSL_CTX *ctx = px_upstream_tls_ctx_new(&g, err, sizeof err);
    assert_non_null(ctx);
    struct px_pool pool = {0};
    assert_int_equal(connect_once(f, ctx, "wrong.example", &pool, why, sizeof why, NULL, NULL), -1);
    assert_string_equal(why, "certificate verify failed: hostname mismatch");
    assert_null(pool.tls_session);
    /* An IP literal: no SNI, and the IP must be a SAN (it is not). */
    assert_int_equal(connect_once(f, ctx, "127.0.0.1", &pool, why, sizeof why, NULL, &sni), -1);
    assert_string_equal(why, "certificate verify failed: IP address mismatch");
    assert_null(sni);
    SSL_CTX_free(ctx);

    group(&g, other, 1, NULL);
    ctx = px_upstream_tls_ctx_new(&g, err, sizeof err);
    assert_non_null(ctx);
    assert_int_equal(connect_once(f, ctx, "server.test", &pool, why, sizeof why, NULL, NULL), -1);
    assert_string_equal(why, "certificate verify failed: self-signed certificate");
    SSL_CTX_free(ctx);
}

static void digest_and_client_certificate(void **state)
{
    struct fixture *f = *state;
    const struct rc_certificate *cas[] = {&f->server_as_ca};
    const struct rc_certificate *two[] = {&f->server_as_ca, &f->test_ca};
    struct rc_server_group g;
    char d1[65], d2[65], d3[65], d4[65], err[256] = "";
    group(&g, cas, 1, NULL);
    px_upstream_tls_digest(&g, d1);
    px_upstream_tls_digest(&g, d2);
    assert_string_equal(d1, d2);
    group(&g, two, 2, NULL);
    px_upstream_tls_digest(&g, d3);
    assert_string_not_equal(d1, d3);
    group(&g, cas, 1, &f->client);
    px_upstream_tls_digest(&g, d4);
    assert_string_not_equal(d1, d4);

    SSL_CTX *ctx = px_upstream_tls_ctx_new(&g, err, sizeof err);
    assert_non_null(ctx);
    SSL_CTX_free(ctx);

    group(&g, cas, 1, &f->bad_client);
    assert_null(px_upstream_tls_ctx_new(&g, err, sizeof err));
    assert_non_null(strstr(err, "ServerGroup/web"));
    assert_non_null(strstr(err, "bad-client"));
    assert_null(strstr(err, "PRIVATE KEY"));

    /* No CA certificates: the system's trust store (it loads). */
    group(&g, NULL, 0, NULL);
    ctx = px_upstream_tls_ctx_new(&g, err, sizeof err);
    assert_non_null(ctx);
    SSL_CTX_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(verifies_name_and_resumes),
        cmocka_unit_test(refuses_wrong_name_and_wrong_ca),
        cmocka_unit_test(digest_and_client_certificate),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
