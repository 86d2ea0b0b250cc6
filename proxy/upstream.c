/* Backend connections and the per-worker idle pools, which live in the
 * backend registry's entries (proxy/backend-t.h) so they outlive snapshots.
 * Every connection holds a reference on its entry and keeps the entry's
 * connection and in-flight counts.
 *
 * Connections of HTTPS groups run TLS over memory BIOs (proxy/tls_io.h,
 * client role; settings in proxy/upstream_tls.h): "connected" means the
 * TCP connect and the TLS handshake both finished within
 * PX_UPSTREAM_CONNECT_MS; a handshake that fails (a certificate that does
 * not verify) is a failed connect, logged once with the reason. Reads
 * deliver plaintext; writes encrypt. A pooled TLS connection keeps its
 * session; a new one resumes the worker's last session with that server. */
#include "proxy/upstream.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "proxy/backend.h"
#include "proxy/tls_io.h"
#include "proxy/upstream_tls.h"

#define UP_OF(field_ptr, field)                                                                    \
    ((struct px_upstream *)((char *)(field_ptr)-offsetof(struct px_upstream, field)))

static void upstream_close(struct px_upstream *u);
static void timer_cb(uv_timer_t *t);

static struct px_pool *pool_of(struct px_upstream *u)
{
    return &u->backend->pools[u->w->id];
}

/* The pool's busy list (the links are the idle list's: an upstream is in
 * one list at most). */
static void busy_link(struct px_upstream *u)
{
    struct px_pool *e = pool_of(u);
    u->idle_prev = NULL;
    u->idle_next = e->busy;
    if (e->busy)
        e->busy->idle_prev = u;
    e->busy = u;
}

static void busy_unlink(struct px_upstream *u)
{
    struct px_pool *e = pool_of(u);
    if (u->idle_prev)
        u->idle_prev->idle_next = u->idle_next;
    else
        e->busy = u->idle_next;
    if (u->idle_next)
        u->idle_next->idle_prev = u->idle_prev;
    u->idle_prev = u->idle_next = NULL;
}

/* Moves u to state st, keeping its backend's in-flight count: connecting
 * and active connections serve a request, idle and closing ones do not. */
static void set_state(struct px_upstream *u, enum px_upstream_state st)
{
    bool was = u->state == PX_UP_CONNECTING || u->state == PX_UP_ACTIVE;
    bool is = st == PX_UP_CONNECTING || st == PX_UP_ACTIVE;
    if (was && !is)
        busy_unlink(u);
    u->state = st;
    if (was != is)
        atomic_fetch_add_explicit(&u->backend->inflight, is ? 1 : -1, memory_order_relaxed);
    if (is && !was)
        busy_link(u);
}

static void idle_unlink(struct px_upstream *u)
{
    struct px_pool *e = pool_of(u);
    if (u->idle_prev)
        u->idle_prev->idle_next = u->idle_next;
    else
        e->idle = u->idle_next;
    if (u->idle_next)
        u->idle_next->idle_prev = u->idle_prev;
    u->idle_prev = u->idle_next = NULL;
    e->n_idle--;
}

static void close_idle_of(struct px_backend *b, void *arg)
{
    struct px_worker *w = arg;
    struct px_pool *e = &b->pools[w->id];
    while (e->idle)
        upstream_close(e->idle);
}

void px_upstream_close_idle(struct px_worker *w)
{
    w->pools_closed = true;
    if (w->registry)
        px_registry_each(w->registry, close_idle_of, w);
}

static void close_cb(uv_handle_t *h)
{
    struct px_upstream *u = h->data;
    if (--u->open_handles == 0) {
        px_outq_cleanup(&u->out);
        px_tls_io_free(u->tls);
        free(u->plain);
        atomic_fetch_sub_explicit(&u->backend->connections, 1, memory_order_relaxed);
        px_backend_unref(u->backend);
        free(u);
    }
}

static void upstream_close(struct px_upstream *u)
{
    if (u->state == PX_UP_CLOSING)
        return;
    if (u->state == PX_UP_IDLE)
        idle_unlink(u);
    set_state(u, PX_UP_CLOSING);
    u->cbs = NULL;
    u->owner = NULL;
    uv_close((uv_handle_t *)&u->tcp, close_cb);
    uv_close((uv_handle_t *)&u->timer, close_cb);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct px_upstream *u = h->data;
    struct px_worker *w = u->w;
    (void)suggested;
    /* One buffer per worker: every read callback consumes its bytes
     * before it returns (px_upstream_cbs.on_read's contract), and one
     * large read takes a whole 64 KiB response. */
    if (!w->up_rbuf)
        w->up_rbuf = malloc(PX_UPSTREAM_RBUF);
    buf->base = w->up_rbuf;
    buf->len = w->up_rbuf ? PX_UPSTREAM_RBUF : 0;
}

/* Moves the ciphertext OpenSSL produced to the socket. 0 or an error. */
static int tls_flush(struct px_upstream *u)
{
    return px_outq_flush(&u->out);
}

/* The connect (TCP, then TLS) failed with status: u closes, the owner is
 * told. */
static void connect_failed(struct px_upstream *u, int status)
{
    const struct px_upstream_cbs *cbs = u->cbs;
    void *owner = u->owner;
    upstream_close(u);
    if (cbs)
        cbs->on_connect(owner, u, status);
}

/* Runs the handshake as far as the input allows; on success u is
 * connected and its owner told. */
static void tls_handshake(struct px_upstream *u)
{
    SSL *ssl = px_tls_io_ssl(u->tls);
    ERR_clear_error();
    int r = SSL_do_handshake(ssl);
    int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl, r);
    if (r != 1 && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        char why[256];
        px_upstream_tls_why(ssl, why, sizeof why);
        px_log_warn("TLS to backend %s failed: %s", u->backend->id.key, why);
        tls_flush(u); /* the alert, best effort */
        connect_failed(u, UV_EPROTO);
        return;
    }
    ERR_clear_error();
    if (tls_flush(u) < 0) {
        connect_failed(u, UV_ENOMEM);
        return;
    }
    if (r != 1)
        return;
    uv_timer_stop(&u->timer);
    set_state(u, PX_UP_ACTIVE);
    const struct px_upstream_cbs *cbs = u->cbs;
    if (cbs)
        cbs->on_connect(u->owner, u, 0);
}

/* Decrypts what was fed and delivers it while the owner reads. Bytes on a
 * connection nobody owns (pooled), or TLS errors there, close it; the
 * post-handshake messages (session tickets) are consumed silently. */
static void tls_deliver(struct px_upstream *u)
{
    while (u->state != PX_UP_CLOSING && (u->reading || u->state != PX_UP_ACTIVE)) {
        ssize_t n = px_tls_io_read(u->tls, u->plain, PX_UPSTREAM_PLAIN);
        if (tls_flush(u) < 0)
            n = -ENOMEM;
        if (n == 0)
            return;
        if (u->state != PX_UP_ACTIVE || !u->cbs) {
            upstream_close(u);
            return;
        }
        if (n < 0) {
            uv_read_stop((uv_stream_t *)&u->tcp);
            u->reading = false;
            u->cbs->on_read(u->owner, u, NULL, n == -EPIPE ? UV_EOF : UV_EPROTO);
            return;
        }
        u->cbs->on_read(u->owner, u, u->plain, n);
    }
}

/* Received ciphertext could not be kept: the connection is unusable. */
static void tls_out_of_memory(struct px_upstream *u)
{
    if (u->state == PX_UP_CONNECTING)
        connect_failed(u, UV_ENOMEM);
    else if (u->state == PX_UP_ACTIVE && u->cbs)
        u->cbs->on_read(u->owner, u, NULL, UV_ENOMEM);
    else
        upstream_close(u);
}

static void tls_read(struct px_upstream *u, ssize_t nread, const uv_buf_t *buf)
{
    if (nread < 0) {
        if (u->state == PX_UP_CONNECTING) {
            px_log_warn("TLS to backend %s failed: the connection closed during the handshake",
                        u->backend->id.key);
            connect_failed(u, UV_EPROTO);
        } else if (u->state == PX_UP_ACTIVE && u->cbs) {
            uv_read_stop((uv_stream_t *)&u->tcp);
            u->reading = false;
            u->cbs->on_read(u->owner, u, NULL, nread);
        } else {
            upstream_close(u);
        }
        return;
    }
    /* OpenSSL reads the records from the worker's read buffer itself;
     * what it leaves there is copied before the next read reuses it. */
    if (px_tls_io_lend(u->tls, buf->base, (size_t)nread) < 0) {
        tls_out_of_memory(u);
        return;
    }
    if (u->state == PX_UP_CONNECTING)
        tls_handshake(u);
    if (u->state != PX_UP_CONNECTING)
        tls_deliver(u);
    if (px_tls_io_unlend(u->tls) < 0)
        tls_out_of_memory(u);
}

/* Once a read has emptied the socket and the response is unfinished (the
 * owner still holds the connection), acknowledge what arrived now instead
 * of when the delayed-ACK timer fires. A connection that carries requests
 * one way and responses the other is in Linux's "pingpong" (interactive)
 * mode, where an ACK waits for data to ride on or for the timer (40 ms and
 * more); over loopback — a sidecar in front of its application, albd's
 * common case — a 64 KiB segment is less than one MSS, so nothing else
 * forces it. A backend whose send buffer holds less than its response
 * then stops, the rest unsent until the timer fires (seen in
 * ../shared/bench's h1_64k: ~0.4 % of responses took 40-55 ms between the
 * backend's first and last segment, and p99 was 30-35 ms for every proxy;
 * a backend with an 8 KiB send buffer took 0.6 s per MiB). Most responses
 * are whole in the socket when albd reads them, so this costs a system
 * call and an ACK for 0.6-2.4 % of them there (perf stat, shared and
 * pinned mode), none for small responses.
 * Not below PX_UPSTREAM_ACK_BYTES: less than that cannot fill a send
 * buffer, and a slow stream of small events costs no system call.
 * TCP_QUICKACK with an even value sends the pending ACK and stays in
 * pingpong mode (Linux: __tcp_sock_set_quickack), so the connection sends
 * no more ACKs than that one. */
#define PX_UPSTREAM_ACK_BYTES 4096
static void ack_now(struct px_upstream *u, ssize_t nread, const uv_buf_t *buf)
{
    if (nread <= 0 || u->state != PX_UP_ACTIVE || u->cbs == NULL)
        return;
    u->unacked =
        u->unacked > UINT32_MAX - (uint32_t)nread ? UINT32_MAX : u->unacked + (uint32_t)nread;
    if ((size_t)nread == buf->len || u->unacked < PX_UPSTREAM_ACK_BYTES)
        return; /* more waits in the socket (libuv reads again first), or too little */
    u->unacked = 0;
    uv_os_fd_t fd;
    int ack_stay_pingpong = 2;
    if (uv_fileno((uv_handle_t *)&u->tcp, &fd) == 0)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &ack_stay_pingpong,
                         sizeof ack_stay_pingpong);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct px_upstream *u = s->data;
    if (nread == 0 || u->state == PX_UP_CLOSING)
        return;
    if (u->tls) {
        struct px_worker *w = u->w;
        tls_read(u, nread, buf);
        ack_now(u, nread, buf); /* (u is freed only in close_cb, from the loop) */
        if (w->after_upstream_read)
            w->after_upstream_read(w);
        return;
    }
    if (u->state != PX_UP_ACTIVE || !u->cbs) {
        /* An idle connection that speaks or closes is useless. */
        upstream_close(u);
        return;
    }
    if (nread < 0) {
        uv_read_stop(s);
        u->reading = false;
    }
    struct px_worker *w = u->w;
    u->cbs->on_read(u->owner, u, nread > 0 ? buf->base : NULL, nread);
    ack_now(u, nread, buf); /* (u is freed only in close_cb, from the loop) */
    /* What this response produced leaves now, not after every other
     * callback of the iteration (TLS handshakes can take milliseconds). */
    if (w->after_upstream_read)
        w->after_upstream_read(w);
}

void px_upstream_read(struct px_upstream *u, bool on)
{
    if (u->state == PX_UP_CLOSING || (u->state == PX_UP_CONNECTING && !u->tls))
        return;
    if (on && !u->reading) {
        if (uv_read_start((uv_stream_t *)&u->tcp, alloc_cb, read_cb) == 0)
            u->reading = true;
        /* Records already decrypted-to-be wait in OpenSSL: deliver them
         * from the loop, not from inside the owner's call. */
        if (u->reading && u->tls && u->state == PX_UP_ACTIVE &&
            (px_tls_io_in_pending(u->tls) || SSL_pending(px_tls_io_ssl(u->tls))))
            uv_timer_start(&u->timer, timer_cb, 0, 0);
    } else if (!on && u->reading) {
        uv_read_stop((uv_stream_t *)&u->tcp);
        u->reading = false;
    }
}

static void on_written(struct px_outq *q, int status)
{
    struct px_upstream *u = UP_OF(q, out);
    if (u->state == PX_UP_CLOSING)
        return;
    if (status < 0) {
        if (u->state == PX_UP_ACTIVE && u->cbs) {
            u->cbs->on_read(u->owner, u, NULL, status);
        } else {
            upstream_close(u);
        }
        return;
    }
    if (u->out_high && q->queued < PX_OUTQ_LOW) {
        u->out_high = false;
        if (u->state == PX_UP_ACTIVE && u->cbs && u->cbs->on_writable)
            u->cbs->on_writable(u->owner, u);
    }
}

static void timer_cb(uv_timer_t *t)
{
    struct px_upstream *u = t->data;
    if (u->state == PX_UP_ACTIVE && u->drain_armed) {
        /* connectionDrain's deadline: the owner sees the connection die
         * (and answers or cuts its response), unless the server came
         * back meanwhile. */
        u->drain_armed = false;
        if (atomic_load_explicit(&u->backend->drain_at, memory_order_relaxed) ==
                PX_DRAIN_NO_DEADLINE ||
            atomic_load_explicit(&u->backend->drain_at, memory_order_relaxed) == 0 || !u->cbs)
            return;
        px_log_debug("upstream %s: connection drain timeout, closing", u->backend->id.key);
        u->cbs->on_read(u->owner, u, NULL, UV_ECANCELED);
        return;
    }
    if (u->state == PX_UP_CONNECTING) {
        if (u->tls && u->reading)
            px_log_warn("TLS to backend %s failed: no handshake within %d ms", u->backend->id.key,
                        PX_UPSTREAM_CONNECT_MS);
        connect_failed(u, UV_ETIMEDOUT);
    } else if (u->state == PX_UP_IDLE) {
        uint64_t idle = uv_now(&u->w->loop) - u->idle_since;
        if (idle < PX_UPSTREAM_IDLE_MS)
            uv_timer_start(&u->timer, timer_cb, PX_UPSTREAM_IDLE_MS - idle, 0);
        else
            upstream_close(u);
    } else if (u->state == PX_UP_ACTIVE && u->tls) {
        struct px_worker *w = u->w;
        tls_deliver(u); /* px_upstream_read resumed over buffered records */
        if (w->after_upstream_read)
            w->after_upstream_read(w);
    }
}

/* An active connection to a backend with a drain deadline: the timer
 * (unused while active) fires at the deadline. */
static void arm_drain(struct px_upstream *u)
{
    uint64_t at = atomic_load_explicit(&u->backend->drain_at, memory_order_relaxed);
    if (u->state != PX_UP_ACTIVE || at == 0 || at == PX_DRAIN_NO_DEADLINE || u->drain_armed)
        return;
    uint64_t now = uv_hrtime() / 1000000u;
    u->drain_armed = true;
    uv_timer_start(&u->timer, timer_cb, at > now ? at - now : 0, 0);
}

static void drain_of(struct px_backend *b, void *arg)
{
    struct px_worker *w = arg;
    if (atomic_load_explicit(&b->drain_at, memory_order_relaxed) == 0)
        return;
    struct px_pool *e = &b->pools[w->id];
    while (e->idle) /* never reused: the server takes no new requests */
        upstream_close(e->idle);
    for (struct px_upstream *u = e->busy; u; u = u->idle_next)
        arm_drain(u);
}

void px_upstream_drain(struct px_worker *w)
{
    if (w->registry)
        px_registry_each(w->registry, drain_of, w);
}

static void connect_cb(uv_connect_t *req, int status)
{
    struct px_upstream *u = req->data;
    if (u->state != PX_UP_CONNECTING)
        return; /* timed out or closed meanwhile */
    const struct px_upstream_cbs *cbs = u->cbs;
    void *owner = u->owner;
    if (status < 0) {
        uv_timer_stop(&u->timer);
        connect_failed(u, status);
        return;
    }
    uv_tcp_nodelay(&u->tcp, 1);
    if (u->tls) {
        /* The connect timeout covers the handshake too. */
        px_upstream_read(u, true);
        tls_handshake(u);
        return;
    }
    uv_timer_stop(&u->timer);
    set_state(u, PX_UP_ACTIVE);
    px_upstream_read(u, true);
    arm_drain(u);
    if (cbs)
        cbs->on_connect(owner, u, 0);
}

int px_upstream_acquire(struct px_worker *w, const struct px_server *s, bool allow_pooled,
                        const struct px_upstream_cbs *cbs, void *owner, struct px_upstream **out,
                        bool *reused)
{
    struct px_backend *b = s->backend;
    struct px_pool *e = &b->pools[w->id];
    *reused = false;
    if (allow_pooled && e->idle) {
        struct px_upstream *u = e->idle;
        idle_unlink(u);
        /* The idle timer keeps running (a plain active connection ignores
         * it; release finds it armed): no timer work per request. */
        set_state(u, PX_UP_ACTIVE);
        u->cbs = cbs;
        u->owner = owner;
        u->unacked = 0;
        px_upstream_read(u, true);
        atomic_fetch_add_explicit(&w->stats.upstream_reused, 1, memory_order_relaxed);
        *reused = true;
        *out = u;
        return 0;
    }
    struct px_upstream *u = calloc(1, sizeof *u);
    if (!u)
        return -ENOMEM;
    int rc = uv_tcp_init(&w->loop, &u->tcp);
    if (rc < 0) {
        free(u);
        return rc;
    }
    u->tcp.data = u;
    uv_timer_init(&w->loop, &u->timer);
    u->timer.data = u;
    u->open_handles = 2;
    u->w = w;
    u->backend = px_backend_ref(b);
    atomic_fetch_add_explicit(&b->connections, 1, memory_order_relaxed);
    u->cbs = cbs;
    u->owner = owner;
    u->state = PX_UP_CLOSING; /* not counted yet */
    set_state(u, PX_UP_CONNECTING);
    px_outq_init(&u->out, (uv_stream_t *)&u->tcp, on_written);
    if (s->tls_ctx) {
        u->tls = px_tls_io_new(s->tls_ctx, px_outq_append_to, &u->out);
        u->plain = malloc(PX_UPSTREAM_PLAIN);
        if (!u->tls || !u->plain) {
            upstream_close(u);
            return -ENOMEM;
        }
        SSL *ssl = px_tls_io_ssl(u->tls);
        SSL_set_connect_state(ssl);
        if (px_upstream_tls_setup(ssl, s->tls_name, &b->pools[w->id]) != 0) {
            upstream_close(u);
            return -ENOMEM;
        }
    }
    u->connect_req.data = u;
    rc = uv_tcp_connect(&u->connect_req, &u->tcp, (const struct sockaddr *)&b->id.addr, connect_cb);
    if (rc < 0) {
        upstream_close(u);
        return rc;
    }
    /* Reading is on from the start (the connect completes first): started
     * in connect_cb, after libuv dropped its POLLOUT interest, it cost an
     * epoll ADD failing with EEXIST and a MOD. */
    if (uv_read_start((uv_stream_t *)&u->tcp, alloc_cb, read_cb) == 0)
        u->reading = true;
    uv_timer_start(&u->timer, timer_cb, PX_UPSTREAM_CONNECT_MS, 0);
    atomic_fetch_add_explicit(&w->stats.upstream_connects, 1, memory_order_relaxed);
    *out = u;
    return 0;
}

int px_upstream_write(struct px_upstream *u, const uv_buf_t *bufs, unsigned n)
{
    if (u->state != PX_UP_ACTIVE || u->shut)
        return UV_EPIPE;
    int rc = 0;
    if (u->tls) {
        for (unsigned i = 0; rc == 0 && i < n; i++)
            if (bufs[i].len && px_tls_io_write(u->tls, bufs[i].base, bufs[i].len) != 0)
                rc = UV_EPROTO;
        if (rc == 0)
            rc = tls_flush(u) < 0 ? UV_ENOMEM : 0;
    } else {
        rc = px_outq_writev(&u->out, bufs, n);
    }
    if (rc == 0 && u->out.queued > PX_OUTQ_HIGH)
        u->out_high = true;
    return rc;
}

bool px_upstream_congested(const struct px_upstream *u)
{
    return u->out_high;
}

void px_upstream_set_owner(struct px_upstream *u, const struct px_upstream_cbs *cbs, void *owner)
{
    if (u->state != PX_UP_ACTIVE)
        return;
    u->cbs = cbs;
    u->owner = owner;
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    struct px_upstream *u = req->data;
    if (status < 0 && u->state == PX_UP_ACTIVE && u->cbs)
        u->cbs->on_read(u->owner, u, NULL, status);
}

int px_upstream_shutdown(struct px_upstream *u)
{
    if (u->state != PX_UP_ACTIVE || u->shut)
        return UV_EPIPE;
    u->shut = true;
    if (u->tls) {
        px_tls_io_shutdown(u->tls); /* close_notify first */
        tls_flush(u);
    }
    u->shutdown_req.data = u;
    return uv_shutdown(&u->shutdown_req, (uv_stream_t *)&u->tcp, shutdown_cb);
}

void px_upstream_release(struct px_upstream *u, bool keep)
{
    if (!u || u->state == PX_UP_CLOSING)
        return;
    u->cbs = NULL;
    u->owner = NULL;
    struct px_pool *e = pool_of(u);
    if (!keep || u->shut || u->state != PX_UP_ACTIVE || u->w->pools_closed ||
        e->n_idle >= PX_UPSTREAM_IDLE_MAX || u->out.queued || u->out.inflight ||
        (u->tls && (px_tls_io_in_pending(u->tls) || SSL_pending(px_tls_io_ssl(u->tls))))) {
        upstream_close(u);
        return;
    }
    if (u->drain_armed) {
        u->drain_armed = false;
        uv_timer_stop(&u->timer);
    }
    if (atomic_load_explicit(&u->backend->drain_at, memory_order_relaxed) != 0) {
        upstream_close(u); /* a draining server's connection is never reused */
        return;
    }
    set_state(u, PX_UP_IDLE);
    u->idle_prev = NULL;
    u->idle_next = e->idle;
    if (e->idle)
        e->idle->idle_prev = u;
    e->idle = u;
    e->n_idle++;
    u->out_high = false;
    u->idle_since = uv_now(&u->w->loop);
    if (!uv_is_active((uv_handle_t *)&u->timer))
        uv_timer_start(&u->timer, timer_cb, PX_UPSTREAM_IDLE_MS, 0);
    px_upstream_read(u, true); /* notice the backend closing it */
}
