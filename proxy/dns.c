/* Servers given by host name.
 *
 * A server whose address is a DNS name becomes one server per address the
 * name resolves to (same port, same weight). Resolution never runs on the
 * request path nor blocks the agent: uv_getaddrinfo runs getaddrinfo on
 * libuv's thread pool and its answer comes back to the agent loop.
 *
 * How a change reaches the workers: by a new snapshot. The resolver keeps
 * the current addresses of every name the served model uses; a snapshot
 * build (proxy/snapshot.c) reads them, on the agent thread, through the
 * registry's dns pointer; when an answer changes the address set of a
 * name, the runtime rebuilds the snapshot from the model it serves and
 * publishes it (proxy/runtime.c: on_dns_changed), once for all the answers
 * of the same PX_DNS_COALESCE_MS (20 ms). The workers see an
 * ordinary swap: no lock, no new state on the request path, and the
 * registry keeps the entries (pools, counts, health) of addresses that
 * stay. Membership in the registry was the alternative, but it would
 * have made the server lists mutable under the workers' feet.
 *
 * Schedule: a name is resolved when a model first names it (until the
 * answer arrives, it contributes no server: a group whose only server is
 * that name answers 503 for those first milliseconds), again every
 * PX_DNS_REFRESH_MS (30 s) after a success, and after a failure sooner,
 * with backoff: 1 s, 2 s, 4 s ... up to 30 s. A name that does not exist
 * (EAI_NONAME: an authoritative answer) loses its addresses; any other
 * failure (EAI_AGAIN, no resolver reachable) keeps the last addresses
 * that resolved, so a resolver outage does not empty a group. Failures
 * are reported by /status (px_dns_state), never block other names or
 * groups. Agent thread only. */
#include "proxy/dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

static bool is_ip(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

struct dns_name {
    struct px_dns *d;
    char *name;
    struct sockaddr_storage addrs[PX_DNS_MAX_ADDRS];
    size_t n;
    uv_getaddrinfo_t req;
    uv_timer_t timer;
    bool in_flight;
    bool timer_open;
    bool dead; /* pruned or closing: freed once req and timer are done */
    bool seen; /* px_dns_prune's mark */
    unsigned failures;
    int last_status; /* 0, or the uv error of the last attempt */
    time_t last_ok, last_attempt;
    struct dns_name *next;
};

struct px_dns {
    uv_loop_t *loop; /* NULL: tests, no lookups */
    void (*changed)(void *arg);
    void *arg;
    bool closed;
    struct dns_name *names;
    /* Changes are announced PX_DNS_COALESCE_MS after the first one, once
     * for all the answers that came meanwhile: at start-up a hundred names
     * make one new snapshot, not a hundred. */
    uv_timer_t notify;
    bool notify_open;
};

#define PX_DNS_COALESCE_MS 20

struct px_dns *px_dns_new(uv_loop_t *loop, void (*changed)(void *arg), void *arg)
{
    struct px_dns *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->loop = loop;
    d->changed = changed;
    d->arg = arg;
    if (loop) {
        uv_timer_init(loop, &d->notify);
        d->notify.data = d;
        d->notify_open = true;
    }
    return d;
}

static void on_notify(uv_timer_t *t)
{
    struct px_dns *d = t->data;
    if (!d->closed && d->changed)
        d->changed(d->arg);
}

/* A name's addresses changed: tell the owner soon (coalesced). */
static void announce(struct px_dns *d)
{
    if (d->notify_open && !uv_is_active((uv_handle_t *)&d->notify))
        uv_timer_start(&d->notify, on_notify, PX_DNS_COALESCE_MS, 0);
}

static struct dns_name *find(const struct px_dns *d, const char *name)
{
    for (struct dns_name *e = d ? d->names : NULL; e; e = e->next)
        if (strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

static void name_free_if_done(struct dns_name *e)
{
    if (e->dead && !e->in_flight && !e->timer_open) {
        free(e->name);
        free(e);
    }
}

static void timer_closed(uv_handle_t *h)
{
    struct dns_name *e = h->data;
    e->timer_open = false;
    name_free_if_done(e);
}

static int addr_cmp(const void *a, const void *b)
{
    const struct sockaddr_storage *x = a, *y = b;
    if (x->ss_family != y->ss_family)
        return x->ss_family < y->ss_family ? -1 : 1;
    if (x->ss_family == AF_INET)
        return memcmp(&((const struct sockaddr_in *)x)->sin_addr,
                      &((const struct sockaddr_in *)y)->sin_addr, 4);
    return memcmp(&((const struct sockaddr_in6 *)x)->sin6_addr,
                  &((const struct sockaddr_in6 *)y)->sin6_addr, 16);
}

/* Replaces e's addresses with v (sorted here, duplicates dropped); true
 * when the set changed. */
static bool set_addrs(struct dns_name *e, struct sockaddr_storage *v, size_t n)
{
    qsort(v, n, sizeof *v, addr_cmp);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || addr_cmp(&v[u - 1], &v[i]) != 0)
            v[u++] = v[i];
    bool same = u == e->n;
    for (size_t i = 0; same && i < u; i++)
        same = addr_cmp(&v[i], &e->addrs[i]) == 0;
    if (!same) {
        memcpy(e->addrs, v, u * sizeof *v);
        e->n = u;
    }
    return !same;
}

static void start_lookup(struct dns_name *e);

static void on_timer(uv_timer_t *t)
{
    start_lookup(t->data);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct dns_name *e = req->data;
    e->in_flight = false;
    if (e->dead) {
        uv_freeaddrinfo(res);
        name_free_if_done(e);
        return;
    }
    struct sockaddr_storage v[PX_DNS_MAX_ADDRS];
    size_t n = 0;
    for (struct addrinfo *ai = res; status == 0 && ai && n < PX_DNS_MAX_ADDRS; ai = ai->ai_next) {
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) || ai->ai_addrlen > sizeof v[0])
            continue;
        memset(&v[n], 0, sizeof v[n]);
        memcpy(&v[n], ai->ai_addr, ai->ai_addrlen);
        if (ai->ai_family == AF_INET)
            ((struct sockaddr_in *)&v[n])->sin_port = 0;
        else
            ((struct sockaddr_in6 *)&v[n])->sin6_port = 0;
        n++;
    }
    uv_freeaddrinfo(res);
    if (status == 0 && n == 0)
        status = UV_EAI_NODATA;
    e->last_attempt = time(NULL);
    bool changed = false;
    if (status == 0) {
        if (e->last_status != 0)
            px_log_info("host name %s resolves again (%zu address%s)", e->name, n,
                        n == 1 ? "" : "es");
        e->failures = 0;
        e->last_ok = e->last_attempt;
        changed = set_addrs(e, v, n);
    } else {
        if (e->last_status != status || e->failures == 0)
            px_log_warn("host name %s: %s%s", e->name, uv_strerror(status),
                        e->n && status != UV_EAI_NONAME ? " (keeping its last addresses)" : "");
        e->failures++;
        if (status == UV_EAI_NONAME && e->n) {
            e->n = 0;
            changed = true;
        }
    }
    e->last_status = status;
    uint64_t next = PX_DNS_REFRESH_MS;
    if (status != 0) {
        unsigned shift = e->failures - 1 > 5 ? 5 : e->failures - 1;
        next = (uint64_t)PX_DNS_RETRY_MIN_MS << shift;
        if (next > PX_DNS_REFRESH_MS)
            next = PX_DNS_REFRESH_MS;
    }
    if (e->timer_open)
        uv_timer_start(&e->timer, on_timer, next, 0);
    if (changed)
        announce(e->d);
}

static void start_lookup(struct dns_name *e)
{
    if (e->dead || e->in_flight || !e->d->loop)
        return;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    e->req.data = e;
    int rc = uv_getaddrinfo(e->d->loop, &e->req, on_resolved, e->name, NULL, &hints);
    if (rc == 0) {
        e->in_flight = true;
        return;
    }
    /* Could not even start (out of memory): try again later. */
    e->last_status = rc;
    e->last_attempt = time(NULL);
    if (e->timer_open)
        uv_timer_start(&e->timer, on_timer, PX_DNS_RETRY_MIN_MS, 0);
}

static struct dns_name *add_name(struct px_dns *d, const char *name)
{
    struct dns_name *e = calloc(1, sizeof *e);
    if (!e || !(e->name = strdup(name))) {
        free(e);
        return NULL;
    }
    e->d = d;
    if (d->loop) {
        uv_timer_init(d->loop, &e->timer);
        e->timer.data = e;
        e->timer_open = true;
    }
    e->next = d->names;
    d->names = e;
    return e;
}

void px_dns_want(struct px_dns *d, const struct rc_model *m)
{
    if (!d || d->closed)
        return;
    for (size_t i = 0; i < m->n_groups; i++) {
        const struct rc_server_group *g = &m->groups[i];
        for (size_t j = 0; j < g->n_servers; j++) {
            const char *a = g->servers[j].address;
            if (!a || is_ip(a) || find(d, a))
                continue;
            struct dns_name *e = add_name(d, a);
            if (e)
                start_lookup(e);
            else
                px_log_error("host name %s: out of memory", a);
        }
    }
}

static void kill_name(struct dns_name *e)
{
    e->dead = true;
    if (e->in_flight)
        uv_cancel((uv_req_t *)&e->req); /* its callback still comes, with UV_ECANCELED */
    if (e->timer_open)
        uv_close((uv_handle_t *)&e->timer, timer_closed);
    else
        name_free_if_done(e);
}

void px_dns_prune(struct px_dns *d, const struct rc_model *m)
{
    if (!d)
        return;
    for (struct dns_name *e = d->names; e; e = e->next)
        e->seen = false;
    for (size_t i = 0; i < m->n_groups; i++)
        for (size_t j = 0; j < m->groups[i].n_servers; j++) {
            struct dns_name *e = find(d, m->groups[i].servers[j].address);
            if (e)
                e->seen = true;
        }
    struct dns_name **pp = &d->names;
    while (*pp) {
        struct dns_name *e = *pp;
        if (e->seen) {
            pp = &e->next;
            continue;
        }
        *pp = e->next;
        kill_name(e);
    }
}

size_t px_dns_addrs(const struct px_dns *d, const char *name, const struct sockaddr_storage **out)
{
    const struct dns_name *e = find(d, name);
    *out = e ? e->addrs : NULL;
    return e ? e->n : 0;
}

void px_dns_state(const struct px_dns *d, const char *name, struct px_dns_state *out)
{
    memset(out, 0, sizeof *out);
    const struct dns_name *e = find(d, name);
    if (!e)
        return;
    out->known = true;
    out->resolved = e->n > 0;
    out->n_addrs = e->n;
    for (size_t i = 0; i < e->n; i++) {
        const struct sockaddr_storage *a = &e->addrs[i];
        const void *src = a->ss_family == AF_INET
                              ? (const void *)&((const struct sockaddr_in *)a)->sin_addr
                              : (const void *)&((const struct sockaddr_in6 *)a)->sin6_addr;
        inet_ntop(a->ss_family, src, out->addrs[i], sizeof out->addrs[i]);
    }
    if (e->last_status != 0)
        snprintf(out->error, sizeof out->error, "%s", uv_strerror(e->last_status));
    else if (e->last_attempt == 0)
        snprintf(out->error, sizeof out->error, "not resolved yet");
    out->last_ok = e->last_ok;
    out->last_attempt = e->last_attempt;
}

void px_dns_close(struct px_dns *d)
{
    if (!d || d->closed)
        return;
    d->closed = true;
    if (d->notify_open)
        uv_close((uv_handle_t *)&d->notify, NULL); /* d outlives it: freed after the loop ran */
    while (d->names) {
        struct dns_name *e = d->names;
        d->names = e->next;
        kill_name(e);
    }
}

void px_dns_free(struct px_dns *d)
{
    if (!d)
        return;
    /* Without a loop (tests) nothing is pending; with one, px_dns_close
     * ran and the loop has finished every callback. */
    while (d->names) {
        struct dns_name *e = d->names;
        d->names = e->next;
        free(e->name);
        free(e);
    }
    free(d);
}

int px_dns_set(struct px_dns *d, const char *name, const struct sockaddr_storage *addrs, size_t n)
{
    struct dns_name *e = find(d, name);
    if (!e && !(e = add_name(d, name)))
        return -ENOMEM;
    struct sockaddr_storage v[PX_DNS_MAX_ADDRS];
    if (n > PX_DNS_MAX_ADDRS)
        n = PX_DNS_MAX_ADDRS;
    if (n)
        memcpy(v, addrs, n * sizeof *v);
    set_addrs(e, v, n);
    e->last_status = n ? 0 : UV_EAI_NONAME;
    e->last_attempt = time(NULL);
    if (n)
        e->last_ok = e->last_attempt;
    return 0;
}
