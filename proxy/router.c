/* Forwarding-rule index and matchers (router.h). */
#include "proxy/router.h"

#include <ctype.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/hash.h"
#include "proxy/snapshot-t.h"

/* One key of a table: a literal string and the rules (ascending indices
 * into the listener's rules, which are sorted by priority) that name it. */
struct slot {
    uint64_t h;
    const char *key; /* the model's string (or a part of one) */
    uint32_t len;
    uint32_t n, cap;
    uint32_t *ids;
};

/* Open addressing, power-of-two size, never more than half full. */
struct table {
    struct slot *v;
    size_t cap, n;
    /* The distinct key lengths, ascending: suffix and prefix tables are
     * looked up at these lengths only. */
    uint32_t *lens;
    size_t n_lens;
};

/* One rule's trafficLimit counters (px_router_admit). Words:
 * total: second << 32 | count; slot: tag << 48 | (second & 0xffff) << 32 | count. */
struct limit {
    _Atomic uint64_t total;
    _Atomic uint64_t *slots; /* PX_LIMIT_IP_SLOTS, or NULL without perIpQps */
    uint32_t qps, per_ip;
};

struct px_router {
    atomic_int refs;
    struct limit *limits; /* one per rule, or NULL when no rule has a limit */
    size_t n_rules;
    struct table host_exact, host_tail, path_exact, path_head;
    uint32_t *host_any; /* rules with a host pattern whose tail is empty ("api.*") */
    size_t n_host_any;
    uint32_t *rest; /* rules with neither a host nor a path condition */
    size_t n_rest;
    struct cm_cidr *cidrs; /* every rule's source ranges, in order */
    size_t *cidr_off;      /* rule i's start in cidrs (n_rules + 1 entries) */
    size_t bytes;
    /* What it was built from, as pointer values (never read through: the
     * model they came from may be gone): reuse needs the very same rule
     * strings and arrays, which only a copied listener has. */
    struct ident {
        const char *name;
        const char *const *hosts, *const *paths;
    } * ids;
};

static void *zalloc(struct px_router *rt, size_t n)
{
    rt->bytes += n;
    return calloc(1, n ? n : 1);
}

static int ids_add(struct px_router *rt, uint32_t **v, size_t *n, size_t *cap, uint32_t id)
{
    if (*n && (*v)[*n - 1] == id)
        return 0; /* the same rule through two equal values */
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 2;
        uint32_t *nv = realloc(*v, nc * sizeof *nv);
        if (!nv)
            return -1;
        rt->bytes += (nc - *cap) * sizeof *nv;
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = id;
    return 0;
}

static struct slot *table_find(const struct table *t, const char *s, size_t len, uint64_t h)
{
    if (!t->cap)
        return NULL;
    for (size_t i = h & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        struct slot *sl = &t->v[i];
        if (!sl->key)
            return NULL;
        if (sl->h == h && sl->len == len && memcmp(sl->key, s, len) == 0)
            return sl;
    }
}

static int table_grow(struct px_router *rt, struct table *t)
{
    size_t nc = t->cap ? t->cap * 2 : 16;
    struct slot *nv = zalloc(rt, nc * sizeof *nv);
    if (!nv)
        return -1;
    for (size_t i = 0; i < t->cap; i++) {
        struct slot *o = &t->v[i];
        if (!o->key)
            continue;
        size_t j = o->h & (nc - 1);
        while (nv[j].key)
            j = (j + 1) & (nc - 1);
        nv[j] = *o;
    }
    free(t->v);
    t->v = nv;
    t->cap = nc;
    return 0;
}

static int table_add(struct px_router *rt, struct table *t, const char *key, size_t len,
                     uint32_t id)
{
    uint64_t h = cm_hash(key, len);
    struct slot *sl = table_find(t, key, len, h);
    if (!sl) {
        if ((t->n + 1) * 2 > t->cap && table_grow(rt, t) < 0)
            return -1;
        size_t i = h & (t->cap - 1);
        while (t->v[i].key)
            i = (i + 1) & (t->cap - 1);
        sl = &t->v[i];
        *sl = (struct slot){.h = h, .key = key, .len = (uint32_t)len};
        t->n++;
        size_t k = 0;
        while (k < t->n_lens && t->lens[k] < len)
            k++;
        if (k == t->n_lens || t->lens[k] != len) {
            uint32_t *nl = realloc(t->lens, (t->n_lens + 1) * sizeof *nl);
            if (!nl)
                return -1;
            rt->bytes += sizeof *nl;
            memmove(nl + k + 1, nl + k, (t->n_lens - k) * sizeof *nl);
            nl[k] = (uint32_t)len;
            t->lens = nl;
            t->n_lens++;
        }
    }
    size_t n = sl->n, cap = sl->cap;
    int rc = ids_add(rt, &sl->ids, &n, &cap, id);
    sl->n = (uint32_t)n;
    sl->cap = (uint32_t)cap;
    return rc;
}

static void table_free(struct table *t)
{
    for (size_t i = 0; i < t->cap; i++)
        free(t->v[i].ids);
    free(t->v);
    free(t->lens);
}

struct px_router *px_router_ref(struct px_router *rt)
{
    if (rt)
        atomic_fetch_add_explicit(&rt->refs, 1, memory_order_relaxed);
    return rt;
}

void px_router_unref(struct px_router *rt)
{
    if (!rt || atomic_fetch_sub_explicit(&rt->refs, 1, memory_order_acq_rel) != 1)
        return;
    table_free(&rt->host_exact);
    table_free(&rt->host_tail);
    table_free(&rt->path_exact);
    table_free(&rt->path_head);
    free(rt->host_any);
    free(rt->rest);
    free(rt->cidrs);
    free(rt->cidr_off);
    free(rt->ids);
    if (rt->limits)
        for (size_t i = 0; i < rt->n_rules; i++)
            free((void *)rt->limits[i].slots);
    free(rt->limits);
    free(rt);
}

size_t px_router_bytes(const struct px_router *rt)
{
    return rt ? rt->bytes : 0;
}

struct px_router *px_router_new(const struct rc_listener *l)
{
    if (!l->n_rules || l->n_rules > UINT32_MAX)
        return NULL;
    struct px_router *rt = calloc(1, sizeof *rt);
    if (!rt)
        return NULL;
    atomic_init(&rt->refs, 1);
    rt->bytes = sizeof *rt;
    rt->n_rules = l->n_rules;
    rt->ids = zalloc(rt, l->n_rules * sizeof *rt->ids);
    if (!rt->ids)
        goto fail;
    for (size_t i = 0; i < l->n_rules; i++)
        rt->ids[i] = (struct ident){l->rules[i].name, l->rules[i].hosts, l->rules[i].paths};
    size_t cap_any = 0, cap_rest = 0, n_cidrs = 0;
    for (size_t i = 0; i < l->n_rules; i++)
        n_cidrs += l->rules[i].n_source_ips;
    rt->cidrs = zalloc(rt, n_cidrs * sizeof *rt->cidrs);
    rt->cidr_off = zalloc(rt, (l->n_rules + 1) * sizeof *rt->cidr_off);
    if (!rt->cidrs || !rt->cidr_off)
        goto fail;
    size_t c = 0;
    for (size_t i = 0; i < l->n_rules; i++) {
        const struct rc_rule *ru = &l->rules[i];
        uint32_t id = (uint32_t)i;
        rt->cidr_off[i] = c;
        for (size_t k = 0; k < ru->n_source_ips; k++) {
            const char *s = ru->source_ips[k];
            if (!cm_cidr_parse(s, strlen(s), &rt->cidrs[c]))
                continue; /* validated: cannot happen; never matches */
            c++;
        }
        int rc = 0;
        if (ru->n_hosts) {
            for (size_t k = 0; k < ru->n_hosts && !rc; k++) {
                const char *h = ru->hosts[k];
                size_t len = strlen(h);
                const char *last = NULL;
                for (const char *p = h; *p; p++)
                    if (*p == '*' || *p == '?')
                        last = p;
                if (!last)
                    rc = table_add(rt, &rt->host_exact, h, len, id);
                else if (last[1])
                    rc = table_add(rt, &rt->host_tail, last + 1, strlen(last + 1), id);
                else
                    rc = ids_add(rt, &rt->host_any, &rt->n_host_any, &cap_any, id);
            }
        } else if (ru->n_paths) {
            for (size_t k = 0; k < ru->n_paths && !rc; k++) {
                const char *p = ru->paths[k];
                size_t head = strcspn(p, "*?");
                rc = p[head] ? table_add(rt, &rt->path_head, p, head, id)
                             : table_add(rt, &rt->path_exact, p, head, id);
            }
        } else {
            rc = ids_add(rt, &rt->rest, &rt->n_rest, &cap_rest, id);
        }
        if (rc)
            goto fail;
    }
    rt->cidr_off[l->n_rules] = c;
    for (size_t i = 0; i < l->n_rules; i++) {
        const struct rc_rule *ru = &l->rules[i];
        if (!ru->limit_qps && !ru->limit_per_ip_qps)
            continue;
        if (!rt->limits && !(rt->limits = zalloc(rt, l->n_rules * sizeof *rt->limits)))
            goto fail;
        struct limit *lm = &rt->limits[i];
        lm->qps = (uint32_t)ru->limit_qps;
        lm->per_ip = (uint32_t)ru->limit_per_ip_qps;
        atomic_init(&lm->total, 0);
        if (lm->per_ip) {
            lm->slots = zalloc(rt, PX_LIMIT_IP_SLOTS * sizeof *lm->slots);
            if (!lm->slots)
                goto fail;
        }
    }
    return rt;
fail:
    px_router_unref(rt);
    return NULL;
}

struct px_router *px_router_reuse(const struct rc_listener *l, const struct px_snapshot *prev)
{
    if (!prev || !l->n_rules)
        return NULL;
    for (size_t i = 0; i < prev->n_listeners; i++) {
        const struct px_listener *pl = &prev->listeners[i];
        const struct px_router *rt = pl->router;
        if (!rt || strcmp(pl->model->meta.name, l->meta.name) != 0)
            continue;
        if (rt->n_rules != l->n_rules || strcmp(pl->model->meta.digest, l->meta.digest) != 0)
            return NULL;
        /* A copy keeps the very strings it was built from (rc_rules_reuse):
         * the index points at them. A listener built again does not. */
        for (size_t k = 0; k < l->n_rules; k++)
            if (l->rules[k].name != rt->ids[k].name || l->rules[k].hosts != rt->ids[k].hosts ||
                l->rules[k].paths != rt->ids[k].paths)
                return NULL;
        return px_router_ref(pl->router);
    }
    return NULL;
}

/* --- traffic limits ------------------------------------------------------ */

static bool count_total(_Atomic uint64_t *w, uint32_t sec, uint32_t max)
{
    uint64_t old = atomic_load_explicit(w, memory_order_relaxed), nw;
    do {
        if ((uint32_t)(old >> 32) != sec)
            nw = (uint64_t)sec << 32 | 1;
        else if ((uint32_t)old >= max)
            return false;
        else
            nw = old + 1;
    } while (!atomic_compare_exchange_weak_explicit(w, &old, nw, memory_order_relaxed,
                                                    memory_order_relaxed));
    return true;
}

static bool count_ip(_Atomic uint64_t *w, uint64_t tag, uint32_t sec, uint32_t max)
{
    uint64_t key = tag << 48 | (uint64_t)(sec & 0xffff) << 32;
    uint64_t old = atomic_load_explicit(w, memory_order_relaxed), nw;
    do {
        if ((old & ~(uint64_t)0xffffffff) != key)
            nw = key | 1; /* another second, or another address: starts again */
        else if ((uint32_t)old >= max)
            return false;
        else
            nw = old + 1;
    } while (!atomic_compare_exchange_weak_explicit(w, &old, nw, memory_order_relaxed,
                                                    memory_order_relaxed));
    return true;
}

bool px_router_admit(const struct px_router *rt, size_t i, const struct cm_ip *ip)
{
    if (!rt || !rt->limits || i >= rt->n_rules)
        return true;
    struct limit *lm = &rt->limits[i];
    if (!lm->qps && !lm->per_ip)
        return true;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    uint32_t sec = (uint32_t)ts.tv_sec;
    if (lm->per_ip) {
        uint64_t h = cm_hash(ip->b, sizeof ip->b);
        _Atomic uint64_t *slot = &lm->slots[h & (PX_LIMIT_IP_SLOTS - 1)];
        if (!count_ip(slot, (h >> 48) & 0xffff, sec, lm->per_ip))
            return false;
    }
    return !lm->qps || count_total(&lm->total, sec, lm->qps);
}

/* --- matchers ------------------------------------------------------------ */

static int lc(int ch)
{
    return ch >= 'A' && ch <= 'Z' ? ch + 32 : ch;
}

bool px_glob(const char *p, size_t pl, const char *s, size_t sl, bool icase)
{
    size_t pi = 0, si = 0, star = SIZE_MAX, mark = 0;
    while (si < sl) {
        if (pi < pl && p[pi] == '*') {
            star = pi++;
            mark = si;
        } else if (pi < pl && (p[pi] == '?' || p[pi] == s[si] ||
                               (icase && lc((unsigned char)p[pi]) == lc((unsigned char)s[si])))) {
            pi++;
            si++;
        } else if (star != SIZE_MAX) {
            pi = star + 1;
            si = ++mark;
        } else {
            return false;
        }
    }
    while (pi < pl && p[pi] == '*')
        pi++;
    return pi == pl;
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = lc(ch);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

static bool unreserved(int ch)
{
    return isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

int px_router_normalise(const char *in, size_t len, char *out, size_t *out_len)
{
    size_t o = 0;
    out[o++] = '/'; /* every normalised path starts with '/' */
    size_t i = len && in[0] == '/' ? 1 : 0;
    /* seg: where the segment being written starts in out. */
    size_t seg = o;
    for (;;) {
        /* One segment of the input, decoded. */
        bool end = i >= len;
        char ch = 0;
        if (!end) {
            ch = in[i];
            if (ch == '%') {
                if (i + 2 >= len)
                    return -1;
                int hi = hexval((unsigned char)in[i + 1]);
                int lo = hexval((unsigned char)in[i + 2]);
                if (hi < 0 || lo < 0)
                    return -1;
                int v = hi * 16 + lo;
                if (v == '/' || v == '\\' || v == 0)
                    return -1;
                i += 3;
                if (unreserved(v)) {
                    out[o++] = (char)v;
                } else {
                    static const char hx[] = "0123456789ABCDEF";
                    out[o++] = '%';
                    out[o++] = hx[v >> 4];
                    out[o++] = hx[v & 15];
                }
                continue;
            }
            i++;
            if (ch != '/') {
                out[o++] = ch;
                continue;
            }
        }
        /* A segment ended at out[seg..o). */
        size_t sl = o - seg;
        if (sl == 1 && out[seg] == '.') {
            o = seg; /* "." */
        } else if (sl == 2 && out[seg] == '.' && out[seg + 1] == '.') {
            o = seg; /* "..": drop it and the segment before it */
            if (o > 1) {
                o--; /* the '/' before ".." */
                while (o > 1 && out[o - 1] != '/')
                    o--;
            }
        } else if (!end && sl > 0) {
            out[o++] = '/';
        }
        seg = o;
        if (end)
            break;
    }
    /* A "." or ".." at the end named a directory: its slash stays. */
    *out_len = o;
    return 0;
}

size_t px_router_host(const char *host, size_t len, char *out, size_t size)
{
    size_t n = len;
    if (len && host[0] == '[') {
        const char *rb = memchr(host, ']', len);
        n = rb ? (size_t)(rb - host) + 1 : len;
    } else {
        const char *colon = memchr(host, ':', len);
        if (colon)
            n = (size_t)(colon - host);
    }
    if (n && host[n - 1] == '.')
        n--;
    if (n >= size)
        return 0;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)lc((unsigned char)host[i]);
    out[n] = '\0';
    return n;
}

unsigned px_router_method(const char *m)
{
    static const char *const names[] = {"HEAD", "GET", "POST", "OPTIONS", "PUT", "PATCH", "DELETE"};
    for (unsigned b = 0; b < sizeof names / sizeof names[0]; b++)
        if (strcmp(m, names[b]) == 0)
            return 1u << b;
    return 0;
}

static bool any_glob(const char *const *pats, size_t n, const char *s, size_t sl, bool icase)
{
    for (size_t i = 0; i < n; i++)
        if (px_glob(pats[i], strlen(pats[i]), s, sl, icase))
            return true;
    return false;
}

static bool hdr_named(const struct px_hdr *h, const char *name)
{
    size_t l = strlen(name);
    return h->name_len == l && strncasecmp(h->name, name, l) == 0;
}

static size_t trim(const char **s, size_t n)
{
    while (n && (**s == ' ' || **s == '\t')) {
        (*s)++;
        n--;
    }
    while (n && ((*s)[n - 1] == ' ' || (*s)[n - 1] == '\t'))
        n--;
    return n;
}

static bool header_matches(const struct rc_rule *ru, const struct px_match_req *q)
{
    for (size_t i = 0; i < q->n_hdrs; i++) {
        if (!hdr_named(&q->hdrs[i], ru->header_name))
            continue;
        const char *v = q->hdrs[i].value;
        size_t vl = trim(&v, q->hdrs[i].value_len);
        if (any_glob(ru->header_values, ru->n_header_values, v, vl, false))
            return true;
    }
    return false;
}

static bool kv_matches(const struct rc_kv *kv, size_t n, const char *k, size_t kl, const char *v,
                       size_t vl)
{
    for (size_t i = 0; i < n; i++)
        if (px_glob(kv[i].key, strlen(kv[i].key), k, kl, true) &&
            px_glob(kv[i].value, strlen(kv[i].value), v, vl, true))
            return true;
    return false;
}

/* Percent-decodes s into out (size bytes); SIZE_MAX when it does not fit
 * (then it cannot match a value of at most 128 bytes anyway). */
static size_t pct_decode(const char *s, size_t n, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (o == size)
            return SIZE_MAX;
        int hi, lo;
        if (s[i] == '%' && i + 2 < n && (hi = hexval((unsigned char)s[i + 1])) >= 0 &&
            (lo = hexval((unsigned char)s[i + 2])) >= 0) {
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    return o;
}

static bool query_matches(const struct rc_rule *ru, const struct px_match_req *q)
{
    const char *s = q->query, *end = q->query + q->query_len;
    while (s && s < end) {
        const char *amp = memchr(s, '&', (size_t)(end - s));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(s, '=', (size_t)(pe - s));
        const char *ke = eq ? eq : pe;
        char k[256], v[256];
        size_t kl = pct_decode(s, (size_t)(ke - s), k, sizeof k);
        size_t vl = eq ? pct_decode(eq + 1, (size_t)(pe - eq - 1), v, sizeof v) : 0;
        if (kl != SIZE_MAX && vl != SIZE_MAX && kv_matches(ru->query, ru->n_query, k, kl, v, vl))
            return true;
        s = amp ? amp + 1 : end;
    }
    return false;
}

static bool cookie_matches(const struct rc_rule *ru, const struct px_match_req *q)
{
    for (size_t i = 0; i < q->n_hdrs; i++) {
        if (!hdr_named(&q->hdrs[i], "cookie"))
            continue;
        const char *s = q->hdrs[i].value, *end = s + q->hdrs[i].value_len;
        while (s < end) {
            const char *semi = memchr(s, ';', (size_t)(end - s));
            const char *pe = semi ? semi : end;
            const char *pair = s;
            size_t pl = trim(&pair, (size_t)(pe - s));
            const char *eq = memchr(pair, '=', pl);
            if (eq) {
                const char *k = pair, *v = eq + 1;
                size_t kl = trim(&k, (size_t)(eq - pair));
                size_t vl = trim(&v, (size_t)(pair + pl - v));
                if (kv_matches(ru->cookies, ru->n_cookies, k, kl, v, vl))
                    return true;
            }
            s = semi ? semi + 1 : end;
        }
    }
    return false;
}

static bool ip_matches(const struct rc_rule *ru, const struct cm_cidr *cidrs, size_t n,
                       const struct cm_ip *a)
{
    if (!a)
        return false;
    if (cidrs) {
        for (size_t i = 0; i < n; i++)
            if (cm_cidr_contains(&cidrs[i], a))
                return true;
        return false;
    }
    for (size_t i = 0; i < ru->n_source_ips; i++) {
        struct cm_cidr c;
        if (cm_cidr_parse(ru->source_ips[i], strlen(ru->source_ips[i]), &c) &&
            cm_cidr_contains(&c, a))
            return true;
    }
    return false;
}

static bool rule_matches(const struct rc_rule *ru, const struct cm_cidr *cidrs, size_t n_cidrs,
                         const struct px_match_req *q)
{
    if (ru->n_hosts && !any_glob(ru->hosts, ru->n_hosts, q->host, q->host_len, true))
        return false;
    if (ru->n_paths && !any_glob(ru->paths, ru->n_paths, q->path, q->path_len, false))
        return false;
    if (ru->methods && !(ru->methods & q->method))
        return false;
    if (ru->header_name && !header_matches(ru, q))
        return false;
    if (ru->n_query && !query_matches(ru, q))
        return false;
    if (ru->n_cookies && !cookie_matches(ru, q))
        return false;
    if (ru->n_source_ips && !ip_matches(ru, cidrs, n_cidrs, q->client))
        return false;
    return true;
}

bool px_rule_matches(const struct rc_rule *ru, const struct cm_cidr *cidrs,
                     const struct px_match_req *q)
{
    return rule_matches(ru, cidrs, ru->n_source_ips, q);
}

long px_router_match_linear(const struct rc_listener *l, const struct px_match_req *q)
{
    for (size_t i = 0; i < l->n_rules; i++)
        if (rule_matches(&l->rules[i], NULL, 0, q))
            return (long)i;
    return -1;
}

/* The first of ids (ascending) below *best that matches: updates *best. */
static void scan(const struct px_router *rt, const struct rc_listener *l, const uint32_t *ids,
                 size_t n, const struct px_match_req *q, size_t *best)
{
    for (size_t i = 0; i < n && ids[i] < *best; i++) {
        size_t id = ids[i];
        const struct cm_cidr *c = rt->cidrs + rt->cidr_off[id];
        if (rule_matches(&l->rules[id], c, rt->cidr_off[id + 1] - rt->cidr_off[id], q)) {
            *best = id;
            return;
        }
    }
}

static void scan_slot(const struct px_router *rt, const struct rc_listener *l,
                      const struct table *t, const char *s, size_t len,
                      const struct px_match_req *q, size_t *best)
{
    const struct slot *sl = table_find(t, s, len, cm_hash(s, len));
    if (sl)
        scan(rt, l, sl->ids, sl->n, q, best);
}

long px_router_match(const struct px_router *rt, const struct rc_listener *l,
                     const struct px_match_req *q)
{
    if (!rt)
        return px_router_match_linear(l, q);
    size_t best = SIZE_MAX;
    if (q->host_len) {
        scan_slot(rt, l, &rt->host_exact, q->host, q->host_len, q, &best);
        for (size_t k = 0; k < rt->host_tail.n_lens && rt->host_tail.lens[k] <= q->host_len; k++) {
            size_t len = rt->host_tail.lens[k];
            scan_slot(rt, l, &rt->host_tail, q->host + q->host_len - len, len, q, &best);
        }
    }
    scan(rt, l, rt->host_any, rt->n_host_any, q, &best);
    scan_slot(rt, l, &rt->path_exact, q->path, q->path_len, q, &best);
    for (size_t k = 0; k < rt->path_head.n_lens && rt->path_head.lens[k] <= q->path_len; k++)
        scan_slot(rt, l, &rt->path_head, q->path, rt->path_head.lens[k], q, &best);
    scan(rt, l, rt->rest, rt->n_rest, q, &best);
    return best == SIZE_MAX ? -1 : (long)best;
}
