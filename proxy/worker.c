/* A worker thread: its loop, its listening handles, snapshot pick-up and
 * draining. Connections themselves live in proxy/conn.c. */
#include "proxy/worker.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/conn.h"
#include "proxy/h2.h"
#include "common/log.h"
#include "proxy/listen.h"
#include "proxy/runtime-t.h"
#include "proxy/snapshot.h"
#include "proxy/mirror.h"
#include "proxy/upstream.h"

enum { DRAIN_TICK_MS = 20 };
/* How long HTTP/2 output produced by backend reads may wait for the end of
 * the loop iteration (px_h2_flush_later) when the iteration runs long. */
enum { PX_WORKER_BATCH_US = 250 };
/* How long a worker sharing its CPU runs without blocking before it yields
 * (take_turn); the scheduler's own tick would be 4 ms at HZ=250. */
enum { PX_WORKER_TURN_US = 1000 };

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
void px_worker_pick_up(struct px_worker *w)
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
        struct px_wlisten *wl = px_listen_find(w, b->key);
        if (wl && wl->sock_id == b->sock_id) {
            wl->listener = b->listener;
            continue;
        }
        if (wl)
            px_listen_close(w, wl);
        int fd = take_fd(rt, w->id, b->key, b->sock_id);
        if (fd >= 0)
            px_listen_start(w, b, fd);
    }
    uv_mutex_unlock(&rt->lock);

    struct px_wlisten *next;
    for (struct px_wlisten *wl = w->listens; wl; wl = next) {
        next = wl->next;
        if (!px_snapshot_find_bind(s, wl->key))
            px_listen_close(w, wl);
    }
    struct px_snapshot *old = w->snap;
    w->snap = s;
    px_snapshot_unref(old);
    struct px_conn *cn;
    for (struct px_conn *c = w->conns; c; c = cn) {
        cn = px_conn_next(c);
        px_conn_on_snapshot(c);
    }
    px_upstream_drain(w);
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
    px_conn_worker_close(w);
    px_mirror_abort_all(w);
    px_upstream_close_idle(w);
    uv_close((uv_handle_t *)&w->wake, NULL);
    uv_close((uv_handle_t *)&w->handoff_wake, NULL);
}

static void begin_drain(struct px_worker *w)
{
    w->draining = true;
    px_listen_handoff_stop(w);
    while (w->listens)
        px_listen_close(w, w->listens);
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
    px_worker_pick_up(w);
}

static void on_flush_prepare(uv_prepare_t *p)
{
    px_h2_flush_pending(p->data);
    px_conn_flush_all(p->data);
}

/* At the end of an iteration's work: a worker sharing its CPU with another
 * that has run for PX_WORKER_TURN_US without blocking lets the other run
 * now rather than at the scheduler's next tick. Not after every iteration:
 * handing the CPU over that often raised the CPU per TLS handshake and the
 * median latency of handshake-bound loads (pinned h1_resume p50 4.4-4.8
 * ms became 5.9-8.5). */
static void take_turn(struct px_worker *w)
{
    uint64_t idle = uv_metrics_idle_time(&w->loop), now = uv_hrtime();
    if (w->turn_since == 0 || idle != w->turn_idle) {
        w->turn_idle = idle; /* it blocked since: a new run starts */
        w->turn_since = now;
    } else if (now - w->turn_since >= (uint64_t)PX_WORKER_TURN_US * 1000) {
        sched_yield();
        w->turn_since = uv_hrtime();
    }
}

static void on_flush_check(uv_check_t *c)
{
    struct px_worker *w = c->data;
    px_conn_run_handshakes(w);
    px_h2_flush_pending(w);
    px_conn_flush_all(w);
    if (w->take_turns)
        take_turn(w);
}

/* After backend bytes went to their owner: an HTTP/1.x response leaves at
 * once (its connection has nothing else to send); HTTP/2 sessions wait for
 * the end of the iteration unless the oldest has waited PX_WORKER_BATCH_US
 * (a long iteration: many events, or TLS handshakes). */
static void after_upstream_read(struct px_worker *w)
{
    if (w->h2_later && uv_hrtime() - w->h2_later_since >= (uint64_t)PX_WORKER_BATCH_US * 1000)
        px_h2_flush_pending(w);
    px_conn_flush_all(w);
}

static void worker_main(void *arg)
{
    struct px_worker *w = arg;
    char name[16]; /* shown by top -H and ps -L */
    snprintf(name, sizeof name, "albd-w%d", w->id);
    pthread_setname_np(pthread_self(), name);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    atomic_store(&w->done, true);
}

int px_worker_start(struct px_worker *w, struct px_runtime *rt, int id)
{
    w->id = id;
    w->rt = rt;
    px_conn_worker_init(w);
    int rc = uv_loop_init(&w->loop);
    if (rc != 0)
        return rc;
    /* take_turn tells a run from a block by the loop's idle time. */
    if (w->take_turns && uv_loop_configure(&w->loop, UV_METRICS_IDLE_TIME) != 0)
        w->take_turns = false;
    w->wake.data = w;
    rc = uv_async_init(&w->loop, &w->wake, on_wake);
    bool handoff = false;
    if (rc == 0) {
        rc = px_listen_handoff_init(w);
        handoff = rc == 0;
    }
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
        w->registry = rt->registry;
        w->after_upstream_read = after_upstream_read;
    }
    if (rc == 0)
        rc = uv_thread_create(&w->thread, worker_main, w);
    if (rc != 0) {
        uv_close((uv_handle_t *)&w->wake, NULL);
        if (handoff) {
            uv_close((uv_handle_t *)&w->handoff_wake, NULL);
            uv_mutex_destroy(&w->handoff_lock);
        }
        if (uv_is_active((uv_handle_t *)&w->flush_prepare)) {
            uv_close((uv_handle_t *)&w->flush_prepare, NULL);
            uv_close((uv_handle_t *)&w->flush_check, NULL);
        }
        uv_run(&w->loop, UV_RUN_DEFAULT);
        uv_loop_close(&w->loop);
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
    px_snapshot_unref(w->snap);
    w->snap = NULL;
    free(w->up_rbuf);
    w->up_rbuf = NULL;
    px_conn_worker_cleanup(w);
    w->started = false;
}
