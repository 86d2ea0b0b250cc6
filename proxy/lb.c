/* Smooth weighted round robin with its state kept outside the snapshot. */
#include "proxy/lb.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/backend.h"

/* Ints per cache line: rows are padded so that two workers never write the
 * same line. */
#define ROW_ALIGN 16

struct px_lb_state {
    atomic_int refs;
    struct px_registry *reg;
    char key[65]; /* SHA-256 (hex) of the group's identity, members and weights */
    size_t n_servers;
    size_t stride;            /* ints per worker row */
    int *cur;                 /* reg->n_workers rows; row w only by worker w */
    struct px_lb_state *next; /* reg->lb_states, under reg->lock */
};

static void state_key(const struct px_group *g, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    out[0] = '\0';
    if (!ctx)
        return;
    char num[32];
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    const char *name = g->model && g->model->meta.name ? g->model->meta.name : "";
    EVP_DigestUpdate(ctx, name, strlen(name) + 1);
    snprintf(num, sizeof num, "%d/%zu", g->model ? (int)g->model->scheduler : 0, g->n_servers);
    EVP_DigestUpdate(ctx, num, strlen(num) + 1);
    for (size_t i = 0; i < g->n_servers; i++) {
        const char *k = g->servers[i].key;
        EVP_DigestUpdate(ctx, k, strlen(k) + 1);
        snprintf(num, sizeof num, "%d", g->servers[i].weight);
        EVP_DigestUpdate(ctx, num, strlen(num) + 1);
    }
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

struct px_lb_state *px_lb_state_get(struct px_registry *r, const struct px_group *g)
{
    char key[65];
    state_key(g, key);
    if (!key[0])
        return NULL;
    uv_mutex_lock(&r->lock);
    for (struct px_lb_state *st = r->lb_states; st; st = st->next) {
        if (strcmp(st->key, key) != 0)
            continue;
        int n = atomic_load_explicit(&st->refs, memory_order_relaxed);
        while (n > 0 && !atomic_compare_exchange_weak(&st->refs, &n, n + 1))
            ;
        if (n > 0) { /* at 0 it is being freed: make a new one */
            uv_mutex_unlock(&r->lock);
            return st;
        }
    }
    struct px_lb_state *st = calloc(1, sizeof *st);
    size_t stride = (g->n_servers + ROW_ALIGN - 1) / ROW_ALIGN * ROW_ALIGN;
    int *cur =
        stride ? aligned_alloc(ROW_ALIGN * sizeof(int), (size_t)r->n_workers * stride * sizeof(int))
               : NULL;
    if (!st || (stride && !cur)) {
        uv_mutex_unlock(&r->lock);
        free(st);
        free(cur);
        return NULL;
    }
    if (cur)
        memset(cur, 0, (size_t)r->n_workers * stride * sizeof(int));
    atomic_init(&st->refs, 1);
    st->reg = r;
    memcpy(st->key, key, sizeof st->key);
    st->n_servers = g->n_servers;
    st->stride = stride;
    st->cur = cur;
    st->next = r->lb_states;
    r->lb_states = st;
    uv_mutex_unlock(&r->lock);
    return st;
}

void px_lb_state_unref(struct px_lb_state *st)
{
    if (!st || atomic_fetch_sub_explicit(&st->refs, 1, memory_order_acq_rel) != 1)
        return;
    struct px_registry *r = st->reg;
    uv_mutex_lock(&r->lock);
    struct px_lb_state **pp = &r->lb_states;
    while (*pp && *pp != st)
        pp = &(*pp)->next;
    if (*pp)
        *pp = st->next;
    uv_mutex_unlock(&r->lock);
    free(st->cur);
    free(st);
}

/* Smooth weighted round robin (each pick: add every weight to its counter,
 * take the largest, subtract the total): spreads a server's turns evenly
 * instead of in bursts. */
static struct px_server *wrr(const struct px_group *g, int *cur, bool check_health)
{
    int total = 0;
    ssize_t best = -1;
    for (size_t i = 0; i < g->n_servers; i++) {
        const struct px_server *s = &g->servers[i];
        if (s->weight <= 0 || (check_health && !px_backend_usable(s->backend)))
            continue;
        cur[i] += s->weight;
        total += s->weight;
        if (best < 0 || cur[i] > cur[best])
            best = (ssize_t)i;
    }
    if (best < 0)
        return NULL;
    cur[best] -= total;
    return &g->servers[best];
}

struct px_server *px_lb_pick(const struct px_group *g, int worker)
{
    const struct px_lb_state *st = g->lb;
    if (!st || g->n_servers == 0)
        return NULL;
    int *cur = st->cur + (size_t)worker * st->stride;
    struct px_server *s = wrr(g, cur, true);
    if (!s && (!g->model || g->model->fail_open))
        s = wrr(g, cur, false); /* every server unhealthy: fail open */
    return s;
}

struct px_server *px_lb_next(const struct px_group *g, size_t first, size_t *cursor)
{
    size_t n = g->n_servers;
    /* A first pick that was not usable means the group failed open (or
     * the server went down since): fail over across the others the same
     * way. */
    bool open = first < n && !px_backend_usable(g->servers[first].backend);
    while (++*cursor < n) {
        struct px_server *s = &g->servers[(first + *cursor) % n];
        if (s->weight > 0 && (open || px_backend_usable(s->backend)))
            return s;
    }
    return NULL;
}
