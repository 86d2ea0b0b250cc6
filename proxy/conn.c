/* Client connections: accept, transport (plain TCP or TLS over memory
 * BIOs), input pumping with backpressure, graceful and abrupt close. The
 * HTTP semantics live in the protocol handler the listener chooses after
 * the handshake (px_listener.protocols, proxy/protos.c). */
#include "proxy/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/conn-io.h"
#include "proxy/headers.h"
#include "proxy/obs.h"
#include "common/log.h"
#include "proxy/snapshot.h"
#include "proxy/tls_io.h"

/* How long a finishing connection waits for the client's EOF after our
 * FIN, so that unread input does not turn the close into a reset that
 * destroys the response we just sent. */
#define LINGER_MS 2000

#define CONN_OF(field_ptr, field)                                                                  \
    ((struct px_conn *)((char *)(field_ptr)-offsetof(struct px_conn, field)))

static void input_pump(struct px_conn *c);
static int stage_flush(struct px_conn *c, bool send);
static void update_reading(struct px_conn *c);

static void stat_add(atomic_uint_fast64_t *v, int64_t d)
{
    atomic_fetch_add_explicit(v, (uint_fast64_t)d, memory_order_relaxed);
}

/* --- pooled buffers and parking ----------------------------------------
 *
 * An idle connection holds no buffer: the read, staging and decrypt
 * buffers and the output chunks come from the worker's pools while bytes
 * are in them and go back as soon as they are consumed or sent (a pointer
 * push, no malloc). What the TLS library and the protocol handler keep
 * between requests (OpenSSL's record buffers, header scratch, HTTP/2
 * stream caches) is released when the connection has been idle for
 * PX_CONN_PARK_MS ("parked"); it is taken again when bytes arrive. */

/* The gauge of pooled bytes client connections hold (single writer: this
 * worker; a relaxed store, no read-modify-write on the hot path). */
static void publish_bufs(struct px_worker *w)
{
    uint64_t bytes = (uint64_t)w->conn_bufs.out * w->conn_bufs.size +
                     (uint64_t)w->out_chunks.out * w->out_chunks.size;
    atomic_store_explicit(&w->stats.connection_buffer_bytes, bytes, memory_order_relaxed);
}

static char *buf_take(struct px_conn *c)
{
    char *b = px_bufpool_get(&c->w->conn_bufs);
    publish_bufs(c->w);
    return b;
}

static void buf_give(struct px_conn *c, char **b)
{
    if (!*b)
        return;
    px_bufpool_put(&c->w->conn_bufs, *b);
    *b = NULL;
    publish_bufs(c->w);
}

static void idle_unlink(struct px_conn *c)
{
    if (!c->idle_linked)
        return;
    struct px_worker *w = c->w;
    if (c->idle_prev)
        c->idle_prev->idle_next = c->idle_next;
    else
        w->idle_head = c->idle_next;
    if (c->idle_next)
        c->idle_next->idle_prev = c->idle_prev;
    else
        w->idle_tail = c->idle_prev;
    c->idle_prev = c->idle_next = NULL;
    c->idle_linked = false;
}

/* Bytes moved again: c is no longer parked (what it released is taken
 * again on demand). */
static void unpark(struct px_conn *c)
{
    if (c->parked) {
        c->parked = false;
        stat_add(&c->w->stats.connections_parked, -1);
    }
}

/* Releases what c keeps while idle, if nothing is in flight on any layer:
 * handler, albd's buffers, TLS (px_tls_io_park refuses while OpenSSL holds
 * unread or unsent bytes). */
static void park(struct px_conn *c)
{
    if (c->closing || c->state != PX_CONN_OPEN || c->parked || c->eof || !c->proto->idle ||
        !c->proto->idle(c))
        return;
    if (c->in_len || c->stage_len || c->out.queued || c->out.inflight || c->out.open || c->out.held)
        return;
    if (c->tls && !px_tls_io_park(c->tls))
        return;
    if (c->proto->park)
        c->proto->park(c);
    buf_give(c, &c->rbuf);
    buf_give(c, &c->plain);
    buf_give(c, &c->stage);
    c->parked = true;
    stat_add(&c->w->stats.connections_parked, 1);
}

static void park_cb(uv_timer_t *t)
{
    struct px_worker *w = t->data;
    uint64_t now = uv_now(&w->loop);
    struct px_conn *c;
    while ((c = w->idle_head) && c->idle_since + PX_CONN_PARK_MS <= now) {
        idle_unlink(c);
        park(c);
    }
    if (w->idle_head)
        uv_timer_start(t, park_cb, w->idle_head->idle_since + PX_CONN_PARK_MS - now, 0);
    publish_bufs(w);
}

void px_conn_idle(struct px_conn *c)
{
    if (c->closing || c->state != PX_CONN_OPEN || c->idle_linked || c->parked)
        return;
    struct px_worker *w = c->w;
    c->idle_since = uv_now(&w->loop);
    c->idle_prev = w->idle_tail;
    c->idle_next = NULL;
    if (w->idle_tail)
        w->idle_tail->idle_next = c;
    else
        w->idle_head = c;
    w->idle_tail = c;
    c->idle_linked = true;
    if (!w->park_timer_on) {
        uv_timer_init(&w->loop, &w->park_timer);
        w->park_timer.data = w;
        uv_unref((uv_handle_t *)&w->park_timer); /* connections keep the loop alive */
        w->park_timer_on = true;
    }
    if (!uv_is_active((uv_handle_t *)&w->park_timer))
        uv_timer_start(&w->park_timer, park_cb, PX_CONN_PARK_MS, 0);
}

/* Asks the handler whether c is idle now, and starts its idle time. */
static void idle_check(struct px_conn *c)
{
    if (!c->closing && c->state == PX_CONN_OPEN && !c->idle_linked && !c->parked &&
        c->proto->idle && c->proto->idle(c))
        px_conn_idle(c);
}

void px_conn_worker_init(struct px_worker *w)
{
    /* Enough cached buffers for every connection of a busy iteration; the
     * rest go back to malloc. */
    px_bufpool_init(&w->conn_bufs, PX_CONN_BUF, 128);
    px_bufpool_init(&w->out_chunks, px_outq_chunk_size(), 64);
}

void px_conn_worker_close(struct px_worker *w)
{
    if (w->park_timer_on) {
        uv_close((uv_handle_t *)&w->park_timer, NULL);
        w->park_timer_on = false;
    }
    if (w->hs_idle_on) {
        uv_close((uv_handle_t *)&w->hs_idle, NULL);
        w->hs_idle_on = false;
    }
}

void px_conn_worker_cleanup(struct px_worker *w)
{
    px_bufpool_cleanup(&w->conn_bufs);
    px_bufpool_cleanup(&w->out_chunks);
    px_bufpool_cleanup(&w->h1_reqs);
    px_bufpool_cleanup(&w->h2_scratch);
}

struct px_conn *px_conn_next(struct px_conn *c)
{
    return c ? c->next : NULL;
}

/* Takes c off the worker's queue of waiting handshakes. */
static void hs_unlink(struct px_conn *c)
{
    if (!c->hs_queued)
        return;
    struct px_worker *w = c->w;
    if (c->hs_prev)
        c->hs_prev->hs_next = c->hs_next;
    else
        w->hs_head = c->hs_next;
    if (c->hs_next)
        c->hs_next->hs_prev = c->hs_prev;
    else
        w->hs_tail = c->hs_prev;
    c->hs_prev = c->hs_next = NULL;
    c->hs_queued = false;
}

static void conn_free(struct px_conn *c)
{
    struct px_worker *w = c->w;
    hs_unlink(c);
    if (c->flush_queued) {
        struct px_conn **pp = &w->flush_head;
        while (*pp && *pp != c)
            pp = &(*pp)->flush_next;
        if (*pp)
            *pp = c->flush_next;
    }
    if (c->proto && c->proto->free)
        c->proto->free(c);
    if (c->prev)
        c->prev->next = c->next;
    else if (w->conns == c)
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    idle_unlink(c);
    unpark(c);
    px_outq_cleanup(&c->out);
    px_tls_io_free(c->tls);
    buf_give(c, &c->plain);
    buf_give(c, &c->rbuf);
    buf_give(c, &c->stage);
    if (c->lis)
        px_obs_conn(w->id, c->lis->obs_slot, -1);
    px_snapshot_unref(c->snap);
    atomic_fetch_sub_explicit(&w->stats.connections_active, 1, memory_order_relaxed);
    free(c);
}

static void close_cb(uv_handle_t *h)
{
    struct px_conn *c = h->data;
    if (--c->open_handles == 0)
        conn_free(c);
}

void px_conn_close(struct px_conn *c)
{
    if (!c || c->closing)
        return;
    c->closing = true;
    c->state = PX_CONN_CLOSING;
    idle_unlink(c);
    hs_unlink(c);
    if (c->proto && c->proto->on_close)
        c->proto->on_close(c);
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
    uv_close((uv_handle_t *)&c->tcp, close_cb);
    uv_close((uv_handle_t *)&c->timer, close_cb);
}

void px_conn_abort(struct px_conn *c)
{
    if (!c || c->closing)
        return;
    /* SO_LINGER 0: close() sends RST and drops unsent output. */
    uv_os_fd_t fd;
    if (uv_fileno((const uv_handle_t *)&c->tcp, &fd) == 0) {
        struct linger l = {.l_onoff = 1, .l_linger = 0};
        (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    px_conn_close(c);
}

void px_conn_drain(struct px_conn *c)
{
    if (!c || c->closing || c->draining)
        return;
    c->draining = true;
    switch (c->state) {
    case PX_CONN_HANDSHAKE:
        px_conn_close(c);
        break;
    case PX_CONN_OPEN:
        if (c->proto && c->proto->drain)
            c->proto->drain(c);
        break;
    default:
        break;
    }
}

void px_conn_on_snapshot(struct px_conn *c)
{
    if (!c || c->closing)
        return;
    switch (c->state) {
    case PX_CONN_HANDSHAKE:
        if (px_conn_snapshot_refresh(c) < 0)
            px_conn_close(c);
        break;
    case PX_CONN_OPEN:
        if (c->proto && c->proto->on_snapshot)
            c->proto->on_snapshot(c);
        break;
    default:
        break;
    }
}

/* Moves TLS output produced by OpenSSL to the socket. */
static int tls_flush(struct px_conn *c)
{
    return px_outq_flush(&c->out);
}

/* The response is out and the FIN sent (status 0) or not (< 0). */
static void finish_shut(struct px_conn *c, int status)
{
    c->wr_done = true;
    if (status < 0 || c->eof) { /* the client's FIN came already: nothing to wait for */
        px_conn_close(c);
        return;
    }
    /* Read and discard until EOF or the linger timer. */
    px_conn_timer(c, LINGER_MS);
    update_reading(c);
}

/* Called once nothing waits in the output queue or in libuv (every byte
 * is in the kernel): the half-close is one shutdown(2) now. uv_shutdown
 * would wait for a POLLOUT round first, an epoll_ctl more. */
static void finish_flushed(struct px_conn *c)
{
    uv_os_fd_t fd;
    int rc = uv_fileno((uv_handle_t *)&c->tcp, &fd);
    if (rc == 0 && shutdown(fd, SHUT_WR) != 0)
        rc = -errno;
    finish_shut(c, rc);
}

static void half_close_cb(uv_shutdown_t *req, int status)
{
    struct px_conn *c = req->data;
    if (c->closing)
        return;
    c->wr_done = true;
    if (status < 0 || c->state == PX_CONN_FINISHING)
        px_conn_close(c);
}

void px_conn_shutdown_write(struct px_conn *c)
{
    if (!c || c->closing || c->wr_shut || c->state != PX_CONN_OPEN)
        return;
    /* TLS: the staged output and the close_notify leave in one write. */
    if (stage_flush(c, !c->tls) < 0) {
        px_conn_close(c);
        return;
    }
    c->wr_shut = true;
    if (c->tls) {
        px_tls_io_shutdown(c->tls);
        if (tls_flush(c) < 0) {
            px_conn_close(c);
            return;
        }
    }
    /* libuv runs the shutdown after the writes already queued. */
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, half_close_cb) < 0)
        px_conn_close(c);
}

void px_conn_finish(struct px_conn *c)
{
    if (!c || c->closing || c->state == PX_CONN_FINISHING)
        return;
    if (c->wr_shut) {
        /* Already half-closed: nothing more to send; close once the FIN
         * is out (half_close_cb). */
        c->state = PX_CONN_FINISHING;
        c->want_input = false;
        c->in_len = 0;
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
        if (c->wr_done)
            px_conn_close(c);
        return;
    }
    /* TLS: the staged output and the close_notify leave in one write. */
    if (stage_flush(c, !c->tls) < 0) {
        px_conn_close(c);
        return;
    }
    c->state = PX_CONN_FINISHING;
    c->want_input = false;
    c->in_len = 0;
    if (c->tls) {
        px_tls_io_shutdown(c->tls);
        if (tls_flush(c) < 0) {
            px_conn_close(c);
            return;
        }
    }
    /* Bound the flush by the idle timeout: a client that does not read its
     * response does not keep the connection forever. */
    px_conn_timer(c, (uint64_t)(c->lis->model ? c->lis->model->idle_timeout_s : 15) * 1000);
    /* Reading goes on (discarding) while the output leaves: stopping and
     * starting again for the linger would cost two epoll_ctl calls. */
    update_reading(c);
    if (c->out.queued == 0)
        finish_flushed(c);
}

static void on_written(struct px_outq *q, int status)
{
    struct px_conn *c = CONN_OF(q, out);
    if (c->closing)
        return;
    if (status < 0) {
        px_conn_close(c);
        return;
    }
    if (c->state == PX_CONN_FINISHING) {
        if (q->queued == 0 && q->inflight == 0 && !c->wr_shut && !c->wr_done)
            finish_flushed(c);
        return;
    }
    if (c->out_high && q->queued < PX_OUTQ_LOW) {
        c->out_high = false;
        if (c->state == PX_CONN_OPEN && c->proto && c->proto->on_writable)
            c->proto->on_writable(c);
    }
    if (q->inflight == 0)
        idle_check(c); /* a response the client was slow to take has gone */
}

/* Writes bufs to the client now: through TLS, or straight to the queue.
 * send false (TLS only): the records stay in OpenSSL's output for the next
 * tls_flush to take along. */
static int write_now(struct px_conn *c, const uv_buf_t *bufs, unsigned n, bool send)
{
    int rc = 0;
    unpark(c); /* TLS takes its write buffer again */
    if (!c->tls) {
        rc = px_outq_writev(&c->out, bufs, n);
    } else {
        for (unsigned i = 0; i < n && rc == 0; i++)
            rc = px_tls_io_write(c->tls, bufs[i].base, bufs[i].len);
        if (rc == 0 && send)
            rc = tls_flush(c);
    }
    if (rc == 0 && c->out.queued > PX_OUTQ_HIGH)
        c->out_high = true;
    return rc;
}

/* Sends what is staged (send: as write_now). */
static int stage_flush(struct px_conn *c, bool send)
{
    if (c->stage_len == 0) {
        buf_give(c, &c->stage);
        return 0;
    }
    uv_buf_t b = uv_buf_init(c->stage, (unsigned)c->stage_len);
    c->stage_len = 0;
    int rc = write_now(c, &b, 1, send); /* copies (outq chunk or TLS record) */
    buf_give(c, &c->stage);
    return rc;
}

void px_conn_flush_all(struct px_worker *w)
{
    while (w->flush_head) {
        struct px_conn *c = w->flush_head;
        w->flush_head = c->flush_next;
        c->flush_next = NULL;
        c->flush_queued = false;
        if (c->closing)
            continue;
        if (stage_flush(c, true) < 0)
            px_conn_close(c);
    }
}

int px_conn_write(struct px_conn *c, const uv_buf_t *bufs, unsigned n)
{
    if (c->closing || c->state == PX_CONN_FINISHING || c->wr_shut)
        return -EPIPE;
    size_t total = 0;
    for (unsigned i = 0; i < n; i++)
        total += bufs[i].len;
    if (c->stage_len + total > PX_CONN_STAGE || total >= PX_CONN_STAGE) {
        if (total >= PX_CONN_STAGE && c->stage_len && n < 8) {
            /* Large output follows what is staged (a response head) in the
             * same write. */
            uv_buf_t v[8];
            v[0] = uv_buf_init(c->stage, (unsigned)c->stage_len);
            memcpy(v + 1, bufs, n * sizeof *bufs);
            c->stage_len = 0;
            int rc = write_now(c, v, n + 1, true); /* copies, as in stage_flush */
            buf_give(c, &c->stage);
            return rc;
        }
        int rc = stage_flush(c, true);
        if (rc < 0)
            return rc;
        /* A stage's worth or more (a full HTTP/2 DATA frame, a large body
         * read) goes out as it is: copying it into the stage would only
         * fill it. */
        if (total >= PX_CONN_STAGE)
            return write_now(c, bufs, n, true);
    }
    if (total == 0)
        return 0;
    if (!c->stage && !(c->stage = buf_take(c)))
        return -ENOMEM;
    /* Small output waits for the end of the loop iteration, so a response
     * head and its body (or several pipelined responses) leave together. */
    for (unsigned i = 0; i < n; i++) {
        memcpy(c->stage + c->stage_len, bufs[i].base, bufs[i].len);
        c->stage_len += bufs[i].len;
    }
    if (!c->flush_queued && c->stage_len) {
        c->flush_queued = true;
        c->flush_next = c->w->flush_head;
        c->w->flush_head = c;
    }
    return 0;
}

bool px_conn_congested(const struct px_conn *c)
{
    return c->out_high;
}

static void handshake_failed(struct px_conn *c, int fail);

static void timer_cb(uv_timer_t *t)
{
    struct px_conn *c = CONN_OF(t, timer);
    if (c->closing || c->deadline == 0)
        return; /* stopped since it was armed */
    uint64_t now = uv_now(&c->w->loop);
    if (now < c->deadline) { /* moved later since it was armed */
        c->timer_at = c->deadline;
        uv_timer_start(&c->timer, timer_cb, c->deadline - now, 0);
        return;
    }
    c->deadline = 0;
    if (c->state == PX_CONN_OPEN && c->proto && c->proto->on_timeout) {
        c->proto->on_timeout(c);
    } else {
        if (c->state == PX_CONN_HANDSHAKE && c->tls && c->tls_seen && c->lis)
            handshake_failed(c, PX_OBS_TLSF_TIMEOUT);
        px_conn_close(c); /* handshake too slow, or flush / linger over */
    }
}

void px_conn_timer(struct px_conn *c, uint64_t ms)
{
    if (c->closing)
        return;
    if (ms == 0) {
        c->deadline = 0; /* the armed timer, if any, finds nothing to do */
        return;
    }
    uint64_t at = uv_now(&c->w->loop) + ms;
    c->deadline = at;
    if (uv_is_active((uv_handle_t *)&c->timer) && c->timer_at <= at)
        return; /* fires first and re-arms for the rest */
    c->timer_at = at;
    uv_timer_start(&c->timer, timer_cb, ms, 0);
}

int px_conn_snapshot_refresh(struct px_conn *c)
{
    struct px_snapshot *ns = c->w->snap;
    if (!ns || ns == c->snap)
        return 0;
    const struct px_bind *b = px_snapshot_find_bind(ns, c->bind_key);
    if (!b || b->listener >= ns->n_listeners)
        return -ENOENT;
    px_snapshot_ref(ns);
    px_snapshot_unref(c->snap);
    c->snap = ns;
    c->lis = &ns->listeners[b->listener];
    return 0;
}

bool px_conn_listener_gone(const struct px_conn *c)
{
    const struct px_snapshot *ns = c->w->snap;
    if (!ns || ns == c->snap)
        return false;
    return px_snapshot_find_bind(ns, c->bind_key) == NULL;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct px_conn *c = h->data;
    (void)suggested;
    if (!c->rbuf)
        c->rbuf = buf_take(c);
    buf->base = c->rbuf;
    buf->len = c->rbuf ? PX_CONN_BUF : 0; /* 0: libuv reports UV_ENOBUFS, c closes */
}

static void client_eof(struct px_conn *c)
{
    c->eof = true;
    if (c->state == PX_CONN_OPEN && c->proto && c->proto->on_eof)
        c->proto->on_eof(c);
    else
        px_conn_close(c);
}

/* Lets the listener pick the protocol handler once the transport is up. */
static int start_protocol(struct px_conn *c)
{
    const unsigned char *alpn = NULL;
    unsigned len = 0;
    if (c->tls)
        px_tls_io_alpn(c->tls, &alpn, &len);
    const struct px_proto *p = c->lis->protocols->choose(alpn, len);
    c->proto = p;
    c->state = PX_CONN_OPEN;
    c->want_input = true;
    return p->start(c);
}

/* Counts a failed TLS handshake by reason (fail: enum px_obs_tls_fail,
 * -1: ask the TLS layer) and logs it, at most a few lines per worker per
 * window (scanners and broken clients are many). */
static void handshake_failed(struct px_conn *c, int fail)
{
    static _Thread_local struct px_log_limit limit;
    const char *text = NULL;
    if (fail < 0)
        fail = px_tls_io_fail(c->tls, &text);
    /* The version is known once a ClientHello was read: before that,
     * SSL_version() is only the method's default. */
    SSL *ssl = c->tls ? px_tls_io_ssl(c->tls) : NULL;
    int version =
        fail != PX_OBS_TLSF_HTTP_REQUEST && ssl && !SSL_in_before(ssl) ? SSL_version(ssl) : 0;
    px_obs_tls_fail(c->w->id, c->lis->obs_slot, fail, version);
    unsigned suppressed;
    if (!px_log_limit_allow(&limit, uv_now(&c->w->loop), &suppressed))
        return;
    char more[64] = "";
    if (suppressed)
        snprintf(more, sizeof more, " (%u more suppressed)", suppressed);
    px_log_info("TLS handshake from %s on %s failed: %s%s%s%s%s", c->client_ip,
                c->lis->model->meta.name, px_obs_tls_fail_name(fail), text ? " (" : "",
                text ? text : "", text ? ")" : "", more);
}

/* Nothing to do: an active idle handle only keeps the loop's poll from
 * blocking while handshakes wait. */
static void hs_idle_cb(uv_idle_t *h)
{
    (void)h;
}

/* Queues c's first handshake step for px_conn_run_handshakes. */
static void hs_defer(struct px_conn *c)
{
    struct px_worker *w = c->w;
    if (c->hs_queued)
        return;
    c->hs_queued = true;
    c->hs_next = NULL;
    c->hs_prev = w->hs_tail;
    if (w->hs_tail)
        w->hs_tail->hs_next = c;
    else
        w->hs_head = c;
    w->hs_tail = c;
}

static void tls_input(struct px_conn *c);

void px_conn_run_handshakes(struct px_worker *w)
{
    if (w->hs_head) {
        uint64_t t0 = uv_hrtime();
        do {
            struct px_conn *c = w->hs_head;
            hs_unlink(c);
            c->hs_begun = true;
            tls_input(c);
            if (!c->closing) {
                px_tls_io_trim(c->tls); /* the ClientHello's copy, read by now */
                idle_check(c);
            }
        } while (w->hs_head && uv_hrtime() - t0 < (uint64_t)PX_CONN_HS_BUDGET_US * 1000);
    }
    /* Handshakes left: the next poll must not block. None (all run, or
     * their connections closed while waiting): it may again. */
    if (w->hs_head && !w->hs_idle_on) {
        uv_idle_init(&w->loop, &w->hs_idle);
        uv_unref((uv_handle_t *)&w->hs_idle); /* connections keep the loop alive */
        w->hs_idle_on = true;
    }
    if (w->hs_idle_on) {
        if (w->hs_head)
            uv_idle_start(&w->hs_idle, hs_idle_cb);
        else
            uv_idle_stop(&w->hs_idle);
    }
}

static void tls_input(struct px_conn *c)
{
    if (c->state == PX_CONN_HANDSHAKE) {
        int r = px_tls_io_handshake(c->tls);
        int frc = tls_flush(c);
        if (r < 0 || frc < 0) {
            handshake_failed(c, -1);
            px_conn_close(c);
            return;
        }
        if (r == 0)
            return;
        px_obs_tls_ok(c->w->id, c->lis->obs_slot, SSL_version(px_tls_io_ssl(c->tls)));
        px_conn_timer(c, 0);
        if (start_protocol(c) < 0) {
            px_conn_close(c);
            return;
        }
    }
    input_pump(c);
}

/* Plain HTTP sent to an HTTPS listener (the first byte is not a TLS
 * handshake record): answered with a clear-text 400, as the reference does. */
static void reject_plain_http(struct px_conn *c)
{
    struct px_buf b;
    px_buf_init(&b, 512);
    int rc = px_headers_error(&b, 1, 400);
    if (rc == 0) {
        uv_buf_t ub = uv_buf_init(b.data, (unsigned)b.len);
        rc = px_outq_writev(&c->out, &ub, 1);
    }
    px_buf_cleanup(&b);
    atomic_fetch_add_explicit(&c->w->stats.responses_by_class[4], 1, memory_order_relaxed);
    px_tls_io_free(c->tls);
    c->tls = NULL; /* finish without a close_notify */
    if (rc < 0)
        px_conn_close(c);
    else
        px_conn_finish(c);
}

static void read_cb_body(struct px_conn *c, uv_stream_t *s, ssize_t nread);

/* Output staged while handling this read leaves at its end: a response
 * must not wait for the other callbacks of the iteration. */
static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct px_conn *c = s->data;
    struct px_worker *w = c->w;
    (void)buf;
    if (nread > 0) {
        idle_unlink(c);
        unpark(c);
    }
    read_cb_body(c, s, nread);
    /* The read buffer goes back at once, unless plain-HTTP input in it
     * waits for the handler (TLS input OpenSSL left unread was copied by
     * px_tls_io_unlend). */
    if (c->tls || c->in_len == 0 || c->closing)
        buf_give(c, &c->rbuf);
    if (nread > 0)
        idle_check(c);
    px_conn_flush_all(w);
}

static void read_cb_body(struct px_conn *c, uv_stream_t *s, ssize_t nread)
{
    if (c->closing)
        return;
    if (nread == 0)
        return;
    if (c->state == PX_CONN_FINISHING) {
        if (nread == UV_EOF && !c->wr_done) {
            /* The client half-closed while the response still leaves:
             * close once it is out (finish_shut). */
            c->eof = true;
            uv_read_stop(s);
            c->reading = false;
        } else if (nread < 0) {
            px_conn_close(c);
        }
        return; /* discard */
    }
    if (nread < 0) {
        uv_read_stop(s);
        c->reading = false;
        if (c->state == PX_CONN_HANDSHAKE && c->tls && c->tls_seen && c->lis)
            handshake_failed(c, PX_OBS_TLSF_EOF); /* the client gave up mid-handshake */
        if (nread == UV_EOF && c->state == PX_CONN_OPEN && !c->want_input) {
            /* Reading went on while the handler paused: input received
             * before the EOF (pipelined requests) comes first. */
            c->eof = true;
            c->eof_deferred = true;
        } else if (nread == UV_EOF)
            client_eof(c);
        else
            px_conn_close(c);
        return;
    }
    if (c->tls) {
        if (c->state == PX_CONN_HANDSHAKE && !c->tls_seen && c->rbuf[0] != 0x16) {
            handshake_failed(c, PX_OBS_TLSF_HTTP_REQUEST);
            reject_plain_http(c);
            return;
        }
        c->tls_seen = true;
        if (c->state == PX_CONN_HANDSHAKE && !c->hs_begun) {
            /* The ClientHello waits for the iteration's other work
             * (px_conn_run_handshakes), in a copy: rbuf goes back now. */
            if (px_tls_io_feed(c->tls, c->rbuf, (size_t)nread) < 0) {
                px_conn_close(c);
                return;
            }
            hs_defer(c);
            return;
        }
        /* OpenSSL reads the records from rbuf itself; what it leaves
         * there (a paused connection) is copied before rbuf is reused. */
        if (px_tls_io_lend(c->tls, c->rbuf, (size_t)nread) < 0) {
            px_conn_close(c);
            return;
        }
        tls_input(c);
        if (px_tls_io_unlend(c->tls) < 0)
            px_conn_close(c);
        return;
    }
    c->in = c->rbuf;
    c->in_len = (size_t)nread;
    input_pump(c);
}

static void update_reading(struct px_conn *c)
{
    if (c->closing)
        return;
    bool want;
    if (c->state == PX_CONN_FINISHING)
        want = !c->eof; /* discarding, until EOF or the timer */
    else if (c->state == PX_CONN_HANDSHAKE)
        want = true;
    else
        /* Reading goes on while the handler pauses (between pipelined
         * requests, or while a backend is slow to take a body) until
         * something is actually buffered: stopping and restarting for every
         * request would cost two epoll_ctl calls each. */
        want = c->in_len == 0 && !c->eof &&
               (c->want_input || !c->tls || px_tls_io_in_pending(c->tls) < PX_CONN_TLS_IN_MAX);
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) == 0)
            c->reading = true;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

/* Offers buffered plaintext to the handler while it wants input. Not
 * re-entrant: a nested call (the handler resumed its own input from inside
 * on_data) just asks the running one to loop again. */
static void input_pump(struct px_conn *c)
{
    if (c->in_pump) {
        c->pump_again = true;
        return;
    }
    c->in_pump = true;
    do {
        c->pump_again = false;
        while (!c->closing && c->state == PX_CONN_OPEN && c->want_input) {
            if (c->in_len == 0 && c->tls) {
                if (!c->plain && !(c->plain = buf_take(c))) {
                    px_conn_close(c);
                    break;
                }
                ssize_t n = px_tls_io_read(c->tls, c->plain, PX_CONN_BUF);
                if (tls_flush(c) < 0) {
                    px_conn_close(c);
                    break;
                }
                if (n > 0) {
                    c->in = c->plain;
                    c->in_len = (size_t)n;
                } else if (n == -EPIPE) {
                    if (!c->eof)
                        client_eof(c);
                    break;
                } else if (n < 0) {
                    px_conn_close(c);
                    break;
                }
            }
            if (c->in_len == 0)
                break;
            size_t used = c->proto->on_data(c, c->in, c->in_len);
            if (c->closing)
                break;
            if (used > c->in_len)
                used = c->in_len;
            c->in += used;
            c->in_len -= used;
            if (used == 0)
                break;
        }
    } while (c->pump_again && !c->closing);
    c->in_pump = false;
    if (c->in_len == 0) {
        /* Nothing waits in them: the decrypt buffer, and a plain read
         * buffer whose bytes were consumed after a pause, go back. */
        buf_give(c, &c->plain);
        if (!c->tls)
            buf_give(c, &c->rbuf);
    }
    if (c->eof_deferred && c->want_input && c->in_len == 0 && !c->closing &&
        c->state == PX_CONN_OPEN) {
        c->eof_deferred = false;
        client_eof(c);
        return;
    }
    update_reading(c);
}

void px_conn_want_input(struct px_conn *c, bool want)
{
    if (c->closing || c->state != PX_CONN_OPEN)
        return;
    c->want_input = want;
    if (want)
        input_pump(c);
    else if (!c->in_pump) /* the running pump updates reading when it returns */
        update_reading(c);
}

/* The client's address as accept4 returned it (no getpeername per
 * connection). */
static void peer_address(struct px_conn *c, const struct sockaddr *sa, socklen_t salen)
{
    strcpy(c->client_ip, "unknown");
    strcpy(c->client_port, "0");
    unsigned port = 0;
    if (sa->sa_family == AF_INET && salen >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &a->sin_addr, c->client_ip, sizeof c->client_ip);
        port = ntohs(a->sin_port);
    } else if (sa->sa_family == AF_INET6 && salen >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr))
            inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], c->client_ip, sizeof c->client_ip);
        else
            inet_ntop(AF_INET6, &a->sin6_addr, c->client_ip, sizeof c->client_ip);
        port = ntohs(a->sin6_port);
    } else {
        return;
    }
    snprintf(c->client_port, sizeof c->client_port, "%u", port);
}

void px_conn_accept(struct px_worker *w, const char *key, size_t listener, int fd,
                    const struct sockaddr *peer, socklen_t peer_len)
{
    struct px_conn *c = calloc(1, sizeof *c);
    if (!c) {
        px_log_error("conn: out of memory accepting a connection");
        close(fd);
        return;
    }
    c->w = w;
    if (uv_tcp_init(&w->loop, &c->tcp) != 0) {
        close(fd);
        free(c);
        return;
    }
    c->tcp.data = c;
    c->open_handles = 1;
    uv_timer_init(&w->loop, &c->timer);
    c->timer.data = c;
    c->open_handles = 2;
    px_outq_init(&c->out, (uv_stream_t *)&c->tcp, on_written);
    px_outq_set_pool(&c->out, &w->out_chunks);
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    stat_add(&w->stats.connections_accepted, 1);
    stat_add(&w->stats.connections_active, 1);
    c->state = PX_CONN_HANDSHAKE;

    int rc = uv_tcp_open(&c->tcp, fd);
    if (rc != 0) {
        px_log_warn("conn: serving a connection on %s: %s", key, uv_strerror(rc));
        close(fd);
        px_conn_close(c);
        return;
    }
    struct px_snapshot *s = w->snap;
    if (!s || listener >= s->n_listeners || w->draining) {
        px_conn_close(c);
        return;
    }
    c->snap = px_snapshot_ref(s);
    c->lis = &s->listeners[listener];
    px_obs_conn(w->id, c->lis->obs_slot, 1);
    snprintf(c->bind_key, sizeof c->bind_key, "%s", key);
    peer_address(c, peer, peer_len); /* TCP_NODELAY: inherited from the listener */

    if (c->lis->ssl_ctx) {
        c->tls = px_tls_io_new(c->lis->ssl_ctx, px_outq_append_to, &c->out);
        if (!c->tls) {
            px_log_error("conn: out of memory for a TLS session");
            px_conn_close(c);
            return;
        }
        /* The handshake is bounded by the idle timeout. */
        px_conn_timer(c, (uint64_t)c->lis->model->idle_timeout_s * 1000);
        update_reading(c);
        return;
    }
    if (start_protocol(c) < 0) {
        px_conn_close(c);
        return;
    }
    update_reading(c);
}
