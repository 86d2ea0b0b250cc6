/* The proxy runtime: worker threads, the published snapshot and the
 * listening sockets that outlive snapshots. Agent thread only, except where
 * noted in runtime-t.h. */
#include "proxy/px.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "proxy/backend.h"
#include "proxy/dns.h"
#include "proxy/health.h"
#include "proxy/drain.h"
#include "proxy/listen.h"
#include "proxy/obs.h"
#include "proxy/runtime-t.h"
#include "proxy/sharecheck.h"
#include "proxy/snapshot.h"
#include "proxy/tls_ctx.h"
#include "proxy/worker.h"
#include "reconciler/model.h"

/* The CPUs this process may run on: its affinity mask (taskset, a
 * container's cpuset), else the CPUs online. At least 1. */
static int cpus_allowed(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

struct px_runtime *px_runtime_start(int n_workers)
{
    int cpus = cpus_allowed();
    if (n_workers <= 0)
        n_workers = cpus;
    struct px_runtime *rt = calloc(1, sizeof *rt);
    if (!rt)
        return NULL;
    rt->n_workers = n_workers;
    rt->cpus = cpus;
    rt->next_sock_id = 1;
    rt->workers = calloc((size_t)n_workers, sizeof *rt->workers);
    rt->tls_keys = px_tls_keys_new();
    rt->registry = px_registry_new(n_workers);
    rt->prober = px_prober_start();
    if (!rt->workers || !rt->tls_keys || !rt->registry || !rt->prober ||
        uv_mutex_init(&rt->lock) != 0) {
        px_prober_stop(rt->prober);
        px_tls_keys_unref(rt->tls_keys);
        px_registry_free(rt->registry);
        free(rt->workers);
        free(rt);
        errno = ENOMEM;
        return NULL;
    }
    if (px_obs_init(n_workers) != 0)
        px_log_warn("no memory for per-listener metrics: they stay at 0");
    for (int i = 0; i < n_workers; i++) {
        rt->workers[i].take_turns = n_workers > cpus;
        int rc = px_worker_start(&rt->workers[i], rt, i);
        if (rc != 0) {
            rt->n_workers = i;
            px_runtime_stop(rt, 0);
            errno = -rc;
            return NULL;
        }
    }
    return rt;
}

static void socks_free(struct rt_socks *s, int n_workers)
{
    for (int i = 0; i < n_workers; i++)
        if (s->fds[i] >= 0)
            close(s->fds[i]);
    free(s->fds);
    free(s);
}

static struct rt_socks *find_socks(struct rt_socks *list, const char *key)
{
    for (; list; list = list->next)
        if (strcmp(list->key, key) == 0)
            return list;
    return NULL;
}

/* Whether every SSL_CTX of spare serves in s: then spare has no more use. */
static bool spare_served(const struct px_snapshot *spare, const struct px_snapshot *s)
{
    for (size_t i = 0; i < spare->n_listeners; i++) {
        const SSL_CTX *c = spare->listeners[i].ssl_ctx;
        bool found = c == NULL;
        for (size_t j = 0; !found && j < s->n_listeners; j++)
            found = s->listeners[j].ssl_ctx == c;
        if (!found)
            return false;
    }
    return true;
}

int px_runtime_apply(struct px_runtime *rt, struct rc_model *m, struct px_apply_error *e)
{
    struct px_snapshot *s = NULL;
    char *err = e->msg;
    size_t errlen = sizeof e->msg;
    const char *failed = NULL;
    e->listener[0] = e->msg[0] = '\0';
    e->port_shared = false;
    px_dns_want(rt->dns, m); /* new host names start resolving */
    if (px_snapshot_build(m, rt->published, rt->spare, rt->registry, rt->generation + 1,
                          rt->tls_keys, &s, err, errlen, &failed) != 0) {
        if (failed)
            snprintf(e->listener, sizeof e->listener, "%s", failed);
        return -1;
    }

    /* Open the sockets of new addresses first: a port that will not bind
     * fails the whole apply before anything changes. */
    struct rt_socks *fresh = NULL;
    for (size_t i = 0; i < s->n_binds; i++) {
        struct px_bind *b = &s->binds[i];
        struct rt_socks *have = find_socks(rt->socks, b->key);
        if (!have)
            have = find_socks(fresh, b->key);
        if (have) {
            b->sock_id = have->sock_id;
            continue;
        }
        struct rt_socks *ns = calloc(1, sizeof *ns);
        int *fds = calloc((size_t)rt->n_workers, sizeof *fds);
        if (!ns || !fds) {
            free(ns);
            free(fds);
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        ns->fds = fds;
        snprintf(ns->key, sizeof ns->key, "%s", b->key);
        ns->sock_id = rt->next_sock_id++;
        b->sock_id = ns->sock_id;
        for (int w = 0; w < rt->n_workers; w++)
            ns->fds[w] = -1;
        ns->next = fresh;
        fresh = ns;
        int lrc = px_listen_sockets(SOCK_STREAM, (const struct sockaddr *)&b->addr, b->addrlen,
                                    ns->fds, rt->n_workers);
        if (lrc < 0) {
            const struct rc_listener *l = s->listeners[b->listener].model;
            snprintf(err, errlen, "Listener/%s: cannot listen on %s: %s", l->meta.name,
                     strchr(b->key, '/') + 1, strerror(-lrc));
            snprintf(e->listener, sizeof e->listener, "%s", l->meta.name);
            goto fail;
        }
        if (!rt->share_ports) {
            int sh = px_sharecheck_others((const struct sockaddr *)&b->addr, ns->fds,
                                          (size_t)rt->n_workers);
            if (sh > 0) {
                const struct rc_listener *l = s->listeners[b->listener].model;
                snprintf(err, errlen,
                         "Listener/%s: cannot listen on %s: another process (another albd?) "
                         "already listens there, and SO_REUSEPORT would split the connections "
                         "between the two; stop it, or pass --share-ports to share on purpose",
                         l->meta.name, strchr(b->key, '/') + 1);
                snprintf(e->listener, sizeof e->listener, "%s", l->meta.name);
                e->port_shared = true;
                goto fail;
            }
            if (sh < 0)
                px_log_debug("cannot tell whether another process listens on %s: %s",
                             strchr(b->key, '/') + 1, strerror(-sh));
        }
    }

    /* Nothing fails from here: mark the servers s no longer sends to
     * before any worker can see s (workers apply the marks on pick-up). */
    px_drain_mark(s, rt->published);
    uv_mutex_lock(&rt->lock);
    struct px_snapshot *old = rt->published;
    rt->published = s;
    rt->generation = s->generation;
    /* Drop the sockets of addresses no longer served: fds a worker never
     * took are closed here; the taken ones are closed by their worker. */
    struct rt_socks **pp = &rt->socks;
    while (*pp) {
        if (!px_snapshot_find_bind(s, (*pp)->key)) {
            struct rt_socks *dead = *pp;
            *pp = dead->next;
            socks_free(dead, rt->n_workers);
        } else {
            pp = &(*pp)->next;
        }
    }
    while (fresh) {
        struct rt_socks *n = fresh->next;
        fresh->next = rt->socks;
        rt->socks = fresh;
        fresh = n;
    }
    uv_mutex_unlock(&rt->lock);
    px_snapshot_unref(old);
    px_dns_prune(rt->dns, m);
    px_prober_update(rt->prober, s);
    if (rt->spare && spare_served(rt->spare, s)) { /* what could not bind serves now */
        px_snapshot_unref(rt->spare);
        rt->spare = NULL;
    }
    for (int i = 0; i < rt->n_workers; i++)
        px_worker_wake(&rt->workers[i]);
    return 0;

fail:
    while (fresh) {
        struct rt_socks *n = fresh->next;
        socks_free(fresh, rt->n_workers);
        fresh = n;
    }
    px_snapshot_unref(rt->spare);
    rt->spare = s;
    return -1;
}

/* A host name's addresses changed: the served model again, with them. */
static void on_dns_changed(void *arg)
{
    struct px_runtime *rt = arg;
    if (!rt->published || atomic_load(&rt->stopping))
        return;
    struct px_apply_error e = {{0}, {0}, false};
    if (px_runtime_apply(rt, rt->published->model, &e) == 0)
        px_log_info("host name addresses changed: published generation %llu",
                    (unsigned long long)rt->generation);
    else
        px_log_error("host name addresses changed, but the apply failed: %s", e.msg);
}

int px_runtime_start_dns(struct px_runtime *rt, struct uv_loop_s *loop)
{
    rt->dns = px_dns_new(loop, on_dns_changed, rt);
    if (!rt->dns)
        return -ENOMEM;
    rt->registry->dns = rt->dns;
    return 0;
}

void px_runtime_close_dns(struct px_runtime *rt)
{
    px_dns_close(rt->dns);
}

void px_runtime_host_state(const struct px_runtime *rt, const char *name, struct px_dns_state *out)
{
    px_dns_state(rt->dns, name, out);
}

int px_runtime_load_ticket_keys(struct px_runtime *rt, const char *const *paths, size_t n,
                                char *err, size_t errlen)
{
    struct px_tls_keys *k = px_tls_keys_new_from_files(paths, n, err, errlen);
    if (!k)
        return -1;
    px_tls_keys_set_tickets(k, px_tls_keys_tickets(rt->tls_keys));
    px_tls_keys_unref(rt->tls_keys);
    rt->tls_keys = k;
    rt->ticket_keys_from_files = true;
    return 0;
}

void px_runtime_set_session_tickets(struct px_runtime *rt, unsigned n)
{
    px_tls_keys_set_tickets(rt->tls_keys, n);
}

int px_runtime_n_workers(const struct px_runtime *rt)
{
    return rt->n_workers;
}

int px_runtime_cpus(const struct px_runtime *rt)
{
    return rt->cpus;
}

bool px_runtime_workers_take_turns(const struct px_runtime *rt)
{
    return rt->n_workers > rt->cpus;
}

void px_runtime_set_drain_ms(struct px_runtime *rt, unsigned drain_ms)
{
    rt->drain_ms = drain_ms;
}

void px_runtime_set_share_ports(struct px_runtime *rt, bool share)
{
    rt->share_ports = share;
}

int px_runtime_set_worker_scheduling(struct px_runtime *rt, enum px_worker_sched how)
{
    int first = 0;
    struct sched_param none = {.sched_priority = 0};
    for (int i = 0; i < rt->n_workers; i++) {
        int rc = pthread_setschedparam(rt->workers[i].thread,
                                       how == PX_SCHED_BATCH ? SCHED_BATCH : SCHED_OTHER, &none);
        if (rc != 0 && first == 0)
            first = -rc;
    }
    return first;
}

void px_runtime_begin_stop(struct px_runtime *rt)
{
    if (atomic_exchange(&rt->stopping, true))
        return;
    for (int i = 0; i < rt->n_workers; i++)
        px_worker_wake(&rt->workers[i]);
}

bool px_runtime_drained(const struct px_runtime *rt)
{
    for (int i = 0; i < rt->n_workers; i++)
        if (rt->workers[i].started && !atomic_load(&rt->workers[i].done))
            return false;
    return true;
}

void px_runtime_rotate_ticket_keys(struct px_runtime *rt)
{
    if (rt->ticket_keys_from_files)
        return;
    int rc = px_tls_keys_rotate(rt->tls_keys);
    if (rc != 0)
        px_log_warn("session ticket key rotation failed (%s); keeping the current key",
                    strerror(-rc));
}

uint64_t px_runtime_generation(const struct px_runtime *rt)
{
    return rt->generation;
}

void px_runtime_stats(const struct px_runtime *rt, struct px_stats *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < rt->n_workers; i++) {
        const struct px_worker_stats *st = &rt->workers[i].stats;
        out->connections_accepted +=
            atomic_load_explicit(&st->connections_accepted, memory_order_relaxed);
        out->connections_active +=
            atomic_load_explicit(&st->connections_active, memory_order_relaxed);
        out->connections_handed_over +=
            atomic_load_explicit(&st->connections_handed_over, memory_order_relaxed);
        out->requests += atomic_load_explicit(&st->requests, memory_order_relaxed);
        for (int c = 0; c < 6; c++)
            out->responses_by_class[c] +=
                atomic_load_explicit(&st->responses_by_class[c], memory_order_relaxed);
        out->upstream_connects +=
            atomic_load_explicit(&st->upstream_connects, memory_order_relaxed);
        out->upstream_reused += atomic_load_explicit(&st->upstream_reused, memory_order_relaxed);
        out->mirror_sent += atomic_load_explicit(&st->mirror_sent, memory_order_relaxed);
        out->mirror_dropped += atomic_load_explicit(&st->mirror_dropped, memory_order_relaxed);
        out->mirror_failed += atomic_load_explicit(&st->mirror_failed, memory_order_relaxed);
        out->connections_parked +=
            atomic_load_explicit(&st->connections_parked, memory_order_relaxed);
        out->connection_buffer_bytes +=
            atomic_load_explicit(&st->connection_buffer_bytes, memory_order_relaxed);
        out->connection_exchanges +=
            atomic_load_explicit(&st->connection_exchanges, memory_order_relaxed);
    }
    out->snapshots_alive = px_snapshot_alive_count();
}

void px_runtime_health_each(struct px_runtime *rt,
                            void (*fn)(const struct px_server_health *sh, void *arg), void *arg)
{
    px_prober_each(rt->prober, fn, arg);
}

void px_runtime_stop(struct px_runtime *rt, unsigned drain_ms)
{
    if (!atomic_load(&rt->stopping))
        rt->drain_ms = drain_ms;
    px_runtime_begin_stop(rt);
    for (int i = 0; i < rt->n_workers; i++)
        px_worker_join(&rt->workers[i]);
    /* Workers lock each other's hand-over inbox: destroyed once all are
     * joined. */
    for (int i = 0; i < rt->n_workers; i++)
        uv_mutex_destroy(&rt->workers[i].handoff_lock);
    while (rt->socks) {
        struct rt_socks *n = rt->socks->next;
        socks_free(rt->socks, rt->n_workers);
        rt->socks = n;
    }
    px_snapshot_unref(rt->published);
    px_snapshot_unref(rt->spare);
    rt->published = rt->spare = NULL;
    px_prober_stop(rt->prober); /* drops its registry references */
    if (px_registry_free(rt->registry) != 0)
        px_log_warn("backend registry still referenced at stop (a snapshot or connection leaked)");
    px_dns_free(rt->dns); /* px_runtime_close_dns ran, and its loop finished */
    px_tls_keys_unref(rt->tls_keys);
    uv_mutex_destroy(&rt->lock);
    free(rt->workers);
    free(rt);
    px_obs_cleanup();
}
