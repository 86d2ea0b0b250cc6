/* One HTTP/1.1 GET over TCP or TLS: see http_get.h. */
#include "agent/http_get.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { HEAD_MAX = 64 * 1024 };

struct url {
    bool tls;
    char host[256]; /* without brackets */
    char port[8];
    const char *path; /* into the URL: "/..." */
};

struct conn {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    int64_t deadline_ms;
    bool unclean_eof; /* TLS closed without close_notify */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int parse_url(const char *s, struct url *u, char *err, size_t errlen)
{
    const char *p;
    if (strncmp(s, "http://", 7) == 0) {
        u->tls = false;
        p = s + 7;
    } else if (strncmp(s, "https://", 8) == 0) {
        u->tls = true;
        p = s + 8;
    } else {
        snprintf(err, errlen, "only http:// and https:// URLs are supported");
        return -1;
    }
    const char *hs = p, *he;
    if (*p == '[') {
        hs = p + 1;
        he = strchr(hs, ']');
        if (!he) {
            snprintf(err, errlen, "unterminated [IPv6] host");
            return -1;
        }
        p = he + 1;
    } else {
        he = p + strcspn(p, ":/?#");
        p = he;
    }
    if (he == hs || (size_t)(he - hs) >= sizeof u->host || memchr(hs, '@', (size_t)(he - hs))) {
        snprintf(err, errlen, "no host, or a host with user information");
        return -1;
    }
    memcpy(u->host, hs, (size_t)(he - hs));
    u->host[he - hs] = '\0';
    snprintf(u->port, sizeof u->port, "%s", u->tls ? "443" : "80");
    if (*p == ':') {
        size_t n = strspn(p + 1, "0123456789");
        if (n == 0 || n > 5 || atoi(p + 1) < 1 || atoi(p + 1) > 65535) {
            snprintf(err, errlen, "bad port");
            return -1;
        }
        memcpy(u->port, p + 1, n);
        u->port[n] = '\0';
        p += 1 + n;
    }
    if (*p != '\0' && *p != '/') {
        snprintf(err, errlen, "bad URL after the host");
        return -1;
    }
    u->path = *p ? p : "/";
    return 0;
}

/* Waits until fd is ready for events before the deadline: 0, or -1 with
 * errno ETIMEDOUT. */
static int wait_fd(const struct conn *c, short events)
{
    for (;;) {
        int64_t left = c->deadline_ms - now_ms();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        struct pollfd pfd = {.fd = c->fd, .events = events};
        int n = poll(&pfd, 1, (int)left);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

static int tcp_connect(struct conn *c, const struct url *u, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(u->host, u->port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", u->host, gai_strerror(rc));
        return -1;
    }
    int e = 0;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        c->fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (c->fd < 0) {
            e = errno;
            continue;
        }
        if (connect(c->fd, a->ai_addr, a->ai_addrlen) == 0 ||
            (errno == EINPROGRESS && wait_fd(c, POLLOUT) == 0)) {
            socklen_t l = sizeof e;
            if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &l) == 0 && e == 0)
                break;
        } else {
            e = errno;
        }
        close(c->fd);
        c->fd = -1;
    }
    freeaddrinfo(res);
    if (c->fd < 0) {
        snprintf(err, errlen, "cannot connect to %s port %s: %s", u->host, u->port, strerror(e));
        return -1;
    }
    return 0;
}

static void tls_error(const char *what, const struct url *u, char *err, size_t errlen)
{
    char buf[256] = "";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    snprintf(err, errlen, "%s with %s: %s", what, u->host, buf[0] ? buf : "connection closed");
    ERR_clear_error();
}

static int tls_start(struct conn *c, const struct url *u, char *err, size_t errlen)
{
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (!c->ctx || SSL_CTX_set_default_verify_paths(c->ctx) != 1 ||
        SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION) != 1 || !(c->ssl = SSL_new(c->ctx))) {
        tls_error("TLS set-up", u, err, errlen);
        return -1;
    }
    SSL_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
    unsigned char ip[16];
    bool is_ip = inet_pton(AF_INET, u->host, ip) == 1 || inet_pton(AF_INET6, u->host, ip) == 1;
    if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), u->host) != 1
              : (SSL_set1_host(c->ssl, u->host) != 1 ||
                 SSL_set_tlsext_host_name(c->ssl, u->host) != 1)) {
        tls_error("TLS set-up", u, err, errlen);
        return -1;
    }
    SSL_set_fd(c->ssl, c->fd);
    for (;;) {
        int r = SSL_connect(c->ssl);
        if (r == 1)
            return 0;
        int why = SSL_get_error(c->ssl, r);
        if ((why == SSL_ERROR_WANT_READ || why == SSL_ERROR_WANT_WRITE) &&
            wait_fd(c, why == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT) == 0)
            continue;
        if (errno == ETIMEDOUT && why != SSL_ERROR_SSL)
            snprintf(err, errlen, "TLS handshake with %s: timed out", u->host);
        else if (SSL_get_verify_result(c->ssl) != X509_V_OK)
            snprintf(err, errlen, "TLS handshake with %s: certificate not trusted: %s", u->host,
                     X509_verify_cert_error_string(SSL_get_verify_result(c->ssl)));
        else
            tls_error("TLS handshake", u, err, errlen);
        return -1;
    }
}

/* Sends all of buf: 0, or -1 with errno set. */
static int send_all(struct conn *c, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w;
        if (c->ssl) {
            int r = SSL_write(c->ssl, buf, (int)n);
            if (r <= 0) {
                int why = SSL_get_error(c->ssl, r);
                if ((why == SSL_ERROR_WANT_READ || why == SSL_ERROR_WANT_WRITE) &&
                    wait_fd(c, why == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT) == 0)
                    continue;
                errno = errno ? errno : EPIPE;
                return -1;
            }
            w = r;
        } else {
            w = send(c->fd, buf, n, MSG_NOSIGNAL);
            if (w < 0) {
                if ((errno == EAGAIN || errno == EINTR) && wait_fd(c, POLLOUT) == 0)
                    continue;
                return -1;
            }
        }
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads what arrives into buf: bytes read, 0 at the end, -1 with errno. */
static ssize_t recv_some(struct conn *c, char *buf, size_t n)
{
    for (;;) {
        if (c->ssl) {
            int r = SSL_read(c->ssl, buf, (int)n);
            if (r > 0)
                return r;
            int why = SSL_get_error(c->ssl, r);
            if (why == SSL_ERROR_ZERO_RETURN)
                return 0;
            if ((why == SSL_ERROR_WANT_READ || why == SSL_ERROR_WANT_WRITE) &&
                wait_fd(c, why == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT) == 0)
                continue;
            if ((why == SSL_ERROR_SYSCALL && errno == 0) ||
                (why == SSL_ERROR_SSL &&
                 ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
                /* Closed without close_notify, as many servers do after
                 * Connection: close: fine when the length is known. */
                ERR_clear_error();
                c->unclean_eof = true;
                return 0;
            }
            errno = errno ? errno : EPROTO;
            return -1;
        }
        ssize_t r = recv(c->fd, buf, n, 0);
        if (r >= 0)
            return r;
        if ((errno == EAGAIN || errno == EINTR) && wait_fd(c, POLLIN) == 0)
            continue;
        return -1;
    }
}

/* The value of header name in the head (NUL-terminated), or NULL. */
static const char *header(const char *head, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    for (const char *l = strstr(head, "\r\n"); l && l[2] != '\r'; l = strstr(l + 2, "\r\n")) {
        const char *s = l + 2;
        if (strncasecmp(s, name, nl) == 0 && s[nl] == ':') {
            const char *v = s + nl + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            const char *e = strstr(v, "\r\n");
            while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            *vlen = (size_t)(e - v);
            return v;
        }
    }
    return NULL;
}

/* Decodes a chunked body in place: its length, or -1 when malformed or
 * incomplete. */
static ssize_t unchunk(char *p, size_t n)
{
    size_t in = 0, out = 0;
    for (;;) {
        char *end;
        if (in >= n)
            return -1;
        unsigned long long sz = strtoull(p + in, &end, 16);
        if (end == p + in)
            return -1;
        char *crlf = memmem(end, n - (size_t)(end - p), "\r\n", 2);
        if (!crlf)
            return -1;
        in = (size_t)(crlf - p) + 2;
        if (sz == 0)
            return (ssize_t)out;
        if (sz > n - in || n - in - sz < 2 || memcmp(p + in + sz, "\r\n", 2) != 0)
            return -1;
        memmove(p + out, p + in, sz);
        out += sz;
        in += sz + 2;
    }
}

int ag_http_get(const char *url, size_t max, int timeout_ms, char **body, size_t *len, char *err,
                size_t errlen)
{
    struct url u;
    struct conn c = {.fd = -1, .deadline_ms = now_ms() + timeout_ms};
    char *buf = NULL;
    int result = -1;
    *body = NULL;
    *len = 0;
    if (parse_url(url, &u, err, errlen) != 0 || tcp_connect(&c, &u, err, errlen) != 0 ||
        (u.tls && tls_start(&c, &u, err, errlen) != 0))
        goto out;

    char req[2048];
    bool v6 = strchr(u.host, ':') != NULL;
    bool default_port = strcmp(u.port, u.tls ? "443" : "80") == 0;
    int rn = snprintf(req, sizeof req,
                      "GET %s HTTP/1.1\r\nHost: %s%s%s%s%s\r\nUser-Agent: albd/" ALBD_VERSION
                      "\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
                      u.path, v6 ? "[" : "", u.host, v6 ? "]" : "", default_port ? "" : ":",
                      default_port ? "" : u.port);
    if (rn < 0 || (size_t)rn >= sizeof req) {
        snprintf(err, errlen, "URL too long");
        goto out;
    }
    if (send_all(&c, req, (size_t)rn) != 0) {
        snprintf(err, errlen, "sending the request to %s: %s", u.host, strerror(errno));
        goto out;
    }

    size_t cap = 64 * 1024, n = 0, limit = HEAD_MAX + max + 64 * 1024;
    buf = malloc(cap + 1);
    if (!buf) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (;;) {
        if (n == cap) {
            if (cap >= limit) {
                snprintf(err, errlen, "the answer of %s is larger than %zu bytes", u.host, max);
                goto out;
            }
            size_t nc = cap * 2 > limit ? limit : cap * 2;
            char *nb = realloc(buf, nc + 1);
            if (!nb) {
                snprintf(err, errlen, "out of memory");
                goto out;
            }
            buf = nb;
            cap = nc;
        }
        ssize_t r = recv_some(&c, buf + n, cap - n);
        if (r < 0) {
            snprintf(err, errlen, "reading the answer of %s: %s", u.host,
                     errno == ETIMEDOUT ? "timed out" : strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';

    char *eoh = strstr(buf, "\r\n\r\n");
    int status = 0;
    if (!eoh || (size_t)(eoh - buf) > HEAD_MAX || sscanf(buf, "HTTP/1.%*1[01] %3d", &status) != 1) {
        snprintf(err, errlen, "%s did not answer with HTTP/1.x", u.host);
        goto out;
    }
    eoh[2] = '\0'; /* the head ends with its last header's CRLF */
    if (status < 200 || status > 299) {
        snprintf(err, errlen, "%s answered HTTP %d", u.host, status);
        goto out;
    }
    char *b = eoh + 4;
    size_t blen = n - (size_t)(b - buf), vl;
    const char *te = header(buf, "Transfer-Encoding", &vl);
    const char *cl = header(buf, "Content-Length", &vl);
    if (te && vl == 7 && strncasecmp(te, "chunked", 7) == 0) {
        ssize_t d = unchunk(b, blen);
        if (d < 0) {
            snprintf(err, errlen, "the chunked answer of %s is cut short or malformed", u.host);
            goto out;
        }
        blen = (size_t)d;
    } else if (te) {
        snprintf(err, errlen, "%s answered with a transfer coding other than chunked", u.host);
        goto out;
    } else if (cl) {
        char *end;
        unsigned long long want = strtoull(cl, &end, 10);
        if (end == cl || (size_t)(end - cl) != vl || want > blen) {
            snprintf(err, errlen, "the answer of %s is cut short (Content-Length %.*s, %zu bytes)",
                     u.host, (int)vl, cl, blen);
            goto out;
        }
        blen = (size_t)want;
    } else if (c.unclean_eof) {
        snprintf(err, errlen,
                 "%s closed TLS without close_notify and gave no length: the answer "
                 "may be cut short",
                 u.host);
        goto out;
    }
    if (blen > max) {
        snprintf(err, errlen, "the answer of %s is larger than %zu bytes", u.host, max);
        goto out;
    }
    memmove(buf, b, blen);
    buf[blen] = '\0';
    *body = buf;
    *len = blen;
    buf = NULL;
    result = 0;

out:
    free(buf);
    if (c.ssl) {
        if (SSL_is_init_finished(c.ssl))
            SSL_shutdown(c.ssl); /* one attempt: the answer is already read */
        SSL_free(c.ssl);
    }
    SSL_CTX_free(c.ctx);
    if (c.fd >= 0)
        close(c.fd);
    return result;
}
