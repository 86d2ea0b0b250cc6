/* Backend connections and the per-worker idle pools (keyed by the server's
 * "address:port" identity, so they outlive snapshots). */
#include "proxy/upstream.h"
#include "proxy/conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

#define POOL_BUCKETS 64

struct px_pool {
    char key[64];
    struct px_upstream *idle; /* most recently released first */
    unsigned n_idle;
    struct px_pool *next; /* hash chain */
};

struct px_upstream_pools {
    struct px_worker *w;
    bool closed; /* worker stopping: released connections are closed, not kept */
    struct px_pool *buckets[POOL_BUCKETS];
};

#define UP_OF(field_ptr, field)                                                                    \
    ((struct px_upstream *)((char *)(field_ptr)-offsetof(struct px_upstream, field)))

static void upstream_close(struct px_upstream *u);

struct px_upstream_pools *px_upstream_pools_new(struct px_worker *w)
{
    struct px_upstream_pools *p = calloc(1, sizeof *p);
    if (p)
        p->w = w;
    return p;
}

static unsigned key_hash(const char *k)
{
    unsigned h = 2166136261u;
    for (; *k; k++)
        h = (h ^ (unsigned char)*k) * 16777619u;
    return h % POOL_BUCKETS;
}

static struct px_pool *pool_get(struct px_upstream_pools *p, const char *key)
{
    unsigned b = key_hash(key);
    for (struct px_pool *e = p->buckets[b]; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    struct px_pool *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    snprintf(e->key, sizeof e->key, "%s", key);
    e->next = p->buckets[b];
    p->buckets[b] = e;
    return e;
}

static void idle_unlink(struct px_upstream *u)
{
    struct px_pool *e = u->pool;
    if (u->idle_prev)
        u->idle_prev->idle_next = u->idle_next;
    else
        e->idle = u->idle_next;
    if (u->idle_next)
        u->idle_next->idle_prev = u->idle_prev;
    u->idle_prev = u->idle_next = NULL;
    e->n_idle--;
}

void px_upstream_pools_close_all(struct px_upstream_pools *p)
{
    if (!p)
        return;
    p->closed = true;
    for (int b = 0; b < POOL_BUCKETS; b++)
        for (struct px_pool *e = p->buckets[b]; e; e = e->next)
            while (e->idle)
                upstream_close(e->idle);
}

void px_upstream_pools_free(struct px_upstream_pools *p)
{
    if (!p)
        return;
    for (int b = 0; b < POOL_BUCKETS; b++) {
        while (p->buckets[b]) {
            struct px_pool *e = p->buckets[b];
            p->buckets[b] = e->next;
            free(e);
        }
    }
    free(p);
}

static void close_cb(uv_handle_t *h)
{
    struct px_upstream *u = h->data;
    if (--u->open_handles == 0) {
        px_outq_cleanup(&u->out);
        free(u);
    }
}

static void upstream_close(struct px_upstream *u)
{
    if (u->state == PX_UP_CLOSING)
        return;
    if (u->state == PX_UP_IDLE)
        idle_unlink(u);
    u->state = PX_UP_CLOSING;
    u->cbs = NULL;
    u->owner = NULL;
    uv_close((uv_handle_t *)&u->tcp, close_cb);
    uv_close((uv_handle_t *)&u->timer, close_cb);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct px_upstream *u = h->data;
    (void)suggested;
    buf->base = u->rbuf;
    buf->len = sizeof u->rbuf;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct px_upstream *u = s->data;
    if (nread == 0 || u->state == PX_UP_CLOSING)
        return;
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
    /* What this response produced leaves now, not after every other
     * callback of the iteration (TLS handshakes can take milliseconds). */
    px_conn_flush_all(w);
}

void px_upstream_read(struct px_upstream *u, bool on)
{
    if (u->state == PX_UP_CLOSING || u->state == PX_UP_CONNECTING)
        return;
    if (on && !u->reading) {
        if (uv_read_start((uv_stream_t *)&u->tcp, alloc_cb, read_cb) == 0)
            u->reading = true;
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
    if (u->state == PX_UP_CONNECTING) {
        const struct px_upstream_cbs *cbs = u->cbs;
        void *owner = u->owner;
        upstream_close(u);
        if (cbs)
            cbs->on_connect(owner, u, UV_ETIMEDOUT);
    } else if (u->state == PX_UP_IDLE) {
        upstream_close(u);
    }
}

static void connect_cb(uv_connect_t *req, int status)
{
    struct px_upstream *u = req->data;
    if (u->state != PX_UP_CONNECTING)
        return; /* timed out or closed meanwhile */
    uv_timer_stop(&u->timer);
    const struct px_upstream_cbs *cbs = u->cbs;
    void *owner = u->owner;
    if (status < 0) {
        upstream_close(u);
        if (cbs)
            cbs->on_connect(owner, u, status);
        return;
    }
    u->state = PX_UP_ACTIVE;
    uv_tcp_nodelay(&u->tcp, 1);
    px_upstream_read(u, true);
    if (cbs)
        cbs->on_connect(owner, u, 0);
}

int px_upstream_acquire(struct px_worker *w, const struct px_server *s, bool allow_pooled,
                        const struct px_upstream_cbs *cbs, void *owner, struct px_upstream **out,
                        bool *reused)
{
    struct px_pool *e = w->pools ? pool_get(w->pools, s->key) : NULL;
    *reused = false;
    if (allow_pooled && e && e->idle) {
        struct px_upstream *u = e->idle;
        idle_unlink(u);
        uv_timer_stop(&u->timer);
        u->state = PX_UP_ACTIVE;
        u->cbs = cbs;
        u->owner = owner;
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
    u->pool = e;
    u->cbs = cbs;
    u->owner = owner;
    u->state = PX_UP_CONNECTING;
    px_outq_init(&u->out, (uv_stream_t *)&u->tcp, on_written);
    u->connect_req.data = u;
    rc = uv_tcp_connect(&u->connect_req, &u->tcp, (const struct sockaddr *)&s->addr, connect_cb);
    if (rc < 0) {
        upstream_close(u);
        return rc;
    }
    uv_timer_start(&u->timer, timer_cb, PX_UPSTREAM_CONNECT_MS, 0);
    atomic_fetch_add_explicit(&w->stats.upstream_connects, 1, memory_order_relaxed);
    *out = u;
    return 0;
}

int px_upstream_write(struct px_upstream *u, const uv_buf_t *bufs, unsigned n)
{
    if (u->state != PX_UP_ACTIVE || u->shut)
        return UV_EPIPE;
    int rc = px_outq_writev(&u->out, bufs, n);
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
    u->shutdown_req.data = u;
    return uv_shutdown(&u->shutdown_req, (uv_stream_t *)&u->tcp, shutdown_cb);
}

void px_upstream_release(struct px_upstream *u, bool keep)
{
    if (!u || u->state == PX_UP_CLOSING)
        return;
    u->cbs = NULL;
    u->owner = NULL;
    struct px_pool *e = u->pool;
    if (!keep || u->shut || u->state != PX_UP_ACTIVE || !e || !u->w->pools || u->w->pools->closed ||
        e->n_idle >= PX_UPSTREAM_IDLE_MAX || u->out.queued || u->out.inflight) {
        upstream_close(u);
        return;
    }
    u->state = PX_UP_IDLE;
    u->idle_prev = NULL;
    u->idle_next = e->idle;
    if (e->idle)
        e->idle->idle_prev = u;
    e->idle = u;
    e->n_idle++;
    u->out_high = false;
    uv_timer_start(&u->timer, timer_cb, PX_UPSTREAM_IDLE_MS, 0);
    px_upstream_read(u, true); /* notice the backend closing it */
}
