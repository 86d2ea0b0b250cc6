/* The backend registry: entries keyed by server identity, shared by every
 * snapshot that names the server and every connection to it. */
#include "proxy/backend.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/sticky.h"

struct px_registry *px_registry_new(int n_workers)
{
    if (n_workers <= 0)
        return NULL;
    struct px_registry *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    if (uv_mutex_init(&r->lock) != 0) {
        free(r);
        return NULL;
    }
    r->n_workers = n_workers;
    r->sticky = px_sticky_new();
    if (!r->sticky) {
        uv_mutex_destroy(&r->lock);
        free(r);
        return NULL;
    }
    return r;
}

int px_registry_free(struct px_registry *r)
{
    if (!r)
        return 0;
    uv_mutex_lock(&r->lock);
    bool busy = r->n_backends != 0 || r->n_lb_states != 0;
    uv_mutex_unlock(&r->lock);
    if (busy)
        return -EBUSY;
    uv_mutex_destroy(&r->lock);
    px_sticky_free(r->sticky);
    free(r);
    return 0;
}

size_t px_registry_backend_count(struct px_registry *r)
{
    uv_mutex_lock(&r->lock);
    size_t n = r->n_backends;
    uv_mutex_unlock(&r->lock);
    return n;
}

int px_backend_id_init(struct px_backend_id *id, const char *ip, int port)
{
    memset(id, 0, sizeof *id);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&id->addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&id->addr;
    if (port < 0 || port > 65535)
        return -EINVAL;
    if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        id->addrlen = sizeof *v4;
        snprintf(id->key, sizeof id->key, "%s:%d", ip, port);
        return 0;
    }
    if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        id->addrlen = sizeof *v6;
        snprintf(id->key, sizeof id->key, "[%s]:%d", ip, port);
        return 0;
    }
    return -EINVAL;
}

static unsigned bucket_of(const char *k)
{
    unsigned h = 2166136261u;
    for (; *k; k++)
        h = (h ^ (unsigned char)*k) * 16777619u;
    return h % PX_REGISTRY_BUCKETS;
}

struct px_backend *px_backend_get(struct px_registry *r, const struct px_backend_id *id)
{
    unsigned bk = bucket_of(id->key);
    uv_mutex_lock(&r->lock);
    for (struct px_backend *b = r->buckets[bk]; b; b = b->next) {
        if (strcmp(b->id.key, id->key) != 0 || strcmp(b->id.tls, id->tls) != 0)
            continue;
        /* An entry at 0 is being freed by the thread that dropped it (it
         * waits for the lock): never revive it, make a new one instead. */
        int n = atomic_load_explicit(&b->refs, memory_order_relaxed);
        while (n > 0 && !atomic_compare_exchange_weak(&b->refs, &n, n + 1))
            ;
        if (n > 0) {
            uv_mutex_unlock(&r->lock);
            return b;
        }
    }
    /* Aligned: the counters have a cache line of their own. */
    struct px_backend *b = aligned_alloc(PX_CACHE_LINE, sizeof *b);
    struct px_pool *pools = calloc((size_t)r->n_workers, sizeof *pools);
    if (b)
        memset(b, 0, sizeof *b);
    if (!b || !pools) {
        uv_mutex_unlock(&r->lock);
        free(b);
        free(pools);
        return NULL;
    }
    atomic_init(&b->refs, 1);
    b->reg = r;
    b->id = *id;
    b->pools = pools;
    b->next = r->buckets[bk];
    r->buckets[bk] = b;
    r->n_backends++;
    uv_mutex_unlock(&r->lock);
    return b;
}

struct px_backend *px_backend_ref(struct px_backend *b)
{
    if (b)
        atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}

void px_backend_unref(struct px_backend *b)
{
    if (!b || atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
        return;
    struct px_registry *r = b->reg;
    uv_mutex_lock(&r->lock);
    struct px_backend **pp = &r->buckets[bucket_of(b->id.key)];
    while (*pp && *pp != b)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = b->next;
        r->n_backends--;
    }
    uv_mutex_unlock(&r->lock);
    for (int i = 0; i < r->n_workers; i++)
        SSL_SESSION_free(b->pools[i].tls_session);
    free(b->pools);
    free(b);
}

void px_registry_each(struct px_registry *r, void (*fn)(struct px_backend *b, void *arg), void *arg)
{
    uv_mutex_lock(&r->lock);
    for (size_t i = 0; i < PX_REGISTRY_BUCKETS; i++)
        for (struct px_backend *b = r->buckets[i]; b; b = b->next)
            if (atomic_load_explicit(&b->refs, memory_order_relaxed) > 0)
                fn(b, arg);
    uv_mutex_unlock(&r->lock);
}
