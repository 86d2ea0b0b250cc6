/* A worker thread: its loop, its listening handles, snapshot pick-up and
 * draining. Connections themselves live in proxy/conn.c. */
#include "proxy/worker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/conn.h"
#include "common/log.h"
#include "proxy/runtime-t.h"
#include "proxy/snapshot.h"

enum { LISTEN_BACKLOG = 511, DRAIN_TICK_MS = 20 };

static void on_listen_closed(uv_handle_t *h)
{
    free(h->data);
}

static void listen_close(struct px_worker *w, struct px_wlisten *wl)
{
    struct px_wlisten **pp = &w->listens;
    while (*pp && *pp != wl)
        pp = &(*pp)->next;
    if (*pp)
        *pp = wl->next;
    wl->closing = true;
    uv_close((uv_handle_t *)&wl->tcp, on_listen_closed);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct px_wlisten *wl = server->data;
    if (status < 0) {
        px_log_warn("worker %d: accept on %s: %s", wl->w->id, wl->key, uv_strerror(status));
        return;
    }
    if (wl->closing || wl->w->draining)
        return;
    px_conn_accept(wl->w, wl);
}

/* Opens a handle on fd (a bound, listening socket) for bind b. */
static void listen_open(struct px_worker *w, const struct px_bind *b, int fd)
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
    wl->tcp.data = wl;
    int rc = uv_tcp_init(&w->loop, &wl->tcp);
    if (rc == 0)
        rc = uv_tcp_open(&wl->tcp, fd);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&wl->tcp, LISTEN_BACKLOG, on_connection);
    if (rc != 0) {
        px_log_error("worker %d: cannot serve %s: %s", w->id, b->key, uv_strerror(rc));
        if (uv_is_active((uv_handle_t *)&wl->tcp) || wl->tcp.loop) {
            uv_close((uv_handle_t *)&wl->tcp, on_listen_closed);
        } else {
            close(fd);
            free(wl);
        }
        return;
    }
    wl->next = w->listens;
    w->listens = wl;
}

static struct px_wlisten *find_listen(struct px_worker *w, const char *key)
{
    for (struct px_wlisten *wl = w->listens; wl; wl = wl->next)
        if (strcmp(wl->key, key) == 0)
            return wl;
    return NULL;
}

/* Takes this worker's fd of (key, sock_id) from the runtime's table, or -1.
 * Called with rt->lock held. */
static int take_fd(struct px_runtime *rt, int worker, const char *key, uint64_t sock_id)
{
    for (struct rt_socks *s = rt->socks; s; s = s->next) {
        if (s->sock_id == sock_id && strcmp(s->key, key) == 0) {
            int fd = s->fds[worker];
            s->fds[worker] = -1;
            return fd;
        }
    }
    return -1;
}

/* Moves the worker to the newest published snapshot: opens handles for new
 * binds, closes those of removed ones, and lets connections know. */
static void pick_up_snapshot(struct px_worker *w)
{
    struct px_runtime *rt = w->rt;
    uv_mutex_lock(&rt->lock);
    struct px_snapshot *s = px_snapshot_ref(rt->published);
    if (!s || s == w->snap) {
        uv_mutex_unlock(&rt->lock);
        px_snapshot_unref(s);
        return;
    }
    for (size_t i = 0; i < s->n_binds; i++) {
        const struct px_bind *b = &s->binds[i];
        struct px_wlisten *wl = find_listen(w, b->key);
        if (wl && wl->sock_id == b->sock_id) {
            wl->listener = b->listener;
            continue;
        }
        if (wl)
            listen_close(w, wl);
        int fd = take_fd(rt, w->id, b->key, b->sock_id);
        if (fd >= 0)
            listen_open(w, b, fd);
    }
    uv_mutex_unlock(&rt->lock);

    struct px_wlisten *next;
    for (struct px_wlisten *wl = w->listens; wl; wl = next) {
        next = wl->next;
        if (!px_snapshot_find_bind(s, wl->key))
            listen_close(w, wl);
    }
    struct px_snapshot *old = w->snap;
    w->snap = s;
    px_snapshot_unref(old);
    struct px_conn *cn;
    for (struct px_conn *c = w->conns; c; c = cn) {
        cn = px_conn_next(c);
        px_conn_on_snapshot(c);
    }
}

static void on_drain_tick(uv_timer_t *t)
{
    struct px_worker *w = t->data;
    if (w->conns && uv_now(&w->loop) >= w->drain_deadline) {
        struct px_conn *cn;
        for (struct px_conn *c = w->conns; c; c = cn) {
            cn = px_conn_next(c);
            px_conn_close(c);
        }
    }
    if (w->conns)
        return;
    /* Nothing left to serve: release what keeps the loop alive. */
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, NULL);
    uv_close((uv_handle_t *)&w->flush_prepare, NULL);
    uv_close((uv_handle_t *)&w->flush_check, NULL);
    px_upstream_pools_close_all(w->pools);
    uv_close((uv_handle_t *)&w->wake, NULL);
}

static void begin_drain(struct px_worker *w)
{
    w->draining = true;
    while (w->listens)
        listen_close(w, w->listens);
    struct px_conn *cn;
    for (struct px_conn *c = w->conns; c; c = cn) {
        cn = px_conn_next(c);
        px_conn_drain(c);
    }
    w->drain_deadline = uv_now(&w->loop) + w->rt->drain_ms;
    uv_timer_init(&w->loop, &w->drain_timer);
    w->drain_timer.data = w;
    uv_timer_start(&w->drain_timer, on_drain_tick, 0, DRAIN_TICK_MS);
}

static void on_wake(uv_async_t *a)
{
    struct px_worker *w = a->data;
    if (w->draining)
        return;
    if (atomic_load(&w->rt->stopping)) {
        begin_drain(w);
        return;
    }
    pick_up_snapshot(w);
}

static void on_flush_prepare(uv_prepare_t *p)
{
    px_conn_flush_all(p->data);
}

static void on_flush_check(uv_check_t *c)
{
    px_conn_flush_all(c->data);
}

static void worker_main(void *arg)
{
    struct px_worker *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
    atomic_store(&w->done, true);
}

int px_worker_start(struct px_worker *w, struct px_runtime *rt, int id)
{
    w->id = id;
    w->rt = rt;
    int rc = uv_loop_init(&w->loop);
    if (rc != 0)
        return rc;
    w->wake.data = w;
    rc = uv_async_init(&w->loop, &w->wake, on_wake);
    if (rc == 0) {
        /* Staged output is sent after each iteration's I/O callbacks (check)
         * and before the loop blocks after timers (prepare). Unreferenced:
         * they must not keep a drained loop alive. */
        uv_prepare_init(&w->loop, &w->flush_prepare);
        uv_check_init(&w->loop, &w->flush_check);
        w->flush_prepare.data = w->flush_check.data = w;
        uv_prepare_start(&w->flush_prepare, on_flush_prepare);
        uv_check_start(&w->flush_check, on_flush_check);
        uv_unref((uv_handle_t *)&w->flush_prepare);
        uv_unref((uv_handle_t *)&w->flush_check);
        w->pools = px_upstream_pools_new(w);
        if (!w->pools)
            rc = -ENOMEM;
    }
    if (rc == 0)
        rc = uv_thread_create(&w->thread, worker_main, w);
    if (rc != 0) {
        uv_close((uv_handle_t *)&w->wake, NULL);
        if (uv_is_active((uv_handle_t *)&w->flush_prepare)) {
            uv_close((uv_handle_t *)&w->flush_prepare, NULL);
            uv_close((uv_handle_t *)&w->flush_check, NULL);
        }
        uv_run(&w->loop, UV_RUN_DEFAULT);
        uv_loop_close(&w->loop);
        px_upstream_pools_free(w->pools);
        w->pools = NULL;
        return rc;
    }
    w->started = true;
    return 0;
}

void px_worker_wake(struct px_worker *w)
{
    uv_async_send(&w->wake);
}

void px_worker_join(struct px_worker *w)
{
    if (!w->started)
        return;
    uv_thread_join(&w->thread);
    int rc = uv_loop_close(&w->loop);
    if (rc != 0)
        px_log_warn("worker %d: loop closed with handles still open: %s", w->id, uv_strerror(rc));
    px_upstream_pools_free(w->pools);
    px_snapshot_unref(w->snap);
    w->snap = NULL;
    w->started = false;
}
