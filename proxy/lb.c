/* Schedulers with their state kept outside the snapshot (see lb.h). */
#include "proxy/lb.h"

#include <openssl/sha.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/hash.h"
#include "proxy/backend.h"
#include "proxy/sticky.h"

/* Ints per cache line: rows are padded so that two workers never write the
 * same line. */
#define ROW_ALIGN 16

/* Weights are multiplied by this for Wrr when a group has slow start, so
 * that a ramp has steps finer than 1/weight. */
#define SLOW_SCALE 100

struct ring_point {
    uint64_t h;
    uint32_t server;
};

struct cookie_ref {
    char v[PX_STICKY_VALUE_LEN + 1];
    uint32_t server;
};

struct px_lb_state {
    atomic_int refs;
    struct px_registry *reg;
    char key[65]; /* SHA-256 (hex) of the group's identity, members and weights */
    char *name;   /* the group's name: a later state of the same group finds this one */
    size_t n_servers;
    char (*server_keys)[sizeof(((struct px_backend_id *)0)->key)]; /* members, for slow start */
    int *weights;
    size_t stride;           /* ints per worker row */
    int *cur;                /* reg->n_workers rows; row w only by worker w */
    atomic_uchar *seen;      /* per server: usable at the last look (slow start) */
    struct ring_point *ring; /* Sch, Uch: sorted by h */
    size_t n_ring;
    char (*cookie)[PX_STICKY_VALUE_LEN + 1]; /* Insert: per server */
    struct cookie_ref *by_cookie;            /* the same, sorted, with the server's index */
    uint32_t *ident;                         /* per server: identity hash (Server stickiness) */
    /* Hashes of key and name, and the chains of reg->lb_by_key and
     * reg->lb_by_name (under reg->lock): a snapshot of 10,000 groups finds
     * each group's state without comparing it with every other's. */
    uint64_t key_hash, name_hash;
    struct px_lb_state *next_key, *next_name;
};

/* Appends s and its NUL to the key material (grown as needed); false when
 * out of memory. */
static bool km_put(char **buf, size_t *len, size_t *cap, char *stack, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = (*cap) * 2 > *len + n + 1 ? (*cap) * 2 : *len + n + 1;
        char *p = *buf == stack ? malloc(c) : realloc(*buf, c);
        if (p == NULL)
            return false;
        if (*buf == stack)
            memcpy(p, stack, *len);
        *buf = p;
        *cap = c;
    }
    memcpy(*buf + *len, s, n);
    (*buf)[*len + n] = '\0';
    *len += n + 1;
    return true;
}

/* The SHA-256 (hex) of the group's identity, members and weights: NUL-
 * terminated name, "scheduler/n/sticky", then each server's key and weight.
 * Gathered into one buffer and hashed at once (SHA256()): a snapshot of
 * 10,000 groups does not set up a digest context per group. "" when out of
 * memory. */
static void state_key(const struct px_group *g, char out[65])
{
    char stack[2048], *buf = stack, num[48];
    size_t len = 0, cap = sizeof stack;
    out[0] = '\0';
    const char *name = g->model && g->model->meta.name ? g->model->meta.name : "";
    int nn = snprintf(num, sizeof num, "%d/%zu/%d%d", g->model ? (int)g->model->scheduler : 0,
                      g->n_servers, g->model && g->model->sticky.enabled,
                      g->model && g->model->sticky.server);
    bool ok = km_put(&buf, &len, &cap, stack, name, strlen(name)) &&
              km_put(&buf, &len, &cap, stack, num, (size_t)nn);
    for (size_t i = 0; ok && i < g->n_servers; i++) {
        const char *k = g->servers[i].key;
        int wn = snprintf(num, sizeof num, "%d", g->servers[i].weight);
        ok = km_put(&buf, &len, &cap, stack, k, strlen(k)) &&
             km_put(&buf, &len, &cap, stack, num, (size_t)wn);
    }
    if (ok) {
        unsigned char md[32];
        SHA256((const unsigned char *)buf, len, md);
        cm_hex(md, sizeof md, out);
    }
    if (buf != stack)
        free(buf);
}

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

static void state_free(struct px_lb_state *st)
{
    if (!st)
        return;
    free(st->name);
    free(st->server_keys);
    free(st->weights);
    free(st->cur);
    free(st->seen);
    free(st->ring);
    free(st->cookie);
    free(st->by_cookie);
    free(st->ident);
    free(st);
}

static int ring_points(int weight)
{
    int n = weight * PX_LB_RING_POINTS / 100;
    return weight <= 0 ? 0 : n ? n : 1;
}

static int ring_cmp(const void *a, const void *b)
{
    const struct ring_point *x = a, *y = b;
    return x->h < y->h ? -1 : x->h > y->h ? 1 : (x->server > y->server) - (x->server < y->server);
}

/* The consistent-hash ring: PX_LB_RING_POINTS * weight / 100 points per
 * server (at least one; none for weight 0), each at the hash of
 * "address:port#k", so a server's points depend on nothing but itself:
 * adding or removing one moves only the keys that land on its points. */
static int ring_build(struct px_lb_state *st, const struct px_group *g)
{
    size_t n = 0;
    for (size_t i = 0; i < g->n_servers; i++)
        if (g->servers[i].weight > 0)
            n += (size_t)ring_points(g->servers[i].weight);
    if (n == 0)
        return 0;
    st->ring = malloc(n * sizeof *st->ring);
    if (!st->ring)
        return -1;
    for (size_t i = 0; i < g->n_servers; i++) {
        int w = g->servers[i].weight;
        int pts = ring_points(w);
        for (int k = 0; k < pts; k++) {
            char buf[96];
            int len = snprintf(buf, sizeof buf, "%s#%d", g->servers[i].key, k);
            st->ring[st->n_ring++] = (struct ring_point){cm_hash(buf, (size_t)len), (uint32_t)i};
        }
    }
    qsort(st->ring, st->n_ring, sizeof *st->ring, ring_cmp);
    return 0;
}

static int cookie_cmp(const void *a, const void *b)
{
    return strcmp(((const struct cookie_ref *)a)->v, ((const struct cookie_ref *)b)->v);
}

static int sticky_build(struct px_lb_state *st, const struct px_group *g)
{
    size_t n = g->n_servers;
    st->ident = malloc((n ? n : 1) * sizeof *st->ident);
    if (!st->ident)
        return -1;
    for (size_t i = 0; i < n; i++)
        st->ident[i] = (uint32_t)cm_hash_str(g->servers[i].key);
    if (!g->model->sticky.enabled || g->model->sticky.server)
        return 0;
    st->cookie = malloc((n ? n : 1) * sizeof *st->cookie);
    st->by_cookie = malloc((n ? n : 1) * sizeof *st->by_cookie);
    if (!st->cookie || !st->by_cookie)
        return -1;
    for (size_t i = 0; i < n; i++) {
        px_sticky_value(st->reg->sticky, g->servers[i].key, st->cookie[i]);
        memcpy(st->by_cookie[i].v, st->cookie[i], sizeof st->by_cookie[i].v);
        st->by_cookie[i].server = (uint32_t)i;
    }
    qsort(st->by_cookie, n, sizeof *st->by_cookie, cookie_cmp);
    return 0;
}

/* Slow start's entry rule for a state replacing prev (the newest state of
 * the same group, or NULL for a group albd did not serve before): a
 * server that is new to the group, or whose weight was 0, enters slow
 * start now when at least one other usable server of weight > 0 is not in
 * slow start; otherwise (the first servers of a group, at start-up too)
 * it takes its full weight at once. Under r->lock. */
static void slow_start_enter(const struct px_lb_state *prev, const struct px_group *g, uint64_t now)
{
    if (!g->model || !g->model->slow_start.enabled || !prev)
        return;
    bool *fresh = calloc(g->n_servers ? g->n_servers : 1, sizeof *fresh);
    if (!fresh)
        return; /* no ramp: full weight at once */
    bool settled = false;
    for (size_t i = 0; i < g->n_servers; i++) {
        const struct px_server *s = &g->servers[i];
        if (s->weight <= 0)
            continue;
        bool known = false;
        for (size_t j = 0; j < prev->n_servers && !known; j++)
            known = !strcmp(prev->server_keys[j], s->key) && prev->weights[j] > 0;
        fresh[i] = !known;
        if (known && px_backend_usable(s->backend) && px_lb_slow_start(g, s, now) == 1000)
            settled = true;
    }
    for (size_t i = 0; i < g->n_servers; i++)
        if (fresh[i])
            atomic_store_explicit(&g->servers[i].backend->slow_start, settled ? (now ? now : 1) : 0,
                                  memory_order_relaxed);
    free(fresh);
}

struct px_lb_state *px_lb_state_get(struct px_registry *r, const struct px_group *g)
{
    char key[65];
    state_key(g, key);
    if (!key[0])
        return NULL;
    const char *name = g->model && g->model->meta.name ? g->model->meta.name : "";
    uint64_t key_hash = cm_hash_str(key), name_hash = cm_hash_str(name);
    struct px_lb_state **kb = &r->lb_by_key[key_hash % PX_LB_BUCKETS];
    struct px_lb_state **nb = &r->lb_by_name[name_hash % PX_LB_BUCKETS];
    uv_mutex_lock(&r->lock);
    for (struct px_lb_state *st = *kb; st; st = st->next_key) {
        if (st->key_hash != key_hash || strcmp(st->key, key) != 0)
            continue;
        int n = atomic_load_explicit(&st->refs, memory_order_relaxed);
        while (n > 0 && !atomic_compare_exchange_weak(&st->refs, &n, n + 1))
            ;
        if (n > 0) { /* at 0 it is being freed: make a new one */
            uv_mutex_unlock(&r->lock);
            return st;
        }
    }
    const struct px_lb_state *prev = NULL; /* the newest live state of the group */
    for (struct px_lb_state *st = *nb; st && !prev; st = st->next_name)
        if (st->name_hash == name_hash && !strcmp(st->name, name) &&
            atomic_load_explicit(&st->refs, memory_order_relaxed) > 0)
            prev = st;
    struct px_lb_state *st = calloc(1, sizeof *st);
    size_t n = g->n_servers;
    size_t stride = (n + ROW_ALIGN - 1) / ROW_ALIGN * ROW_ALIGN;
    if (st) {
        st->reg = r;
        st->name = strdup(name);
        st->server_keys = calloc(n ? n : 1, sizeof *st->server_keys);
        st->weights = calloc(n ? n : 1, sizeof *st->weights);
        st->seen = calloc(n ? n : 1, sizeof *st->seen);
        st->cur = stride ? aligned_alloc(ROW_ALIGN * sizeof(int),
                                         (size_t)r->n_workers * stride * sizeof(int))
                         : NULL;
    }
    enum rc_scheduler sch = g->model ? g->model->scheduler : RC_SCHED_WRR;
    if (!st || !st->name || !st->server_keys || !st->weights || !st->seen || (stride && !st->cur) ||
        ((sch == RC_SCHED_SCH || sch == RC_SCHED_UCH) && ring_build(st, g) != 0) ||
        (g->model && sticky_build(st, g) != 0)) {
        uv_mutex_unlock(&r->lock);
        state_free(st);
        return NULL;
    }
    if (st->cur)
        memset(st->cur, 0, (size_t)r->n_workers * stride * sizeof(int));
    for (size_t i = 0; i < n; i++) {
        snprintf(st->server_keys[i], sizeof st->server_keys[i], "%s", g->servers[i].key);
        st->weights[i] = g->servers[i].weight;
    }
    slow_start_enter(prev, g, now_ms());
    for (size_t i = 0; i < n; i++)
        atomic_init(&st->seen[i], px_backend_usable(g->servers[i].backend));
    atomic_init(&st->refs, 1);
    memcpy(st->key, key, sizeof st->key);
    st->n_servers = n;
    st->stride = stride;
    st->key_hash = key_hash;
    st->name_hash = name_hash;
    st->next_key = *kb;
    *kb = st;
    st->next_name = *nb;
    *nb = st;
    r->n_lb_states++;
    uv_mutex_unlock(&r->lock);
    return st;
}

struct px_lb_state *px_lb_state_ref(struct px_lb_state *st)
{
    if (st)
        atomic_fetch_add_explicit(&st->refs, 1, memory_order_relaxed);
    return st;
}

void px_lb_state_unref(struct px_lb_state *st)
{
    if (!st || atomic_fetch_sub_explicit(&st->refs, 1, memory_order_acq_rel) != 1)
        return;
    struct px_registry *r = st->reg;
    uv_mutex_lock(&r->lock);
    struct px_lb_state **pp = &r->lb_by_key[st->key_hash % PX_LB_BUCKETS];
    while (*pp && *pp != st)
        pp = &(*pp)->next_key;
    if (*pp)
        *pp = st->next_key;
    pp = &r->lb_by_name[st->name_hash % PX_LB_BUCKETS];
    while (*pp && *pp != st)
        pp = &(*pp)->next_name;
    if (*pp) {
        *pp = st->next_name;
        r->n_lb_states--;
    }
    uv_mutex_unlock(&r->lock);
    state_free(st);
}

int px_lb_slow_start(const struct px_group *g, const struct px_server *s, uint64_t now)
{
    if (!g->model || !g->model->slow_start.enabled)
        return 1000;
    struct px_backend *b = s->backend;
    uint64_t since = atomic_load_explicit(&b->slow_start, memory_order_relaxed);
    if (since == 0)
        return 1000;
    uint64_t dur = (uint64_t)g->model->slow_start.duration_s * 1000u;
    uint64_t el = now > since ? now - since : 0;
    if (el >= dur) {
        /* The ramp is over: clear the clock (unless it restarted). */
        atomic_compare_exchange_strong(&b->slow_start, &since, 0);
        return 1000;
    }
    uint64_t share = el * 1000u / dur;
    return share ? (int)share : 1;
}

/* Slow start's re-entry: a server whose backend became usable again (its
 * health recovered) since the last pick of this group starts its ramp now.
 * The first worker to see the change (compare-and-swap on seen[i]) sets
 * the clock; a health failure ends the ramp. */
static void watch_health(const struct px_group *g, const struct px_lb_state *st, uint64_t *now)
{
    for (size_t i = 0; i < g->n_servers; i++) {
        struct px_backend *b = g->servers[i].backend;
        unsigned char u = px_backend_usable(b);
        unsigned char was = atomic_load_explicit(&st->seen[i], memory_order_relaxed);
        if (u == was || !atomic_compare_exchange_strong(&st->seen[i], &was, u))
            continue;
        if (!*now)
            *now = now_ms();
        atomic_store_explicit(&b->slow_start, u ? *now : 0, memory_order_relaxed);
    }
}

/* Smooth weighted round robin (each pick: add every weight to its counter,
 * take the largest, subtract the total): spreads a server's turns evenly
 * instead of in bursts. Over the servers of weight > 0 that are usable
 * (check_health). Slow start scales the weights (*now: 0 until read). */
static struct px_server *wrr(const struct px_group *g, int *cur, bool check_health, uint64_t *now)
{
    bool slow = g->model && g->model->slow_start.enabled;
    int total = 0;
    ssize_t best = -1;
    for (size_t i = 0; i < g->n_servers; i++) {
        const struct px_server *s = &g->servers[i];
        if (s->weight <= 0 || (check_health && !px_backend_usable(s->backend)))
            continue;
        int w = s->weight;
        if (slow) {
            w *= SLOW_SCALE;
            if (atomic_load_explicit(&s->backend->slow_start, memory_order_relaxed)) {
                if (!*now)
                    *now = now_ms();
                int share = px_lb_slow_start(g, s, *now);
                w = (int)((int64_t)w * share / 1000);
                if (w < 1)
                    w = 1;
            }
        }
        cur[i] += w;
        total += w;
        if (best < 0 || cur[i] > cur[best])
            best = (ssize_t)i;
    }
    if (best < 0)
        return NULL;
    cur[best] -= total;
    return &g->servers[best];
}

/* Weighted least connections: the servers with the fewest in-flight
 * requests (every worker's, the registry's counts) per unit of weight;
 * among equals, smooth Wrr, so ties go round in proportion to weight.
 * Two passes (the least load, then the rotation among the servers at it):
 * other workers may change the counts between them, so a server whose
 * load rose drops out of the tie and, if none is left, the first pass's
 * choice stands. */
static struct px_server *wlc(const struct px_group *g, int *cur, bool check_health)
{
    ssize_t best = -1;
    long best_n = 0, best_w = 1;
    for (size_t i = 0; i < g->n_servers; i++) {
        const struct px_server *s = &g->servers[i];
        if (s->weight <= 0 || (check_health && !px_backend_usable(s->backend)))
            continue;
        long n = atomic_load_explicit(&s->backend->inflight, memory_order_relaxed);
        if (best < 0 || n * best_w < best_n * s->weight) { /* n/w < best_n/best_w */
            best = (ssize_t)i;
            best_n = n;
            best_w = s->weight;
        }
    }
    if (best < 0)
        return NULL;
    int total = 0;
    ssize_t pickd = -1;
    for (size_t i = 0; i < g->n_servers; i++) {
        const struct px_server *s = &g->servers[i];
        if (s->weight <= 0 || (check_health && !px_backend_usable(s->backend)))
            continue;
        long n = atomic_load_explicit(&s->backend->inflight, memory_order_relaxed);
        if (n * best_w != best_n * s->weight)
            continue;
        cur[i] += s->weight;
        total += s->weight;
        if (pickd < 0 || cur[i] > cur[pickd])
            pickd = (ssize_t)i;
    }
    if (pickd < 0)
        return &g->servers[best];
    cur[pickd] -= total;
    return &g->servers[pickd];
}

/* Consistent hashing: the first point at or after h (wrapping) whose
 * server is usable (check_health). */
static struct px_server *ring_pick(const struct px_group *g, const struct px_lb_state *st,
                                   uint64_t h, bool check_health)
{
    size_t n = st->n_ring;
    if (n == 0)
        return NULL;
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (st->ring[mid].h < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t k = 0; k < n; k++) {
        struct px_server *s = &g->servers[st->ring[(lo + k) % n].server];
        if (!check_health || px_backend_usable(s->backend))
            return s;
    }
    return NULL;
}

static struct px_server *pick(const struct px_group *g, int *cur, const struct px_lb_key *key,
                              bool check_health, uint64_t *now)
{
    switch (g->model ? g->model->scheduler : RC_SCHED_WRR) {
    case RC_SCHED_WLC:
        return wlc(g, cur, check_health);
    case RC_SCHED_SCH:
    case RC_SCHED_UCH:
        if (key && key->has_hash)
            return ring_pick(g, g->lb, key->hash, check_health);
        break;
    case RC_SCHED_WRR:
        break;
    }
    return wrr(g, cur, check_health, now);
}

struct px_server *px_lb_pick(const struct px_group *g, int worker, const struct px_lb_key *key)
{
    const struct px_lb_state *st = g->lb;
    if (!st || g->n_servers == 0)
        return NULL;
    struct px_server *sticky = key ? key->sticky : NULL;
    if (sticky && sticky->weight > 0 && px_backend_usable(sticky->backend))
        return sticky;
    uint64_t now = 0;
    if (g->model && g->model->slow_start.enabled)
        watch_health(g, st, &now);
    int *cur = st->cur + (size_t)worker * st->stride;
    struct px_server *s = pick(g, cur, key, true, &now);
    if (!s && (!g->model || g->model->fail_open))
        s = pick(g, cur, key, false, &now); /* every server unhealthy: fail open */
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

/* The value of query parameter name in q (n bytes, after the "?"), as
 * sent; false when absent. */
static bool query_param(const char *q, size_t n, const char *name, const char **v, size_t *vlen)
{
    size_t nl = strlen(name);
    const char *end = q + n;
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(pe - q));
        const char *ke = eq ? eq : pe;
        if ((size_t)(ke - q) == nl && memcmp(q, name, nl) == 0) {
            *v = eq ? eq + 1 : pe;
            *vlen = (size_t)(pe - *v);
            return true;
        }
        q = pe + (amp ? 1 : 0);
    }
    return false;
}

void px_lb_key_from_req(struct px_lb_key *key, const struct px_group *g, const struct px_req *r)
{
    *key = (struct px_lb_key){0};
    if (!g || !g->model || !g->lb)
        return;
    if (g->model->scheduler == RC_SCHED_SCH) {
        key->hash = cm_hash(r->client_addr.b, sizeof r->client_addr.b);
        key->has_hash = true;
    } else if (g->model->scheduler == RC_SCHED_UCH && g->model->uch_query_parameter && r->query) {
        const char *v;
        size_t vl;
        if (query_param(r->query, r->query_len, g->model->uch_query_parameter, &v, &vl)) {
            key->hash = cm_hash(v, vl);
            key->has_hash = true;
        }
    }
    if (g->model->sticky.enabled)
        key->sticky = px_sticky_server(g, r);
}

const char *px_lb_cookie_of(const struct px_group *g, const struct px_server *s)
{
    const struct px_lb_state *st = g->lb;
    if (!st || !st->cookie || s < g->servers || s >= g->servers + g->n_servers)
        return NULL;
    return st->cookie[s - g->servers];
}

struct px_server *px_lb_by_cookie(const struct px_group *g, const char *v, size_t n)
{
    const struct px_lb_state *st = g->lb;
    if (!st || !st->cookie || n != PX_STICKY_VALUE_LEN)
        return NULL;
    size_t lo = 0, hi = st->n_servers;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(st->by_cookie[mid].v, v, n);
        if (c == 0)
            return &g->servers[st->by_cookie[mid].server];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

uint32_t px_lb_ident_of(const struct px_group *g, const struct px_server *s)
{
    const struct px_lb_state *st = g->lb;
    if (st && st->ident && s >= g->servers && s < g->servers + g->n_servers)
        return st->ident[s - g->servers];
    return (uint32_t)cm_hash_str(s->key);
}

struct px_server *px_lb_by_ident(const struct px_group *g, uint32_t ident)
{
    const struct px_lb_state *st = g->lb;
    if (!st || !st->ident)
        return NULL;
    for (size_t i = 0; i < g->n_servers; i++)
        if (st->ident[i] == ident)
            return &g->servers[i];
    return NULL;
}
