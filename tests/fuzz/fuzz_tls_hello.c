/* Fuzz target: SNI, ALPN and the Host-vs-SNI check of HTTPS listeners
 * through memory-BIO handshakes (proxy/tls_io.c over the SSL_CTX that
 * proxy/tls_ctx.c builds for listener c-https of data/proxy: certificate
 * tests/data/certs/test-only-server.pem, strictSni, HTTP/2 offered).
 *
 * Input, byte 0 bit 0 = 0 (raw): a big-endian 16-bit length L, L bytes
 * fed to the server as the client's first flight (a ClientHello in TLS
 * records), then the rest as a Host value. The ClientHello callback (SNI:
 * certificate choice) and the ALPN callback run on whatever the bytes say.
 *
 * Byte 0 bit 0 = 1 (handshake): a length-prefixed SNI (one byte), a
 * length-prefixed ALPN list in wire format (one byte), then a Host value:
 * an OpenSSL client offering them does a whole handshake with the server.
 *
 * Asserts: no crash or sanitizer report; ALPN, when chosen, is "h2" or
 * "http/1.1" and one the client offered; the domain-fronting check
 * (px_tls_check_request with that Host, and with it as an absolute-form
 * target) answers 0 or 421 and never allows a Host before a ClientHello
 * was processed; after a completed handshake with SNI "server.test", Host
 * "server.test" is allowed. */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/headers.h"
#include "proxy/tls_ctx.h"
#include "proxy/tls_headers.h"
#include "proxy/tls_io.h"
#include "tests/fuzz/fuzz_proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static SSL_CTX *client_ctx;

static int host_check(SSL *ssl, const char *host, size_t n)
{
    struct px_hdr h = {"Host", 4, host, n};
    int st = px_tls_check_request(ssl, NULL, 0, &h, 1);
    if (st != 0 && st != 421)
        fz_fail("host check answered %d", st);
    /* The same host as an absolute-form target's authority. */
    char target[600];
    if (n < 500) {
        int tl = snprintf(target, sizeof target, "https://%.*s/x", (int)n, host);
        int st2 = px_tls_check_request(ssl, target, (size_t)tl, NULL, 0);
        if (st2 != 0 && st2 != 421)
            fz_fail("target check answered %d", st2);
    }
    return st;
}

static void check_alpn(SSL *ssl, const unsigned char *offered, size_t offered_len)
{
    const unsigned char *p;
    unsigned len;
    SSL_get0_alpn_selected(ssl, &p, &len);
    if (len == 0)
        return;
    if (!((len == 2 && memcmp(p, "h2", 2) == 0) || (len == 8 && memcmp(p, "http/1.1", 8) == 0)))
        fz_fail("ALPN chose %.*s", (int)len, p);
    if (offered) {
        bool found = false;
        for (size_t i = 0; i < offered_len;) {
            size_t l = offered[i];
            if (i + 1 + l > offered_len)
                break;
            if (l == len && memcmp(offered + i + 1, p, len) == 0)
                found = true;
            i += 1 + l;
        }
        if (!found)
            fz_fail("ALPN chose %.*s, which the client did not offer", (int)len, p);
    }
}

/* A sink that takes everything (and counts it). */
static int count_sink(void *arg, const char *data, size_t n)
{
    (void)data;
    *(size_t *)arg += n;
    return 0;
}

static void raw(SSL_CTX *ctx, const uint8_t *d, size_t n)
{
    if (n < 2)
        return;
    size_t hl = (size_t)d[0] << 8 | d[1];
    d += 2;
    n -= 2;
    if (hl > n)
        hl = n;
    /* As a client connection does: the input lent, the output to a sink. */
    size_t sent = 0;
    struct px_tls_io *t = px_tls_io_new(ctx, count_sink, &sent);
    if (!t)
        abort();
    SSL *ssl = px_tls_io_ssl(t);
    /* Before any ClientHello nothing is allowed. */
    if (host_check(ssl, (const char *)d + hl, n - hl) == 0)
        fz_fail("a Host was allowed before any ClientHello");
    if (px_tls_io_lend(t, (const char *)d, hl) < 0)
        abort();
    px_tls_io_handshake(t);
    if (px_tls_io_in_pending(t) > hl)
        fz_fail("more input pending than was lent");
    if (px_tls_io_unlend(t) < 0)
        abort();
    check_alpn(ssl, NULL, 0);
    host_check(ssl, (const char *)d + hl, n - hl);
    px_tls_io_free(t);
    ERR_clear_error();
}

static void handshake(SSL_CTX *ctx, const uint8_t *d, size_t n)
{
    if (n < 1 || (size_t)d[0] + 1 > n)
        return;
    char sni[256];
    size_t sl = d[0];
    memcpy(sni, d + 1, sl);
    sni[sl] = '\0';
    d += 1 + sl;
    n -= 1 + sl;
    if (n < 1 || (size_t)d[0] + 1 > n)
        return;
    const unsigned char *alpn = d + 1;
    size_t al = d[0];
    const char *host = (const char *)d + 1 + al;
    size_t hostl = n - 1 - al;
    if (strlen(sni) != sl)
        return; /* a NUL in the name: OpenSSL's client would cut it */

    struct px_tls_io *t = px_tls_io_new(ctx, NULL, NULL);
    SSL *cl = SSL_new(client_ctx);
    BIO *crd = BIO_new(BIO_s_mem()), *cwr = BIO_new(BIO_s_mem());
    if (!t || !cl || !crd || !cwr)
        abort();
    BIO_set_mem_eof_return(crd, -1);
    BIO_set_mem_eof_return(cwr, -1);
    SSL_set_bio(cl, crd, cwr);
    SSL_set_connect_state(cl);
    bool sni_set = sl > 0 && SSL_set_tlsext_host_name(cl, sni) == 1;
    bool alpn_set = al > 0 && SSL_set_alpn_protos(cl, alpn, (unsigned)al) == 0;
    SSL *sv = px_tls_io_ssl(t);
    char buf[16384];
    bool done = false;
    for (int round = 0; round < 8 && !done; round++) {
        int rc = SSL_do_handshake(cl);
        int n_out;
        while ((n_out = BIO_read(cwr, buf, sizeof buf)) > 0)
            if (px_tls_io_feed(t, buf, (size_t)n_out) < 0)
                abort();
        px_tls_io_handshake(t);
        size_t k;
        while ((k = px_tls_io_take(t, buf, sizeof buf)) > 0)
            BIO_write(crd, buf, (int)k);
        done = rc == 1 && SSL_is_init_finished(sv);
    }
    check_alpn(sv, alpn_set ? alpn : NULL, alpn_set ? al : 0);
    int st = host_check(sv, host, hostl);
    if (done && sni_set && strcmp(sni, "server.test") == 0 && hostl == 11 &&
        memcmp(host, "server.test", 11) == 0 && st != 0)
        fz_fail("Host server.test refused after a handshake for server.test");
    SSL_free(cl);
    px_tls_io_free(t);
    ERR_clear_error();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    SSL_CTX *ctx = fz_listener(FZ_LIS_HTTPS)->ssl_ctx;
    if (!ctx)
        fz_fail("listener c-https has no SSL_CTX");
    if (!client_ctx) {
        client_ctx = SSL_CTX_new(TLS_client_method());
        if (!client_ctx)
            abort();
        SSL_CTX_set_verify(client_ctx, SSL_VERIFY_NONE, NULL);
    }
    if (data[0] & 1)
        handshake(ctx, data + 1, size - 1);
    else
        raw(ctx, data + 1, size - 1);
    return 0;
}
