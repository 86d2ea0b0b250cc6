/* Listening sockets and the worker's accepting handles. */
#include "proxy/listen.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/conn.h"
#include "proxy/runtime-t.h"
#include "proxy/snapshot.h"
#include "proxy/worker.h"
#include "common/log.h"

int px_listen_socket(int type, const struct sockaddr *addr, socklen_t addrlen)
{
    if (type != SOCK_STREAM && type != SOCK_DGRAM)
        return -EINVAL;
    int fd = socket(addr->sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
        (addr->sa_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) ||
        /* Accepted connections inherit it (Linux): no setsockopt each. */
        (type == SOCK_STREAM && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) ||
        bind(fd, addr, addrlen) != 0 ||
        (type == SOCK_STREAM && listen(fd, PX_LISTEN_BACKLOG) != 0)) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int px_listen_sockets(int type, const struct sockaddr *addr, socklen_t addrlen, int *fds, int n)
{
    for (int i = 0; i < n; i++)
        fds[i] = -1;
    for (int i = 0; i < n; i++) {
        int fd = px_listen_socket(type, addr, addrlen);
        if (fd < 0) {
            for (int j = 0; j < i; j++) {
                close(fds[j]);
                fds[j] = -1;
            }
            return fd;
        }
        fds[i] = fd;
    }
    return 0;
}

/* Connections accepted per readable event at most, so that one busy
 * listener does not starve the worker's other handles (the poll is level
 * triggered: what is left is offered again at once). */
enum { ACCEPT_BATCH = 64, PAUSE_MS = 100 };

static void on_listen_closed(uv_handle_t *h)
{
    struct px_wlisten *wl = h->data;
    if (--wl->open_handles > 0)
        return;
    if (wl->fd >= 0)
        close(wl->fd);
    free(wl);
}

void px_listen_close(struct px_worker *w, struct px_wlisten *wl)
{
    struct px_wlisten **pp = &w->listens;
    while (*pp && *pp != wl)
        pp = &(*pp)->next;
    if (*pp)
        *pp = wl->next;
    wl->closing = true;
    uv_close((uv_handle_t *)&wl->poll, on_listen_closed);
    uv_close((uv_handle_t *)&wl->pause, on_listen_closed);
}

static void on_readable(uv_poll_t *p, int status, int events);

/* --- balancing ------------------------------------------------------------
 *
 * The kernel spreads connections over the workers' SO_REUSEPORT sockets by
 * a hash of their addresses, not by load: 64 connections arriving at once
 * split 38/26 often enough, and the busier worker's clients wait longer
 * for as long as they stay connected (HTTP/2, WebSocket, keep-alive). A
 * worker that accepts a connection while it serves clearly more than the
 * least loaded one (open connections, and those handed to it not yet
 * opened) hands the socket over: a slot in that worker's inbox and one
 * wake-up of its loop, paid only while the counts are apart. */

/* How many more connections than the least loaded worker a worker keeps
 * before it hands new ones over: a margin, so that counts moving by a few
 * do not make every accept a hand-over. */
static uint64_t balance_slack(uint64_t mine)
{
    return 2 + mine / 16;
}

static uint64_t load_of(struct px_worker *w)
{
    return atomic_load_explicit(&w->stats.connections_active, memory_order_relaxed) +
           atomic_load_explicit(&w->handoff_pending, memory_order_relaxed);
}

/* The worker that should take a connection w accepted: w, or one serving
 * clearly fewer. */
static struct px_worker *less_loaded(struct px_worker *w)
{
    struct px_runtime *rt = w->rt;
    if (rt->n_workers < 2)
        return w;
    uint64_t mine = load_of(w), least = mine;
    struct px_worker *best = w;
    for (int i = 0; i < rt->n_workers; i++) {
        struct px_worker *t = &rt->workers[i];
        uint64_t l = t == w ? mine : load_of(t);
        if (l < least) {
            least = l;
            best = t;
        }
    }
    return mine >= least + balance_slack(mine) ? best : w;
}

/* Puts fd in t's inbox and wakes t. Returns 0, or -1 when t takes no more
 * (stopping, or its inbox is full): the caller keeps the connection. The
 * wake-up is sent under the lock, so t cannot have closed its handle. */
static int hand_over(struct px_worker *t, const char *key, int fd,
                     const struct sockaddr_storage *peer, socklen_t peer_len)
{
    uv_mutex_lock(&t->handoff_lock);
    bool ok = t->handoff_open && t->n_handoff < PX_HANDOFF_MAX;
    if (ok) {
        struct px_handoff *h = &t->handoff[t->n_handoff++];
        h->fd = fd;
        h->peer = *peer;
        h->peer_len = peer_len;
        snprintf(h->key, sizeof h->key, "%s", key);
        atomic_fetch_add_explicit(&t->handoff_pending, 1, memory_order_relaxed);
        uv_async_send(&t->handoff_wake);
    }
    uv_mutex_unlock(&t->handoff_lock);
    return ok ? 0 : -1;
}

/* Opens the connections handed to this worker, for the listener of the
 * same bind in this worker's snapshot. */
static void on_handoff(uv_async_t *a)
{
    struct px_worker *w = a->data;
    struct px_handoff got[PX_HANDOFF_MAX];
    uv_mutex_lock(&w->handoff_lock);
    unsigned n = w->n_handoff;
    memcpy(got, w->handoff, n * sizeof *got);
    w->n_handoff = 0;
    uv_mutex_unlock(&w->handoff_lock);
    for (unsigned i = 0; i < n; i++) {
        /* The sender may have seen a snapshot this worker has not picked
         * up yet (a listener just added). */
        const struct px_bind *b = w->snap ? px_snapshot_find_bind(w->snap, got[i].key) : NULL;
        if (!b && !w->draining) {
            px_worker_pick_up(w);
            b = w->snap ? px_snapshot_find_bind(w->snap, got[i].key) : NULL;
        }
        if (b)
            px_conn_accept(w, got[i].key, b->listener, got[i].fd,
                           (const struct sockaddr *)&got[i].peer, got[i].peer_len);
        else
            close(got[i].fd); /* the listener is gone from the running configuration */
        atomic_fetch_sub_explicit(&w->handoff_pending, 1, memory_order_relaxed);
    }
}

int px_listen_handoff_init(struct px_worker *w)
{
    int rc = uv_mutex_init(&w->handoff_lock);
    if (rc != 0)
        return rc;
    w->handoff_wake.data = w;
    rc = uv_async_init(&w->loop, &w->handoff_wake, on_handoff);
    if (rc != 0) {
        uv_mutex_destroy(&w->handoff_lock);
        return rc;
    }
    w->handoff_open = true;
    return 0;
}

void px_listen_handoff_stop(struct px_worker *w)
{
    uv_mutex_lock(&w->handoff_lock);
    w->handoff_open = false;
    for (unsigned i = 0; i < w->n_handoff; i++) {
        close(w->handoff[i].fd);
        atomic_fetch_sub_explicit(&w->handoff_pending, 1, memory_order_relaxed);
    }
    w->n_handoff = 0;
    uv_mutex_unlock(&w->handoff_lock);
}

static void on_resume(uv_timer_t *t)
{
    struct px_wlisten *wl = t->data;
    if (!wl->closing && !wl->w->draining)
        uv_poll_start(&wl->poll, UV_READABLE, on_readable);
}

static void on_readable(uv_poll_t *p, int status, int events)
{
    struct px_wlisten *wl = p->data;
    (void)events;
    if (status < 0) {
        px_log_warn("worker %d: listening on %s: %s", wl->w->id, wl->key, uv_strerror(status));
        return;
    }
    if (wl->closing || wl->w->draining) {
        uv_poll_stop(&wl->poll); /* level triggered: leave the backlog alone */
        return;
    }
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage peer;
        socklen_t peer_len = sizeof peer;
        int fd = accept4(wl->fd, (struct sockaddr *)&peer, &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            if (e == EINTR || e == ECONNABORTED || e == EPROTO)
                continue;
            if (e == EAGAIN || e == EWOULDBLOCK)
                return;
            if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
                if (!wl->paused_warned)
                    px_log_warn("worker %d: accept on %s: %s; accepting again every %d ms",
                                wl->w->id, wl->key, strerror(e), PAUSE_MS);
                wl->paused_warned = true;
                uv_poll_stop(&wl->poll);
                uv_timer_start(&wl->pause, on_resume, PAUSE_MS, 0);
                return;
            }
            px_log_warn("worker %d: accept on %s: %s", wl->w->id, wl->key, strerror(e));
            return;
        }
        wl->paused_warned = false;
        struct px_worker *t = less_loaded(wl->w);
        if (t != wl->w && hand_over(t, wl->key, fd, &peer, peer_len) == 0) {
            atomic_fetch_add_explicit(&wl->w->stats.connections_handed_over, 1,
                                      memory_order_relaxed);
            continue;
        }
        px_conn_accept(wl->w, wl->key, wl->listener, fd, (const struct sockaddr *)&peer, peer_len);
    }
}

void px_listen_start(struct px_worker *w, const struct px_bind *b, int fd)
{
    struct px_wlisten *wl = calloc(1, sizeof *wl);
    if (!wl) {
        px_log_error("worker %d: out of memory opening %s", w->id, b->key);
        close(fd);
        return;
    }
    wl->w = w;
    snprintf(wl->key, sizeof wl->key, "%s", b->key);
    wl->listener = b->listener;
    wl->sock_id = b->sock_id;
    wl->fd = fd;
    wl->poll.data = wl;
    wl->pause.data = wl;
    int rc = uv_poll_init_socket(&w->loop, &wl->poll, fd);
    if (rc != 0) {
        px_log_error("worker %d: cannot serve %s: %s", w->id, b->key, uv_strerror(rc));
        close(fd);
        free(wl);
        return;
    }
    uv_timer_init(&w->loop, &wl->pause);
    wl->open_handles = 2;
    rc = uv_poll_start(&wl->poll, UV_READABLE, on_readable);
    if (rc != 0) {
        px_log_error("worker %d: cannot serve %s: %s", w->id, b->key, uv_strerror(rc));
        wl->closing = true;
        uv_close((uv_handle_t *)&wl->poll, on_listen_closed);
        uv_close((uv_handle_t *)&wl->pause, on_listen_closed);
        return;
    }
    wl->next = w->listens;
    w->listens = wl;
}

struct px_wlisten *px_listen_find(struct px_worker *w, const char *key)
{
    for (struct px_wlisten *wl = w->listens; wl; wl = wl->next)
        if (strcmp(wl->key, key) == 0)
            return wl;
    return NULL;
}
