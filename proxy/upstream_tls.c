/* TLS to backend servers: the client SSL_CTX of an HTTPS group and the
 * per-connection setup (upstream_tls.h). */
#include "proxy/upstream_tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "proxy/backend-t.h"

static const unsigned char alpn_h1[] = "\x08http/1.1";

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1; /* encrypted keys are refused, never prompted for */
}

void px_upstream_tls_digest(const struct rc_server_group *g, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    out[0] = '\0';
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return;
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, "ca", 3);
    for (size_t i = 0; i < g->tls.n_ca_certificates; i++) {
        const struct rc_certificate *c = g->tls.ca_certificates[i];
        EVP_DigestUpdate(ctx, c->meta.digest, strlen(c->meta.digest) + 1);
    }
    EVP_DigestUpdate(ctx, "client", 7);
    if (g->tls.client_certificate)
        EVP_DigestUpdate(ctx, g->tls.client_certificate->meta.digest,
                         strlen(g->tls.client_certificate->meta.digest) + 1);
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* A new session of a connection: a copy is kept in its per-worker pool
 * (replacing the previous one), offered to the next handshake with that
 * server. A copy, because sess stays the connection's own session, which
 * OpenSSL marks not resumable when the connection is freed without a
 * close_notify exchange (as albd closes backend connections). */
static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    struct px_pool *pool = SSL_get_app_data(ssl);
    SSL_SESSION *copy = pool ? SSL_SESSION_dup(sess) : NULL;
    if (copy) {
        SSL_SESSION_free(pool->tls_session);
        pool->tls_session = copy;
    }
    return 0; /* sess stays OpenSSL's */
}

static int add_cas(SSL_CTX *ctx, const struct rc_server_group *g, char *err, size_t errlen)
{
    if (g->tls.n_ca_certificates == 0) {
        if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
            ERR_clear_error();
            snprintf(err, errlen, "ServerGroup/%s: cannot load the system's CA certificates",
                     g->meta.name);
            return -1;
        }
        return 0;
    }
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    size_t added = 0;
    for (size_t i = 0; i < g->tls.n_ca_certificates; i++) {
        const struct rc_certificate *c = g->tls.ca_certificates[i];
        if (!c || !c->cert_pem)
            continue;
        BIO *b = BIO_new_mem_buf(c->cert_pem, (int)c->cert_pem_len);
        if (!b)
            break;
        X509 *x;
        while ((x = PEM_read_bio_X509(b, NULL, no_passphrase, NULL)) != NULL) {
            if (X509_STORE_add_cert(store, x) == 1)
                added++;
            X509_free(x);
        }
        BIO_free(b);
        ERR_clear_error();
    }
    if (added == 0) {
        snprintf(err, errlen, "ServerGroup/%s: tls.caCertificates: no readable CA certificate",
                 g->meta.name);
        return -1;
    }
    /* A CA certificate that is itself an intermediate is a trust anchor. */
    X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
    return 0;
}

static int add_client_cert(SSL_CTX *ctx, const struct rc_server_group *g, char *err, size_t errlen)
{
    const struct rc_certificate *c = g->tls.client_certificate;
    const char *name = c->meta.name;
    if (!c->cert_pem || !c->key_pem) {
        snprintf(err, errlen, "ServerGroup/%s: client certificate %s: no %s", g->meta.name, name,
                 c->cert_pem ? "private key" : "certificate");
        return -1;
    }
    int ok = 0;
    BIO *b = BIO_new_mem_buf(c->cert_pem, (int)c->cert_pem_len);
    X509 *leaf = b ? PEM_read_bio_X509(b, NULL, no_passphrase, NULL) : NULL;
    if (leaf && SSL_CTX_use_certificate(ctx, leaf) == 1) {
        ok = 1;
        X509 *x;
        while (ok && (x = PEM_read_bio_X509(b, NULL, no_passphrase, NULL)) != NULL) {
            ok = SSL_CTX_add1_chain_cert(ctx, x) == 1;
            X509_free(x);
        }
    }
    X509_free(leaf);
    BIO_free(b);
    ERR_clear_error();
    if (!ok) {
        snprintf(err, errlen, "ServerGroup/%s: client certificate %s: cannot read the certificate",
                 g->meta.name, name);
        return -1;
    }
    b = BIO_new_mem_buf(c->key_pem, (int)c->key_pem_len);
    EVP_PKEY *pkey = b ? PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL) : NULL;
    BIO_free(b);
    ok = pkey && SSL_CTX_use_PrivateKey(ctx, pkey) == 1 && SSL_CTX_check_private_key(ctx) == 1;
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    if (!ok) {
        snprintf(err, errlen,
                 "ServerGroup/%s: client certificate %s: the private key is unreadable or does "
                 "not match the certificate",
                 g->meta.name, name);
        return -1;
    }
    return 0;
}

SSL_CTX *px_upstream_tls_ctx_new(const struct rc_server_group *g, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        ERR_clear_error();
        snprintf(err, errlen, "ServerGroup/%s: out of memory", g->meta.name);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
    if (SSL_CTX_set_alpn_protos(ctx, alpn_h1, sizeof alpn_h1 - 1) != 0 ||
        add_cas(ctx, g, err, errlen) != 0 ||
        (g->tls.client_certificate && add_client_cert(ctx, g, err, errlen) != 0)) {
        if (!err[0])
            snprintf(err, errlen, "ServerGroup/%s: out of memory", g->meta.name);
        SSL_CTX_free(ctx);
        ERR_clear_error();
        return NULL;
    }
    return ctx;
}

int px_upstream_tls_setup(SSL *ssl, const char *name, struct px_pool *pool)
{
    unsigned char ip[16];
    bool is_ip = inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1;
    int ok;
    if (is_ip) {
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1;
    } else {
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = SSL_set_tlsext_host_name(ssl, name) == 1 && SSL_set1_host(ssl, name) == 1;
    }
    SSL_set_app_data(ssl, pool);
    if (ok && pool->tls_session) {
        /* A copy again: the connection's session is marked not resumable
         * when it ends without close_notify, and a server that issues no
         * new ticket on a resumed connection (nginx) would leave the
         * pool's copy marked so. */
        SSL_SESSION *copy = SSL_SESSION_dup(pool->tls_session);
        ok = copy && SSL_set_session(ssl, copy) == 1;
        SSL_SESSION_free(copy);
    }
    ERR_clear_error();
    return ok ? 0 : -1;
}

void px_upstream_tls_why(SSL *ssl, char *buf, size_t size)
{
    long v = SSL_get_verify_result(ssl);
    unsigned long e = ERR_peek_error();
    if (v != X509_V_OK) {
        snprintf(buf, size, "certificate verify failed: %s", X509_verify_cert_error_string(v));
    } else if (e != 0) {
        const char *r = ERR_reason_error_string(e);
        snprintf(buf, size, "%s", r ? r : "handshake failed");
    } else {
        snprintf(buf, size, "handshake failed");
    }
    ERR_clear_error();
}
