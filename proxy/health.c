/* Health checks: one prober per process.
 *
 * The prober runs on a thread of its own with its own uv loop, not on the
 * workers (probe traffic must not grow with the number of workers) and not
 * on the agent loop: the agent loads manifests, parses certificates and
 * builds SSL_CTXs, which can hold its loop for seconds, and a probe's
 * timeout and a server's time to be marked down must not stretch with a
 * reload. The thread only does timers and short TCP connections.
 *
 * What it probes: every server of weight > 0 of every group of the last
 * published snapshot whose healthCheck is enabled, with that group's
 * settings (HTTP: one request with Connection: close, judged on the status
 * line's class, then the connection is closed; HTTPS: the same inside TLS,
 * through memory BIOs on this loop, SNI = healthCheck.host when set, the
 * certificate not verified -- a probe asks whether the server answers, as
 * the reference's does; TCP: a connect). A server
 * named by several groups with the same settings is probed once. Its
 * verdict goes to the backend registry (px_backend.health, one atomic per
 * server identity, read lock-free by proxy/lb.c); with several different
 * checks on one server, it is DOWN while any of them says DOWN.
 *
 * Before its first verdict a server is UNKNOWN, which counts as usable:
 * start-up never has an empty group, and a dead server is taken out by the
 * unhealthy threshold of probes or sooner by passive ejection (the
 * exchanges count connect failures and resets, px_health_passive_failure;
 * after as many in a row as the unhealthy threshold the server is DOWN
 * until the next successful probe).
 *
 * Checks, verdicts and counters are keyed by server identity and settings,
 * not by snapshot: a reload that leaves a server's check alone keeps its
 * probe rhythm and verdict; one that changes the settings starts a new
 * check from the current verdict. */
#include "proxy/health.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <uv.h>

#include "common/log.h"
#include "proxy/backend.h"
#include "proxy/snapshot.h"

#define TARGET_BUCKETS 1024

struct target;

/* One backend the prober covers (one per registry entry). */
struct node {
    struct px_backend *b;   /* one reference */
    int written;            /* the verdict the prober last stored in b->health */
    bool ejected;           /* DOWN by passive ejection, waiting for a good probe */
    bool alive;             /* still covered by the snapshot being read */
    uint64_t transitions;   /* usable <-> down; under h->lock */
    struct target *targets; /* its checks, linked by node_next */
    struct node *next;      /* h->nodes */
    struct node *hnext;     /* hash chain, by backend */
};

/* A short probe connection; freed in the close callback. t is NULL once
 * the probe finished (late callbacks then do nothing). */
struct probe {
    struct target *t;
    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_write_t wr;
    char req[512];
    char buf[256];
    size_t len;
    char in[4096]; /* bytes from the socket (HTTPS: TLS records) */
    /* HTTPS: the TLS client, fed from the socket through rbio, its output
     * taken from wbio; freed with the probe. */
    SSL *ssl;
    BIO *rbio, *wbio;
    bool sent; /* the request went into the TLS stream */
};

/* A write of TLS output, freed in its callback. */
struct tls_write {
    uv_write_t wr;
    struct probe *p;
    char data[];
};

/* One check: a server with one group's settings. */
struct target {
    struct px_prober *h;
    char key[640]; /* server identity + settings */
    struct node *node;
    struct sockaddr_storage addr; /* the server's, with the check's port */
    bool tcp;
    bool tls;
    char sni[96]; /* HTTPS: healthCheck.host, "" for none */
    int req_len;
    char req[512];
    unsigned codes;
    uint64_t interval_ms, timeout_ms;
    int healthy_threshold, unhealthy_threshold;
    struct px_hc_state st;
    uv_timer_t timer; /* next probe, or the running probe's timeout */
    struct probe *probe;
    uint64_t started; /* uv_now() when the running probe started */
    bool skipping;    /* the last try met a local error (skip) */
    bool alive;
    /* The last result, under h->lock. */
    bool has_result, last_ok;
    char reason[64];
    time_t last_time;
    struct target *next;      /* h->targets */
    struct target *hnext;     /* hash chain */
    struct target *node_next; /* node->targets */
};

/* One server of one group of the snapshot, for px_prober_each. */
struct row {
    char *group, *server;
    struct px_backend *b; /* one reference */
    struct target *t;     /* NULL: not checked */
};

struct px_prober {
    uv_loop_t loop;
    uv_async_t async;
    uv_thread_t thread;
    uv_mutex_t lock; /* pending, stopping, rows, and the result fields */
    struct px_snapshot *pending;
    bool stopping;
    struct target *targets;
    struct target *buckets[TARGET_BUCKETS];
    struct node *nodes;
    struct node *node_buckets[TARGET_BUCKETS];
    struct row *rows;
    size_t n_rows;
    SSL_CTX *ssl_ctx; /* HTTPS probes: no verification, HTTP/1.1 by ALPN */
};

/* ---- the pure parts ---- */

bool px_hc_record(struct px_hc_state *st, bool ok, int healthy_threshold, int unhealthy_threshold)
{
    int before = st->verdict;
    if (ok) {
        st->fail_run = 0;
        st->ok_run++;
        if (st->verdict == PX_HEALTH_UNKNOWN ||
            (st->verdict == PX_HEALTH_DOWN && st->ok_run >= healthy_threshold))
            st->verdict = PX_HEALTH_UP;
    } else {
        st->ok_run = 0;
        st->fail_run++;
        if (st->verdict != PX_HEALTH_DOWN && st->fail_run >= unhealthy_threshold)
            st->verdict = PX_HEALTH_DOWN;
    }
    return st->verdict != before;
}

int px_hc_parse_status(const char *buf, size_t len)
{
    static const char pre[] = "HTTP/1.";
    size_t n = len < sizeof pre - 1 ? len : sizeof pre - 1;
    if (memcmp(buf, pre, n) != 0)
        return -1;
    /* "HTTP/1.x NNN" */
    if (len < 12)
        return 0;
    if (buf[7] < '0' || buf[7] > '9' || buf[8] != ' ')
        return -1;
    int code = 0;
    for (int i = 9; i < 12; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return -1;
        code = code * 10 + (buf[i] - '0');
    }
    if (code < 100 || code > 599)
        return -1;
    if (len > 12 && buf[12] != ' ' && buf[12] != '\r' && buf[12] != '\n')
        return -1;
    return code;
}

bool px_hc_code_ok(unsigned codes, int status)
{
    return status >= 100 && status <= 599 && (codes & (1u << (status / 100))) != 0;
}

int px_hc_request(char *out, size_t outlen, const struct rc_health_check *hc,
                  const char *default_host)
{
    bool post = !strcmp(hc->method, "POST");
    int n = snprintf(out, outlen,
                     "%s %s HTTP/1.%d\r\nHost: %s\r\nUser-Agent: albd-health-check\r\n"
                     "Connection: close\r\n%s\r\n",
                     hc->method, hc->path, hc->http_version == 10 ? 0 : 1,
                     hc->host ? hc->host : default_host, post ? "Content-Length: 0\r\n" : "");
    return n < 0 || (size_t)n >= outlen ? -1 : n;
}

/* ---- verdicts ---- */

/* The combined verdict of a node's checks: DOWN when any says DOWN. */
static int node_verdict(const struct node *n)
{
    int v = PX_HEALTH_UNKNOWN;
    for (const struct target *t = n->targets; t; t = t->node_next) {
        if (t->st.verdict == PX_HEALTH_DOWN)
            return PX_HEALTH_DOWN;
        if (t->st.verdict == PX_HEALTH_UP)
            v = PX_HEALTH_UP;
    }
    return v;
}

/* Stores what n's checks (and a pending passive ejection) say into the
 * registry. Under h->lock (transitions). */
static void node_publish(struct node *n, const char *why)
{
    int cur = atomic_load_explicit(&n->b->health, memory_order_relaxed);
    if (cur == PX_HEALTH_DOWN && n->written != PX_HEALTH_DOWN) {
        /* An exchange ejected it since the prober last wrote. */
        n->ejected = true;
        n->written = PX_HEALTH_DOWN;
        n->transitions++; /* the exchange logged it */
    }
    int want = node_verdict(n);
    if (n->ejected && want != PX_HEALTH_DOWN)
        want = PX_HEALTH_DOWN;
    if (want == n->written)
        return;
    if ((want == PX_HEALTH_DOWN) != (n->written == PX_HEALTH_DOWN)) {
        n->transitions++;
        if (want == PX_HEALTH_DOWN)
            px_log_warn("health: %s is down (%s)", n->b->id.key, why);
        else
            px_log_info("health: %s is up again (%s)", n->b->id.key, why);
    }
    n->written = want;
    atomic_store_explicit(&n->b->passive_failures, 0, memory_order_relaxed);
    atomic_store_explicit(&n->b->health, want, memory_order_relaxed);
}

static void record(struct target *t, bool ok, const char *reason)
{
    struct px_prober *h = t->h;
    struct node *n = t->node;
    t->skipping = false;
    px_hc_record(&t->st, ok, t->healthy_threshold, t->unhealthy_threshold);
    uv_mutex_lock(&h->lock);
    t->has_result = true;
    t->last_ok = ok;
    snprintf(t->reason, sizeof t->reason, "%s", reason);
    t->last_time = time(NULL);
    /* Notice an ejection first, so that a good probe below ends it. */
    node_publish(n, reason);
    if (n->ejected && (ok || node_verdict(n) == PX_HEALTH_DOWN)) {
        n->ejected = false; /* a good probe brings it back; a DOWN verdict takes over */
        node_publish(n, reason);
    }
    uv_mutex_unlock(&h->lock);
}

/* ---- probes ---- */

static void on_tick(uv_timer_t *timer);
static void skip(struct target *t, int status);

static const char *why(int status)
{
    switch (status) {
    case UV_ECONNREFUSED:
        return "refused";
    case UV_ETIMEDOUT:
        return "timeout";
    case UV_ECONNRESET:
        return "reset";
    case UV_EOF:
        return "closed before a status line";
    default:
        return uv_strerror(status);
    }
}

static void on_probe_closed(uv_handle_t *hd)
{
    struct probe *p = hd->data;
    SSL_free(p->ssl); /* frees rbio and wbio too */
    free(p);
}

/* Errors of this process, not of the server (descriptors or memory
 * exhausted, no local port left): a probe that meets one says nothing
 * about the server. */
static bool local_error(int status)
{
    return status == UV_EMFILE || status == UV_ENFILE || status == UV_ENOBUFS ||
           status == UV_ENOMEM || status == UV_EADDRNOTAVAIL;
}

/* Ends the running probe (closing its connection), records the result and
 * schedules the next probe one interval after this one started. */
static void finish(struct target *t, bool ok, const char *reason)
{
    struct probe *p = t->probe;
    if (p) {
        t->probe = NULL;
        p->t = NULL;
        uv_close((uv_handle_t *)&p->tcp, on_probe_closed);
    }
    record(t, ok, reason);
    uint64_t spent = uv_now(&t->h->loop) - t->started;
    uv_timer_start(&t->timer, on_tick, spent >= t->interval_ms ? 0 : t->interval_ms - spent, 0);
}

static void on_timeout(uv_timer_t *timer)
{
    finish(timer->data, false, "timeout");
}

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf)
{
    struct probe *p = hd->data;
    (void)suggested;
    /* Plain HTTP reads into the same 4 KiB as TLS: the whole head of a
     * usual response is then taken from the socket, so that closing it
     * after the status line does not reset the connection under the
     * backend. */
    *buf = uv_buf_init(p->in, sizeof p->in);
}

static void judge(struct probe *p);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void on_tls_written(uv_write_t *wr, int status)
{
    struct tls_write *w = wr->data;
    if (w->p->t && status < 0)
        finish(w->p->t, false, why(status));
    free(w);
}

/* Sends what the TLS client wrote into wbio. 0 or a negative uv error. */
static int tls_flush(struct probe *p)
{
    size_t n = BIO_ctrl_pending(p->wbio);
    if (n == 0)
        return 0;
    struct tls_write *w = malloc(sizeof *w + n);
    if (!w)
        return UV_ENOMEM;
    int got = BIO_read(p->wbio, w->data, (int)n);
    if (got <= 0) {
        free(w);
        return 0;
    }
    w->p = p;
    w->wr.data = w;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)got);
    int rc = uv_write(&w->wr, (uv_stream_t *)&p->tcp, &b, 1, on_tls_written);
    if (rc < 0)
        free(w);
    return rc;
}

/* Runs the TLS client as far as the bytes in rbio allow: handshake, the
 * request, then the response's status line. */
static void tls_drive(struct probe *p)
{
    struct target *t = p->t;
    if (!SSL_is_init_finished(p->ssl)) {
        int r = SSL_do_handshake(p->ssl);
        if (r != 1) {
            int e = SSL_get_error(p->ssl, r);
            ERR_clear_error();
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                finish(t, false, "TLS handshake failed");
                return;
            }
        }
    }
    if (SSL_is_init_finished(p->ssl) && !p->sent) {
        if (SSL_write(p->ssl, t->req, t->req_len) != t->req_len) {
            ERR_clear_error();
            finish(t, false, "TLS write failed");
            return;
        }
        p->sent = true;
    }
    while (p->sent && p->len < sizeof p->buf) {
        int r = SSL_read(p->ssl, p->buf + p->len, (int)(sizeof p->buf - p->len));
        if (r <= 0) {
            int e = SSL_get_error(p->ssl, r);
            ERR_clear_error();
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                break;
            finish(t, false,
                   e == SSL_ERROR_ZERO_RETURN ? "closed before a status line" : "TLS error");
            return;
        }
        p->len += (size_t)r;
        judge(p);
        if (!p->t)
            return;
    }
    int rc = tls_flush(p);
    if (rc < 0)
        finish(t, false, why(rc));
}

/* Starts TLS on a connected probe. */
static void tls_start(struct probe *p)
{
    struct target *t = p->t;
    p->ssl = SSL_new(t->h->ssl_ctx);
    p->rbio = BIO_new(BIO_s_mem());
    p->wbio = BIO_new(BIO_s_mem());
    if (!p->ssl || !p->rbio || !p->wbio) {
        BIO_free(p->rbio);
        BIO_free(p->wbio);
        p->rbio = p->wbio = NULL;
        SSL_free(p->ssl);
        p->ssl = NULL;
        finish(t, false, "out of memory");
        return;
    }
    SSL_set_bio(p->ssl, p->rbio, p->wbio);
    SSL_set_connect_state(p->ssl);
    if (t->sni[0])
        SSL_set_tlsext_host_name(p->ssl, t->sni);
    int rc = uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_read);
    if (rc < 0) {
        finish(t, false, why(rc));
        return;
    }
    tls_drive(p);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct probe *p = s->data;
    struct target *t = p->t;
    (void)buf;
    if (!t || n == 0)
        return;
    if (n < 0) {
        finish(t, false,
               p->ssl && !SSL_is_init_finished(p->ssl) ? "TLS handshake failed" : why((int)n));
        return;
    }
    if (p->ssl) {
        BIO_write(p->rbio, p->in, (int)n);
        tls_drive(p);
        return;
    }
    size_t take = (size_t)n < sizeof p->buf - p->len ? (size_t)n : sizeof p->buf - p->len;
    memcpy(p->buf + p->len, p->in, take);
    p->len += take;
    judge(p);
}

/* Judges the status line read so far into p->buf. */
static void judge(struct probe *p)
{
    struct target *t = p->t;
    int code = px_hc_parse_status(p->buf, p->len);
    if (code > 0) {
        char r[32];
        snprintf(r, sizeof r, "status code %d", code);
        finish(t, px_hc_code_ok(t->codes, code), r);
    } else if (code < 0) {
        finish(t, false, "not an HTTP/1.x response");
    } else if (p->len == sizeof p->buf) {
        finish(t, false, "status line too long");
    }
}

static void on_written(uv_write_t *wr, int status)
{
    struct probe *p = wr->data;
    if (p->t && status < 0)
        finish(p->t, false, why(status));
}

static void on_connect(uv_connect_t *c, int status)
{
    struct probe *p = c->data;
    struct target *t = p->t;
    if (!t)
        return;
    if (status < 0) {
        if (local_error(status))
            skip(t, status);
        else
            finish(t, false, why(status));
        return;
    }
    if (t->tcp) {
        finish(t, true, "connected");
        return;
    }
    if (t->tls) {
        tls_start(p);
        return;
    }
    memcpy(p->req, t->req, (size_t)t->req_len);
    uv_buf_t b = uv_buf_init(p->req, (unsigned)t->req_len);
    p->wr.data = p;
    int rc = uv_write(&p->wr, (uv_stream_t *)&p->tcp, &b, 1, on_written);
    if (rc == 0)
        rc = uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_read);
    if (rc < 0)
        finish(t, false, why(rc));
}

/* A probe this process could not make (local_error): no verdict, the
 * next try one interval later, a warning once per episode. */
static void skip(struct target *t, int status)
{
    struct probe *p = t->probe;
    if (p) {
        t->probe = NULL;
        p->t = NULL;
        uv_close((uv_handle_t *)&p->tcp, on_probe_closed);
    }
    if (!t->skipping)
        px_log_warn("health: cannot probe %s: %s; its verdict stays as it is until a probe can "
                    "be made",
                    t->node->b->id.key, uv_strerror(status));
    t->skipping = true;
    uv_timer_start(&t->timer, on_tick, t->interval_ms, 0);
}

static void on_tick(uv_timer_t *timer)
{
    struct target *t = timer->data;
    struct px_prober *h = t->h;
    t->started = uv_now(&h->loop);
    struct probe *p = calloc(1, sizeof *p);
    if (!p || uv_tcp_init(&h->loop, &p->tcp) != 0) {
        free(p);
        skip(t, UV_ENOMEM);
        return;
    }
    p->tcp.data = p;
    p->conn.data = p;
    p->t = t;
    t->probe = p;
    int rc = uv_tcp_connect(&p->conn, &p->tcp, (const struct sockaddr *)&t->addr, on_connect);
    if (rc < 0) {
        if (local_error(rc))
            skip(t, rc);
        else
            finish(t, false, why(rc));
        return;
    }
    uv_timer_start(&t->timer, on_timeout, t->timeout_ms, 0);
}

/* ---- the set of checks ---- */

static unsigned bucket_of(const char *k)
{
    unsigned v = 2166136261u;
    for (; *k; k++)
        v = (v ^ (unsigned char)*k) * 16777619u;
    return v % TARGET_BUCKETS;
}

static void target_key(char *out, size_t outlen, const struct px_server *s,
                       const struct rc_health_check *hc)
{
    snprintf(out, outlen, "%s|%d|%s|%s|%s|%d|%d|%u|%d|%d|%d|%d", s->key, hc->protocol, hc->method,
             hc->path, hc->host ? hc->host : "", hc->http_version, hc->port, hc->codes,
             hc->interval_s, hc->timeout_s, hc->healthy_threshold, hc->unhealthy_threshold);
}

static unsigned node_bucket(const struct px_backend *b)
{
    return (unsigned)(((uintptr_t)b / PX_CACHE_LINE) % TARGET_BUCKETS);
}

static struct node *node_get(struct px_prober *h, struct px_backend *b)
{
    unsigned bk = node_bucket(b);
    for (struct node *n = h->node_buckets[bk]; n; n = n->hnext)
        if (n->b == b)
            return n;
    struct node *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->b = px_backend_ref(b);
    /* A server probed before under other settings keeps its verdict (the
     * new check starts from it); a new one is UNKNOWN. */
    n->written = atomic_load_explicit(&b->health, memory_order_relaxed);
    n->next = h->nodes;
    h->nodes = n;
    n->hnext = h->node_buckets[bk];
    h->node_buckets[bk] = n;
    return n;
}

static struct target *target_new(struct px_prober *h, const struct px_server *s,
                                 const struct rc_health_check *hc, const char *key)
{
    struct node *n = node_get(h, s->backend);
    struct target *t = n ? calloc(1, sizeof *t) : NULL;
    if (!t)
        return NULL;
    t->h = h;
    t->node = n;
    snprintf(t->key, sizeof t->key, "%s", key);
    t->addr = s->backend->id.addr;
    if (hc->port > 0) {
        if (t->addr.ss_family == AF_INET6)
            ((struct sockaddr_in6 *)&t->addr)->sin6_port = htons((uint16_t)hc->port);
        else
            ((struct sockaddr_in *)&t->addr)->sin_port = htons((uint16_t)hc->port);
    }
    t->tcp = hc->protocol == 2;
    t->tls = hc->protocol == 1;
    snprintf(t->sni, sizeof t->sni, "%s", t->tls && hc->host ? hc->host : "");
    if (!t->tcp) {
        /* The Host default: the server's address without its port. */
        char host[64];
        snprintf(host, sizeof host, "%s", s->key);
        char *colon = strrchr(host, ':');
        if (colon)
            *colon = '\0';
        t->req_len = px_hc_request(t->req, sizeof t->req, hc, host);
        if (t->req_len < 0) { /* the schema bounds path and host: cannot happen */
            free(t);
            return NULL;
        }
    }
    t->codes = hc->codes;
    t->interval_ms = (uint64_t)hc->interval_s * 1000;
    t->timeout_ms = (uint64_t)hc->timeout_s * 1000;
    t->healthy_threshold = hc->healthy_threshold;
    t->unhealthy_threshold = hc->unhealthy_threshold;
    t->st.verdict = n->written;
    uv_timer_init(&h->loop, &t->timer);
    t->timer.data = t;
    /* The first probe soon, spread over a quarter second so that a large
     * configuration does not open every connection at once. */
    uv_timer_start(&t->timer, on_tick, bucket_of(key) % 250, 0);
    unsigned bk = bucket_of(key);
    t->hnext = h->buckets[bk];
    h->buckets[bk] = t;
    t->next = h->targets;
    h->targets = t;
    return t;
}

static struct target *target_find(struct px_prober *h, const char *key)
{
    for (struct target *t = h->buckets[bucket_of(key)]; t; t = t->hnext)
        if (!strcmp(t->key, key))
            return t;
    return NULL;
}

static void on_target_closed(uv_handle_t *hd)
{
    free(hd->data);
}

static void target_close(struct px_prober *h, struct target *t)
{
    struct target **pp = &h->buckets[bucket_of(t->key)];
    while (*pp != t)
        pp = &(*pp)->hnext;
    *pp = t->hnext;
    if (t->probe) {
        struct probe *p = t->probe;
        t->probe = NULL;
        p->t = NULL;
        uv_close((uv_handle_t *)&p->tcp, on_probe_closed);
    }
    uv_close((uv_handle_t *)&t->timer, on_target_closed);
}

static void rows_free(struct row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(rows[i].group);
        free(rows[i].server);
        px_backend_unref(rows[i].b);
    }
    free(rows);
}

/* Drops checks and nodes not marked alive (all of them when stopping).
 * A node dropped while the process goes on leaves its server UNKNOWN:
 * usable, as a server no check covers is. */
static void sweep(struct px_prober *h, bool stopping)
{
    for (struct target **pp = &h->targets; *pp;) {
        struct target *t = *pp;
        if (t->alive && !stopping) {
            pp = &t->next;
            continue;
        }
        *pp = t->next;
        target_close(h, t);
    }
    for (struct node **pp = &h->nodes; *pp;) {
        struct node *n = *pp;
        n->targets = NULL;
        if (n->alive && !stopping) {
            pp = &n->next;
            continue;
        }
        *pp = n->next;
        struct node **hp = &h->node_buckets[node_bucket(n->b)];
        while (*hp != n)
            hp = &(*hp)->hnext;
        *hp = n->hnext;
        if (!stopping) {
            atomic_store_explicit(&n->b->eject_after, 0, memory_order_relaxed);
            atomic_store_explicit(&n->b->passive_failures, 0, memory_order_relaxed);
            atomic_store_explicit(&n->b->health, PX_HEALTH_UNKNOWN, memory_order_relaxed);
        }
        px_backend_unref(n->b);
        free(n);
    }
    /* Relink the checks of each node and set its ejection threshold. */
    for (struct target *t = h->targets; t; t = t->next) {
        struct node *n = t->node;
        if (!n->targets)
            atomic_store_explicit(&n->b->eject_after, t->unhealthy_threshold, memory_order_relaxed);
        else if (t->unhealthy_threshold < atomic_load(&n->b->eject_after))
            atomic_store_explicit(&n->b->eject_after, t->unhealthy_threshold, memory_order_relaxed);
        t->node_next = n->targets;
        n->targets = t;
    }
}

/* Reads snapshot s: the checks it asks for, the rows of the report. */
static void apply(struct px_prober *h, struct px_snapshot *s)
{
    for (struct target *t = h->targets; t; t = t->next)
        t->alive = false;
    for (struct node *n = h->nodes; n; n = n->next)
        n->alive = false;
    size_t total = 0;
    for (size_t gi = 0; gi < s->n_groups; gi++)
        total += s->groups[gi].n_servers;
    struct row *rows = calloc(total ? total : 1, sizeof *rows);
    size_t n_rows = 0;
    for (size_t gi = 0; gi < s->n_groups; gi++) {
        const struct px_group *g = &s->groups[gi];
        const struct rc_health_check *hc = &g->model->health_check;
        for (size_t i = 0; i < g->n_servers; i++) {
            const struct px_server *ps = &g->servers[i];
            struct target *t = NULL;
            if (ps->weight > 0 && hc->enabled) {
                char key[640];
                target_key(key, sizeof key, ps, hc);
                t = target_find(h, key);
                if (!t)
                    t = target_new(h, ps, hc, key);
                if (!t)
                    px_log_error("health: out of memory: %s is not checked", ps->key);
                else
                    t->alive = t->node->alive = true;
            }
            if (rows) {
                struct row *r = &rows[n_rows];
                r->group = strdup(g->model->meta.name);
                r->server = strdup(ps->key);
                if (!r->group || !r->server) {
                    free(r->group);
                    free(r->server);
                    continue;
                }
                r->b = px_backend_ref(ps->backend);
                r->t = t;
                n_rows++;
            }
        }
    }
    uv_mutex_lock(&h->lock);
    struct row *old = h->rows;
    size_t n_old = h->n_rows;
    h->rows = rows;
    h->n_rows = n_rows;
    sweep(h, false);
    /* A check that went away may have been the one that said DOWN. */
    for (struct node *n = h->nodes; n; n = n->next)
        node_publish(n, "health check changed");
    uv_mutex_unlock(&h->lock);
    rows_free(old, n_old);
}

static void on_async(uv_async_t *a)
{
    struct px_prober *h = a->data;
    uv_mutex_lock(&h->lock);
    struct px_snapshot *s = h->pending;
    h->pending = NULL;
    bool stopping = h->stopping;
    uv_mutex_unlock(&h->lock);
    if (stopping) {
        px_snapshot_unref(s);
        uv_mutex_lock(&h->lock);
        sweep(h, true);
        struct row *rows = h->rows;
        size_t n_rows = h->n_rows;
        h->rows = NULL;
        h->n_rows = 0;
        uv_mutex_unlock(&h->lock);
        rows_free(rows, n_rows);
        uv_close((uv_handle_t *)&h->async, NULL);
        return;
    }
    if (s) {
        apply(h, s);
        px_snapshot_unref(s);
    }
}

static void prober_main(void *arg)
{
    struct px_prober *h = arg;
    uv_run(&h->loop, UV_RUN_DEFAULT);
}

struct px_prober *px_prober_start(void)
{
    struct px_prober *h = calloc(1, sizeof *h);
    if (!h) {
        errno = ENOMEM;
        return NULL;
    }
    h->ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (!h->ssl_ctx) {
        free(h);
        errno = ENOMEM;
        return NULL;
    }
    SSL_CTX_set_verify(h->ssl_ctx, SSL_VERIFY_NONE, NULL);
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(h->ssl_ctx, alpn, sizeof alpn - 1);
    int rc = uv_loop_init(&h->loop);
    if (rc == 0) {
        rc = uv_mutex_init(&h->lock);
        if (rc != 0)
            uv_loop_close(&h->loop);
    }
    if (rc != 0) {
        SSL_CTX_free(h->ssl_ctx);
        free(h);
        errno = -rc;
        return NULL;
    }
    uv_async_init(&h->loop, &h->async, on_async);
    h->async.data = h;
    rc = uv_thread_create(&h->thread, prober_main, h);
    if (rc != 0) {
        uv_close((uv_handle_t *)&h->async, NULL);
        uv_run(&h->loop, UV_RUN_DEFAULT);
        uv_loop_close(&h->loop);
        uv_mutex_destroy(&h->lock);
        SSL_CTX_free(h->ssl_ctx);
        free(h);
        errno = -rc;
        return NULL;
    }
    return h;
}

void px_prober_update(struct px_prober *h, struct px_snapshot *s)
{
    uv_mutex_lock(&h->lock);
    struct px_snapshot *old = h->pending;
    h->pending = px_snapshot_ref(s);
    uv_mutex_unlock(&h->lock);
    px_snapshot_unref(old);
    uv_async_send(&h->async);
}

void px_prober_stop(struct px_prober *h)
{
    if (!h)
        return;
    uv_mutex_lock(&h->lock);
    h->stopping = true;
    uv_mutex_unlock(&h->lock);
    uv_async_send(&h->async);
    uv_thread_join(&h->thread);
    uv_loop_close(&h->loop);
    uv_mutex_destroy(&h->lock);
    SSL_CTX_free(h->ssl_ctx);
    free(h);
}

void px_prober_each(struct px_prober *h, void (*fn)(const struct px_server_health *sh, void *arg),
                    void *arg)
{
    uv_mutex_lock(&h->lock);
    for (size_t i = 0; i < h->n_rows; i++) {
        const struct row *r = &h->rows[i];
        int cur = atomic_load_explicit(&r->b->health, memory_order_relaxed);
        struct px_server_health sh = {.group = r->group, .server = r->server};
        sh.up = cur != PX_HEALTH_DOWN;
        sh.slow_start_ms = atomic_load_explicit(&r->b->slow_start, memory_order_relaxed);
        sh.draining = atomic_load_explicit(&r->b->drain_at, memory_order_relaxed) != 0;
        if (!r->t) {
            sh.verdict = "unchecked";
        } else {
            const struct target *t = r->t;
            const struct node *n = t->node;
            sh.verdict = cur == PX_HEALTH_DOWN ? "unhealthy"
                         : cur == PX_HEALTH_UP ? "healthy"
                                               : "unknown";
            sh.ejected = cur == PX_HEALTH_DOWN && (n->ejected || n->written != PX_HEALTH_DOWN);
            if (t->has_result) {
                sh.last_result = t->last_ok ? "success" : "failure";
                sh.reason = t->reason;
                sh.last_probe = t->last_time;
            }
            sh.transitions = n->transitions;
        }
        fn(&sh, arg);
    }
    uv_mutex_unlock(&h->lock);
}

void px_health_passive_failure(struct px_backend *b, int err)
{
    if (local_error(err))
        return;
    int limit = atomic_load_explicit(&b->eject_after, memory_order_relaxed);
    int n = atomic_fetch_add_explicit(&b->passive_failures, 1, memory_order_relaxed) + 1;
    if (limit <= 0 || n < limit)
        return;
    int cur = atomic_load_explicit(&b->health, memory_order_relaxed);
    if (cur != PX_HEALTH_DOWN &&
        atomic_compare_exchange_strong_explicit(&b->health, &cur, PX_HEALTH_DOWN,
                                                memory_order_relaxed, memory_order_relaxed))
        px_log_warn("health: %s marked down after %d failed connections in a row (passive "
                    "ejection; back at the next successful probe)",
                    b->id.key, n);
}
