/* Interim SSL_CTX construction: default certificate and policy only. */
#include "proxy/tls_ctx.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct px_tls_keys {
    int unused;
};

struct px_tls_keys *px_tls_keys_new(void)
{
    return calloc(1, sizeof(struct px_tls_keys));
}

void px_tls_keys_free(struct px_tls_keys *k)
{
    free(k);
}

static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char h11[] = "\x08http/1.1";
    unsigned char *o = NULL;
    if (SSL_select_next_proto(&o, outlen, h11, sizeof h11 - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = o;
    return SSL_TLSEXT_ERR_OK;
}

SSL_CTX *px_tls_ctx_new(const struct rc_listener *l, struct px_tls_keys *keys, bool h2_supported,
                        char *err, size_t errlen)
{
    const struct rc_certificate *c = l->tls.certificate;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    BIO *bio = NULL;
    X509 *x = NULL;
    EVP_PKEY *pk = NULL;
    if (!ctx || !c || !c->cert_pem || !c->key_pem)
        goto fail;
    bio = BIO_new_mem_buf(c->cert_pem, (int)c->cert_pem_len);
    x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    if (!x || SSL_CTX_use_certificate(ctx, x) != 1)
        goto fail;
    X509 *chain;
    while ((chain = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
        SSL_CTX_add0_chain_cert(ctx, chain);
    ERR_clear_error();
    BIO_free(bio);
    bio = BIO_new_mem_buf(c->key_pem, (int)c->key_pem_len);
    pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    if (!pk || SSL_CTX_use_PrivateKey(ctx, pk) != 1)
        goto fail;
    const struct rc_tls_policy *p = l->tls.policy;
    if (p) {
        int min = 0, max = 0;
        static const int v[] = {TLS1_VERSION, TLS1_1_VERSION, TLS1_2_VERSION, TLS1_3_VERSION};
        for (int i = 0; i < 4; i++)
            if (p->versions & (1u << i)) {
                if (!min)
                    min = v[i];
                max = v[i];
            }
        SSL_CTX_set_min_proto_version(ctx, min);
        SSL_CTX_set_max_proto_version(ctx, max);
        if (p->cipher_list && p->cipher_list[0])
            SSL_CTX_set_cipher_list(ctx, p->cipher_list);
        if (p->ciphersuites)
            SSL_CTX_set_ciphersuites(ctx, p->ciphersuites);
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, NULL);
    X509_free(x);
    EVP_PKEY_free(pk);
    BIO_free(bio);
    return ctx;
fail:
    snprintf(err, errlen, "cannot build the TLS context (certificate %s)", c ? c->meta.name : "?");
    ERR_clear_error();
    X509_free(x);
    EVP_PKEY_free(pk);
    BIO_free(bio);
    SSL_CTX_free(ctx);
    return NULL;
}
