#include "proxy/tls_io.h"

#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/obs-t.h"

struct px_tls_io {
    SSL *ssl;
    BIO *rbio;                  /* ciphertext from the peer (the source BIO) */
    BIO *wbio;                  /* ciphertext for the peer (memory, or the sink) */
    px_tls_io_append_fn append; /* the sink, when set */
    void *append_arg;
    int fail;              /* why the handshake failed (enum px_obs_tls_fail) */
    const char *fail_text; /* OpenSSL's reason (static), or NULL */
    /* Received ciphertext not yet taken by OpenSSL: the owner's buffer
     * while it is lent (px_tls_io_lend), then, or when fed, a copy. */
    const char *lent;
    size_t lent_len;
    char *kept; /* kept_off..kept_len unread; NULL while nothing is kept */
    size_t kept_off, kept_len, kept_cap;
};

/* The sink BIO: a write hands the bytes to the owner's append at once
 * (a memory BIO would zero its buffer's new space, copy the bytes in, and
 * px_tls_io_take would copy them out again: three passes over every byte
 * sent instead of one). */
static BIO_METHOD *sink_method;
static pthread_once_t methods_once = PTHREAD_ONCE_INIT;

static int sink_write(BIO *b, const char *data, size_t n, size_t *written)
{
    struct px_tls_io *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (!t || t->append(t->append_arg, data, n) < 0)
        return 0;
    *written = n;
    return 1;
}

static long sink_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH; /* written already; nothing else applies */
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

/* The source BIO: OpenSSL reads received ciphertext from what the owner
 * lent or fed (a memory BIO would zero its new space and copy the bytes in
 * before OpenSSL copies them out). */
static BIO_METHOD *source_method;

static int source_read(BIO *b, char *out, size_t n, size_t *readbytes)
{
    struct px_tls_io *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    size_t k = 0;
    if (t && t->kept_off < t->kept_len) { /* older than anything lent */
        k = t->kept_len - t->kept_off < n ? t->kept_len - t->kept_off : n;
        memcpy(out, t->kept + t->kept_off, k);
        t->kept_off += k;
        if (t->kept_off == t->kept_len)
            t->kept_off = t->kept_len = 0;
    } else if (t && t->lent_len) {
        k = t->lent_len < n ? t->lent_len : n;
        memcpy(out, t->lent, k);
        t->lent += k;
        t->lent_len -= k;
    }
    if (k == 0) {
        BIO_set_retry_read(b); /* nothing yet: try again, not end of file */
        return 0;
    }
    *readbytes = k;
    return 1;
}

static long source_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    struct px_tls_io *t = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_PENDING:
        return t ? (long)(t->kept_len - t->kept_off + t->lent_len) : 0;
    case BIO_CTRL_FLUSH:
        return 1;
    default:
        return 0;
    }
}

/* A BIO method of ours: write or read, ctrl; NULL when OpenSSL cannot make
 * one. Made once, for the life of the process. */
static BIO_METHOD *method_new(const char *name, int (*wr)(BIO *, const char *, size_t, size_t *),
                              int (*rd)(BIO *, char *, size_t, size_t *),
                              long (*ctrl)(BIO *, int, long, void *))
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, name);
    if (m && ((wr && !BIO_meth_set_write_ex(m, wr)) || (rd && !BIO_meth_set_read_ex(m, rd)) ||
              !BIO_meth_set_ctrl(m, ctrl) || !BIO_meth_set_create(m, bio_create))) {
        BIO_meth_free(m);
        m = NULL;
    }
    return m;
}

static void methods_init(void)
{
    sink_method = method_new("albd sink", sink_write, NULL, sink_ctrl);
    source_method = method_new("albd source", NULL, source_read, source_ctrl);
}

/* A BIO of method m (the sink or the source) working for t. NULL on
 * failure. */
static BIO *bio_new(BIO_METHOD **m, struct px_tls_io *t)
{
    pthread_once(&methods_once, methods_init);
    BIO *b = *m ? BIO_new(*m) : NULL;
    if (b)
        BIO_set_data(b, t);
    return b;
}

struct px_tls_io *px_tls_io_new(SSL_CTX *ctx, px_tls_io_append_fn append, void *arg)
{
    struct px_tls_io *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->fail = PX_OBS_TLSF_OTHER;
    t->append = append;
    t->append_arg = arg;
    t->ssl = SSL_new(ctx);
    t->rbio = bio_new(&source_method, t);
    t->wbio = append ? bio_new(&sink_method, t) : BIO_new(BIO_s_mem());
    if (!t->ssl || !t->rbio || !t->wbio) {
        SSL_free(t->ssl);
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        free(t);
        ERR_clear_error();
        return NULL;
    }
    if (!append) /* an empty memory BIO means "try again", not end of file */
        BIO_set_mem_eof_return(t->wbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio); /* the SSL owns both BIOs now */
    SSL_set_accept_state(t->ssl);
    SSL_set_options(t->ssl, SSL_OP_NO_RENEGOTIATION);
    /* No SSL_MODE_RELEASE_BUFFERS: it frees and reallocates the record
     * buffers around every record (two mallocs per request); the
     * connection keeps them instead (~34 KiB per TLS connection). */
    return t;
}

void px_tls_io_free(struct px_tls_io *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    free(t->kept);
    free(t);
}

/* Appends n bytes to what is kept. 0 or -ENOMEM. */
static int keep(struct px_tls_io *t, const char *data, size_t n)
{
    if (n == 0)
        return 0;
    if (t->kept_len + n > t->kept_cap && t->kept_off) { /* move the unread part first */
        memmove(t->kept, t->kept + t->kept_off, t->kept_len - t->kept_off);
        t->kept_len -= t->kept_off;
        t->kept_off = 0;
    }
    if (t->kept_len + n > t->kept_cap) {
        size_t cap = t->kept_cap ? t->kept_cap : 4096;
        while (cap < t->kept_len + n)
            cap *= 2;
        char *k = realloc(t->kept, cap);
        if (!k)
            return -ENOMEM;
        t->kept = k;
        t->kept_cap = cap;
    }
    memcpy(t->kept + t->kept_len, data, n);
    t->kept_len += n;
    return 0;
}

int px_tls_io_feed(struct px_tls_io *t, const char *data, size_t n)
{
    if (t->lent_len && px_tls_io_unlend(t) < 0) /* the lent bytes are older */
        return -ENOMEM;
    return keep(t, data, n);
}

int px_tls_io_lend(struct px_tls_io *t, const char *data, size_t n)
{
    if (t->lent_len && px_tls_io_unlend(t) < 0)
        return -ENOMEM;
    if (t->kept_off < t->kept_len)
        return keep(t, data, n); /* behind what is already waiting */
    t->lent = data;
    t->lent_len = n;
    return 0;
}

int px_tls_io_unlend(struct px_tls_io *t)
{
    int rc = keep(t, t->lent, t->lent_len);
    t->lent = NULL;
    t->lent_len = 0;
    return rc;
}

void px_tls_io_trim(struct px_tls_io *t)
{
    if (!t->kept || t->kept_off < t->kept_len)
        return;
    free(t->kept);
    t->kept = NULL;
    t->kept_off = t->kept_len = t->kept_cap = 0;
}

/* Maps an SSL_get_error result; the error queue is cleared so a failure on
 * one connection never shows up on another of this thread. */
static int map_error(struct px_tls_io *t, int ret)
{
    int e = SSL_get_error(t->ssl, ret);
    ERR_clear_error();
    switch (e) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return 0;
    case SSL_ERROR_ZERO_RETURN:
        return -EPIPE;
    default:
        return -EPROTO;
    }
}

/* The failure class of the OpenSSL reason code of a failed handshake. */
static int fail_class(int reason)
{
    if (reason >= SSL_AD_REASON_OFFSET)
        return PX_OBS_TLSF_ALERT; /* SSL_R_*_ALERT_*: the client's alert */
    switch (reason) {
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_VERSION_TOO_HIGH:
    case SSL_R_WRONG_VERSION_NUMBER:
        return PX_OBS_TLSF_PROTOCOL_VERSION;
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_SHARED_SIGNATURE_ALGORITHMS:
    case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM:
        return PX_OBS_TLSF_NO_SHARED_CIPHER;
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
        return PX_OBS_TLSF_HTTP_REQUEST;
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
        return PX_OBS_TLSF_CLIENT_CERTIFICATE;
    default:
        return PX_OBS_TLSF_OTHER;
    }
}

int px_tls_io_handshake(struct px_tls_io *t)
{
    int r = SSL_do_handshake(t->ssl);
    if (r == 1)
        return 1;
    int se = SSL_get_error(t->ssl, r);
    if (se == SSL_ERROR_SSL) {
        unsigned long err = ERR_peek_last_error();
        t->fail = fail_class(ERR_GET_REASON(err));
        t->fail_text = ERR_reason_error_string(err);
    } else if (se != SSL_ERROR_WANT_READ && se != SSL_ERROR_WANT_WRITE) {
        t->fail = se == SSL_ERROR_ZERO_RETURN || se == SSL_ERROR_SYSCALL ? PX_OBS_TLSF_EOF
                                                                         : PX_OBS_TLSF_OTHER;
        t->fail_text = NULL;
    }
    int e = map_error(t, r);
    return e == -EPIPE ? -EPROTO : e;
}

ssize_t px_tls_io_read(struct px_tls_io *t, char *buf, size_t cap)
{
    int n = SSL_read(t->ssl, buf, cap > INT_MAX ? INT_MAX : (int)cap);
    if (n > 0)
        return n;
    return map_error(t, n);
}

int px_tls_io_write(struct px_tls_io *t, const char *data, size_t n)
{
    while (n) {
        int chunk = n > INT_MAX ? INT_MAX : (int)n;
        int w = SSL_write(t->ssl, data, chunk);
        if (w <= 0) {
            ERR_clear_error();
            return -EPROTO;
        }
        data += w;
        n -= (size_t)w;
    }
    return 0;
}

void px_tls_io_shutdown(struct px_tls_io *t)
{
    if (SSL_is_init_finished(t->ssl))
        SSL_shutdown(t->ssl);
    ERR_clear_error();
}

int px_tls_io_fail(const struct px_tls_io *t, const char **text)
{
    *text = t->fail_text;
    return t->fail;
}

size_t px_tls_io_out_pending(struct px_tls_io *t)
{
    return BIO_ctrl_pending(t->wbio);
}

size_t px_tls_io_take(struct px_tls_io *t, char *buf, size_t cap)
{
    int n = BIO_read(t->wbio, buf, cap > INT_MAX ? INT_MAX : (int)cap);
    return n > 0 ? (size_t)n : 0;
}

void px_tls_io_alpn(struct px_tls_io *t, const unsigned char **proto, unsigned *len)
{
    SSL_get0_alpn_selected(t->ssl, proto, len);
    if (!*proto) {
        *proto = (const unsigned char *)"";
        *len = 0;
    }
}

/* SSL_free_buffers could free a read buffer holding part of a record
 * before these releases (CVE-2024-4741); with them it refuses to. */
static bool free_buffers_safe(void)
{
    unsigned long v = OpenSSL_version_num(); /* 0xMNN00PP0 */
    unsigned major = (unsigned)(v >> 28), minor = (unsigned)(v >> 20) & 0xff,
             patch = (unsigned)(v >> 4) & 0xff;
    if (major != 3)
        return major > 3;
    switch (minor) {
    case 0:
        return patch >= 14;
    case 1:
        return patch >= 6;
    case 2:
        return patch >= 2;
    case 3:
        return patch >= 1;
    default:
        return true;
    }
}

/* A new empty memory BIO in place of *slot when the old one has storage
 * (it keeps the largest size it ever held); set0 frees the old one. */
static void mem_bio_renew(struct px_tls_io *t, BIO **slot)
{
    BUF_MEM *m = NULL;
    BIO_get_mem_ptr(*slot, &m);
    if (!m || m->max == 0)
        return;
    BIO *b = BIO_new(BIO_s_mem());
    if (!b) {
        ERR_clear_error();
        return; /* keep the old one: correct, only larger */
    }
    BIO_set_mem_eof_return(b, -1);
    SSL_set0_wbio(t->ssl, b);
    *slot = b;
}

bool px_tls_io_park(struct px_tls_io *t)
{
    static _Thread_local int safe = -1;
    if (safe < 0)
        safe = free_buffers_safe();
    if (!SSL_is_init_finished(t->ssl) || BIO_ctrl_pending(t->rbio) || BIO_ctrl_pending(t->wbio) ||
        SSL_has_pending(t->ssl))
        return false;
    /* SSL_free_buffers itself refuses while its buffers hold a record or a
     * part of one, or output not yet written to the BIO. An older OpenSSL
     * keeps its buffers (the rest is released all the same). */
    if (safe && !SSL_free_buffers(t->ssl)) {
        ERR_clear_error();
        return false;
    }
    px_tls_io_trim(t); /* nothing unread in it (checked above) */
    if (!t->append)
        mem_bio_renew(t, &t->wbio);
    return true;
}

SSL *px_tls_io_ssl(struct px_tls_io *t)
{
    return t->ssl;
}

size_t px_tls_io_in_pending(struct px_tls_io *t)
{
    return BIO_ctrl_pending(t->rbio);
}
