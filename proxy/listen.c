/* Listening sockets and the worker's accepting handles. */
#include "proxy/listen.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/conn.h"
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
        px_conn_accept(wl->w, wl, fd, (const struct sockaddr *)&peer, peer_len);
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
