/* Snapshot construction from a model and reference counting. */
#include "proxy/snapshot.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/alog.h"
#include "proxy/backend.h"
#include "proxy/dns.h"
#include "proxy/lb.h"
#include "proxy/obs.h"
#include "proxy/protos.h"
#include "proxy/router.h"
#include "proxy/tls_ctx.h"
#include "proxy/upstream_tls.h"
#include "reconciler/model.h"

static atomic_int snapshots_alive;

int px_snapshot_alive_count(void)
{
    return atomic_load_explicit(&snapshots_alive, memory_order_relaxed);
}

/* Parses an IP literal into addr; returns 0 or -EINVAL. */
static int parse_ip(const char *ip, int port, struct sockaddr_storage *addr, socklen_t *len)
{
    memset(addr, 0, sizeof *addr);
    struct sockaddr_in *v4 = (struct sockaddr_in *)addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)addr;
    if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *len = sizeof *v4;
        return 0;
    }
    if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *len = sizeof *v6;
        return 0;
    }
    return -EINVAL;
}

/* "1.2.3.4:80" or "[::1]:80". */
static void format_addr(const char *ip, int port, char *buf, size_t size)
{
    if (strchr(ip, ':'))
        snprintf(buf, size, "[%s]:%d", ip, port);
    else
        snprintf(buf, size, "%s:%d", ip, port);
}

const struct px_group *px_snapshot_group(const struct px_snapshot *s, const char *name)
{
    size_t lo = 0, hi = s ? s->n_groups : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct px_group *g = &s->groups[mid];
        if (g->model == NULL)
            break;
        int c = strcmp(g->model->meta.name, name);
        if (c == 0)
            return g;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = 0; s && i < s->n_groups; i++)
        if (s->groups[i].model && !strcmp(s->groups[i].model->meta.name, name))
            return &s->groups[i];
    return NULL;
}

/* The group's client SSL_CTX (HTTPS groups): the previous snapshot's when
 * its inputs are unchanged (sessions and parsed certificates kept) — its
 * own group's, found by name, or any group's with the same inputs. */
static SSL_CTX *group_tls_ctx(const struct px_snapshot *prev, const struct rc_server_group *m,
                              char digest[65], char *err, size_t errlen)
{
    px_upstream_tls_digest(m, digest);
    const struct px_group *same = digest[0] ? px_snapshot_group(prev, m->meta.name) : NULL;
    if (same && same->tls_ctx && strcmp(same->tls_digest, digest) == 0) {
        SSL_CTX_up_ref(same->tls_ctx);
        return same->tls_ctx;
    }
    for (size_t i = 0; prev && digest[0] && i < prev->n_groups; i++) {
        const struct px_group *pg = &prev->groups[i];
        if (pg->tls_ctx && strcmp(pg->tls_digest, digest) == 0) {
            SSL_CTX_up_ref(pg->tls_ctx);
            return pg->tls_ctx;
        }
    }
    return px_upstream_tls_ctx_new(m, err, errlen);
}

/* The registry identity's TLS part: the group's TLS digest and the name
 * verified, shortened ("" for plain groups). */
static void tls_identity(const struct px_group *g, const char *name, char out[17])
{
    out[0] = '\0';
    if (!g->tls_ctx)
        return;
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return;
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, g->tls_digest, strlen(g->tls_digest) + 1);
    EVP_DigestUpdate(ctx, name, strlen(name) + 1);
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    for (unsigned i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Adds one server of g for address ip (text) of model server rs; a second
 * server with the same identity (a name and an IP literal naming the same
 * address) is dropped. 0 or -1 (out of memory). */
static int add_server(struct px_snapshot *s, struct px_group *g, const struct rc_server *rs,
                      const char *ip, bool by_name)
{
    struct px_server *ps = &g->servers[g->n_servers];
    struct px_backend_id id;
    if (px_backend_id_init(&id, ip, rs->port) != 0)
        return 0; /* not reached: ip comes from inet_ntop or validation */
    const char *name = g->model->tls.server_name ? g->model->tls.server_name : rs->address;
    tls_identity(g, name, id.tls);
    for (size_t i = 0; i < g->n_servers; i++)
        if (strcmp(g->servers[i].key, id.key) == 0 &&
            strcmp(g->servers[i].backend->id.tls, id.tls) == 0)
            return 0;
    ps->model = rs;
    ps->weight = rs->weight;
    ps->by_name = by_name;
    ps->tls_ctx = g->tls_ctx;
    ps->tls_name = g->tls_ctx ? name : NULL;
    ps->backend = px_backend_get(s->registry, &id);
    if (!ps->backend)
        return -1;
    ps->key = ps->backend->id.key;
    char sk[512];
    snprintf(sk, sizeof sk, "%s/%s", g->model->meta.name, ps->key);
    ps->obs_slot = px_obs_slot(PX_OBS_SERVER, sk);
    g->total_weight += rs->weight;
    g->n_servers++;
    return 0;
}

/* Takes group g from prev when building it would make the same thing: an
 * HTTP group of the same name and spec (digest) whose servers are all IP
 * literals, one each (no host name, whose addresses may have moved; no
 * duplicate dropped), gets the same registry entries, scheduler state and
 * metric slots. g then holds its own references to them, and points at m
 * and m's servers. A reload that changes one of 10,000 groups builds one.
 * Returns 1 when taken, 0 when g must be built, -1 out of memory. */
static int reuse_group(const struct px_snapshot *prev, struct px_group *g,
                       const struct rc_server_group *m)
{
    if (m->protocol != RC_GROUP_HTTP || m->meta.digest[0] == '\0' || m->n_servers == 0)
        return 0;
    const struct px_group *pg = px_snapshot_group(prev, m->meta.name);
    if (!pg || !pg->lb || pg->tls_ctx || pg->n_servers != m->n_servers ||
        strcmp(pg->model->meta.digest, m->meta.digest) != 0)
        return 0;
    for (size_t j = 0; j < pg->n_servers; j++)
        if (pg->servers[j].by_name || pg->servers[j].weight != m->servers[j].weight)
            return 0;
    g->servers = malloc(pg->n_servers * sizeof *g->servers);
    if (!g->servers)
        return -1;
    for (size_t j = 0; j < pg->n_servers; j++) {
        g->servers[j] = pg->servers[j];
        g->servers[j].model = &m->servers[j];
        px_backend_ref(g->servers[j].backend);
    }
    g->model = m;
    g->n_servers = pg->n_servers;
    g->total_weight = pg->total_weight;
    g->obs_slot = pg->obs_slot;
    g->lb = px_lb_state_ref(pg->lb);
    return 1;
}

/* Builds group g: one server per IP literal, and one per address of each
 * host name (proxy/dns.c; none while the name does not resolve). */
static int build_group(struct px_snapshot *s, const struct px_snapshot *prev, struct px_group *g,
                       const struct rc_server_group *m, char *err, size_t errlen)
{
    int taken = reuse_group(prev, g, m);
    if (taken != 0) {
        if (taken < 0)
            snprintf(err, errlen, "out of memory");
        s->groups_reused += taken > 0;
        return taken < 0 ? -1 : 0;
    }
    g->model = m;
    g->obs_slot = px_obs_slot(PX_OBS_GROUP, m->meta.name);
    if (m->protocol == RC_GROUP_HTTPS) {
        char terr[256] = "";
        g->tls_ctx = group_tls_ctx(prev, m, g->tls_digest, terr, sizeof terr);
        if (!g->tls_ctx) {
            snprintf(err, errlen, "%s", terr);
            return -1;
        }
    }
    size_t cap = 0;
    for (size_t i = 0; i < m->n_servers; i++) {
        const struct sockaddr_storage *a;
        size_t n = px_dns_addrs(s->registry->dns, m->servers[i].address, &a);
        cap += n ? n : 1;
    }
    if (cap == 0)
        return 0;
    g->servers = calloc(cap, sizeof *g->servers);
    if (!g->servers) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < m->n_servers; i++) {
        const struct rc_server *rs = &m->servers[i];
        struct px_backend_id probe;
        int rc = 0;
        if (px_backend_id_init(&probe, rs->address, rs->port) == 0) {
            rc = add_server(s, g, rs, rs->address, false);
        } else {
            const struct sockaddr_storage *a;
            size_t n = px_dns_addrs(s->registry->dns, rs->address, &a);
            for (size_t k = 0; rc == 0 && k < n; k++) {
                char ip[INET6_ADDRSTRLEN];
                const void *src =
                    a[k].ss_family == AF_INET
                        ? (const void *)&((const struct sockaddr_in *)&a[k])->sin_addr
                        : (const void *)&((const struct sockaddr_in6 *)&a[k])->sin6_addr;
                if (inet_ntop(a[k].ss_family, src, ip, sizeof ip))
                    rc = add_server(s, g, rs, ip, true);
            }
        }
        if (rc != 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    g->lb = px_lb_state_get(s->registry, g);
    if (!g->lb) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* The digest of everything an HTTPS listener's SSL_CTX is built from. */
/* Bytes on their way to a digest, passed on a buffer at a time. */
struct digest_buf {
    EVP_MD_CTX *ctx;
    size_t n;
    char v[4096];
};

static void put_digest(struct digest_buf *b, const char *s)
{
    size_t len = strlen(s);
    if (b->n + len > sizeof b->v) {
        EVP_DigestUpdate(b->ctx, b->v, b->n);
        b->n = 0;
    }
    if (len > sizeof b->v) {
        EVP_DigestUpdate(b->ctx, s, len);
        return;
    }
    memcpy(b->v + b->n, s, len);
    b->n += len;
}

static void tls_digest(const struct rc_listener *l, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx) {
        out[0] = '\0';
        return;
    }
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    /* The same bytes as one update per digest, gathered into a buffer:
     * a listener with 10,000 certificates made 10,000 updates. */
    struct digest_buf b = {.ctx = ctx};
    put_digest(&b, l->meta.digest);
    if (l->tls.certificate)
        put_digest(&b, l->tls.certificate->meta.digest);
    for (size_t i = 0; i < l->tls.n_extension_certificates; i++)
        put_digest(&b, l->tls.extension_certificates[i]->meta.digest);
    for (size_t i = 0; i < l->tls.mutual.n_ca_certificates; i++)
        put_digest(&b, l->tls.mutual.ca_certificates[i]->meta.digest);
    if (l->tls.policy)
        put_digest(&b, l->tls.policy->meta.digest);
    EVP_DigestUpdate(ctx, b.v, b.n);
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static SSL_CTX *reuse_ssl_ctx(const struct px_snapshot *prev, const char *digest)
{
    if (!prev || !digest[0])
        return NULL;
    for (size_t i = 0; i < prev->n_listeners; i++) {
        const struct px_listener *pl = &prev->listeners[i];
        if (pl->ssl_ctx && strcmp(pl->tls_digest, digest) == 0) {
            SSL_CTX_up_ref(pl->ssl_ctx);
            return pl->ssl_ctx;
        }
    }
    return NULL;
}

/* The snapshot's group built from m: groups are the model's, in the same
 * order (as a rule's group is found, px_listener.model_groups), so the
 * index is m's; a scan only for a pointer that is not in the array. */
static struct px_group *find_group(struct px_snapshot *s, const struct rc_server_group *m)
{
    uintptr_t base = (uintptr_t)s->model->groups, p = (uintptr_t)m;
    size_t i = (p - base) / sizeof *m;
    if (p >= base && i < s->n_groups && s->groups[i].model == m)
        return &s->groups[i];
    for (i = 0; i < s->n_groups; i++)
        if (s->groups[i].model == m)
            return &s->groups[i];
    return NULL;
}

static void snapshot_free(struct px_snapshot *s)
{
    for (size_t i = 0; i < s->n_listeners; i++) {
        SSL_CTX_free(s->listeners[i].ssl_ctx);
        px_router_unref(s->listeners[i].router);
        px_alog_sink_unref(s->listeners[i].alog);
    }
    for (size_t i = 0; i < s->n_groups; i++) {
        struct px_group *g = &s->groups[i];
        if (g->servers)
            for (size_t j = 0; j < g->n_servers; j++)
                px_backend_unref(g->servers[j].backend);
        free(g->servers);
        px_lb_state_unref(g->lb);
        SSL_CTX_free(g->tls_ctx);
    }
    free(s->listeners);
    free(s->groups);
    free(s->binds);
    rc_model_unref(s->model);
    free(s);
    atomic_fetch_sub_explicit(&snapshots_alive, 1, memory_order_relaxed);
}

int px_snapshot_build(struct rc_model *m, const struct px_snapshot *prev,
                      const struct px_snapshot *spare, struct px_registry *reg, uint64_t generation,
                      struct px_tls_keys *keys, struct px_snapshot **out, char *err, size_t errlen,
                      const char **failed_listener)
{
    *out = NULL;
    *failed_listener = NULL;
    struct px_snapshot *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    atomic_init(&s->refs, 1);
    atomic_fetch_add_explicit(&snapshots_alive, 1, memory_order_relaxed);
    s->generation = generation;
    s->n_workers = reg->n_workers;
    s->registry = reg;
    s->model = rc_model_ref(m);

    size_t n_binds = 0;
    for (size_t i = 0; i < m->n_listeners; i++)
        if (m->listeners[i].protocol != RC_LISTENER_QUIC)
            n_binds += m->listeners[i].instance->n_addresses;
    s->groups = calloc(m->n_groups ? m->n_groups : 1, sizeof *s->groups);
    s->listeners = calloc(m->n_listeners ? m->n_listeners : 1, sizeof *s->listeners);
    s->binds = calloc(n_binds ? n_binds : 1, sizeof *s->binds);
    if (!s->groups || !s->listeners || !s->binds) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }

    s->n_groups = m->n_groups;
    for (size_t i = 0; i < m->n_groups; i++)
        if (build_group(s, prev, &s->groups[i], &m->groups[i], err, errlen) != 0)
            goto fail;

    for (size_t i = 0; i < m->n_listeners; i++) {
        const struct rc_listener *l = &m->listeners[i];
        if (l->protocol == RC_LISTENER_QUIC)
            continue; /* QUIC listeners are served by the QUIC module (later) */
        size_t li = s->n_listeners++;
        struct px_listener *pl = &s->listeners[li];
        pl->model = l;
        pl->obs_slot = px_obs_slot(PX_OBS_LISTENER, l->meta.name);
        pl->default_group = l->default_group ? find_group(s, l->default_group) : NULL;
        pl->scheme = l->protocol == RC_LISTENER_HTTPS ? "https" : "http";
        pl->protocols = l->protocol == RC_LISTENER_HTTPS ? &px_protocols_alpn : &px_protocols_http1;
        snprintf(pl->port_str, sizeof pl->port_str, "%d", l->port);
        pl->groups = s->groups;
        pl->model_groups = m->groups;
        if (l->n_rules) {
            pl->router = px_router_reuse(l, prev);
            if (!pl->router && !(pl->router = px_router_new(l))) {
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
        }
        if (l->protocol == RC_LISTENER_HTTPS) {
            tls_digest(l, pl->tls_digest);
            pl->ssl_ctx = reuse_ssl_ctx(prev, pl->tls_digest);
            if (!pl->ssl_ctx)
                pl->ssl_ctx = reuse_ssl_ctx(spare, pl->tls_digest);
            if (!pl->ssl_ctx) {
                char terr[256];
                pl->ssl_ctx = px_tls_ctx_new(l, keys, true, terr, sizeof terr);
                if (!pl->ssl_ctx) {
                    snprintf(err, errlen, "Listener/%s: %s", l->meta.name, terr);
                    *failed_listener = l->meta.name;
                    goto fail;
                }
            }
        }
        if (l->access_log.enabled) {
            char aerr[256];
            if (px_alog_sink_get(l->access_log.path, s->n_workers, &pl->alog, aerr, sizeof aerr) !=
                0) {
                snprintf(err, errlen, "Listener/%s: %s", l->meta.name, aerr);
                *failed_listener = l->meta.name;
                goto fail;
            }
        }
        for (size_t a = 0; a < l->instance->n_addresses; a++) {
            struct px_bind *b = &s->binds[s->n_binds];
            const char *ip = l->instance->addresses[a];
            if (parse_ip(ip, l->port, &b->addr, &b->addrlen) != 0) {
                snprintf(err, errlen, "Instance/%s: \"%s\" is not an IP address",
                         l->instance->meta.name, ip);
                goto fail;
            }
            char hp[64];
            format_addr(ip, l->port, hp, sizeof hp);
            snprintf(b->key, sizeof b->key, "%s/%s",
                     l->protocol == RC_LISTENER_HTTPS ? "HTTPS" : "HTTP", hp);
            b->listener = li;
            s->n_binds++;
        }
    }
    *out = s;
    return 0;
fail:
    snapshot_free(s);
    return -1;
}

struct px_snapshot *px_snapshot_ref(struct px_snapshot *s)
{
    if (s)
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

void px_snapshot_unref(struct px_snapshot *s)
{
    if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
        snapshot_free(s);
}

const struct px_bind *px_snapshot_find_bind(const struct px_snapshot *s, const char *key)
{
    for (size_t i = 0; i < s->n_binds; i++)
        if (strcmp(s->binds[i].key, key) == 0)
            return &s->binds[i];
    return NULL;
}
