/* Sticky sessions (see sticky.h). */
#include "proxy/sticky.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/hash.h"
#include "proxy/lb.h"

#define WAYS 4
#define SETS (PX_STICKY_TABLE_ENTRIES / WAYS)

struct px_sticky {
    unsigned char secret[32]; /* HMAC key of Insert values; SipHash key of the table */
    uint64_t k0, k1;
    /* Server table: tag (high 32 bits, never 0) | server identity. */
    _Atomic uint64_t *table;
};

struct px_sticky *px_sticky_new(void)
{
    struct px_sticky *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->table = calloc(PX_STICKY_TABLE_ENTRIES, sizeof *s->table);
    if (!s->table || RAND_bytes(s->secret, sizeof s->secret) != 1) {
        free(s->table);
        free(s);
        return NULL;
    }
    memcpy(&s->k0, s->secret, 8);
    memcpy(&s->k1, s->secret + 8, 8);
    return s;
}

void px_sticky_free(struct px_sticky *s)
{
    if (!s)
        return;
    OPENSSL_cleanse(s->secret, sizeof s->secret);
    OPENSSL_cleanse(&s->k0, sizeof s->k0);
    OPENSSL_cleanse(&s->k1, sizeof s->k1);
    free(s->table);
    free(s);
}

void px_sticky_value(const struct px_sticky *s, const char *key, char out[PX_STICKY_VALUE_LEN + 1])
{
    static const char label[] = "albd sticky v1:";
    unsigned char msg[128], md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    size_t kl = strlen(key);
    if (kl > sizeof msg - sizeof label)
        kl = sizeof msg - sizeof label;
    memcpy(msg, label, sizeof label - 1);
    memcpy(msg + sizeof label - 1, key, kl);
    if (!HMAC(EVP_sha256(), s->secret, sizeof s->secret, msg, sizeof label - 1 + kl, md, &mdlen) ||
        mdlen < PX_STICKY_VALUE_LEN / 2)
        memset(md, 0, sizeof md); /* never happens with SHA-256; no pinning then */
    for (int i = 0; i < PX_STICKY_VALUE_LEN / 2; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* SipHash-2-4 (Aumasson and Bernstein): a keyed hash, so that a client
 * cannot choose cookie values that crowd one set of the table. */
#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = ROTL(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = ROTL(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = ROTL(v2, 32);                                                                         \
    } while (0)

static uint64_t le64(const unsigned char *p, size_t n)
{
    uint64_t m = 0;
    for (size_t i = 0; i < n; i++)
        m |= (uint64_t)p[i] << (8 * i);
    return m;
}

static uint64_t siphash(uint64_t k0, uint64_t k1, const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t v0 = k0 ^ 0x736f6d6570736575ull, v1 = k1 ^ 0x646f72616e646f6dull;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ull, v3 = k1 ^ 0x7465646279746573ull;
    size_t left = len;
    for (; left >= 8; p += 8, left -= 8) {
        uint64_t m = le64(p, 8);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = ((uint64_t)len << 56) | le64(p, left);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

static uint64_t table_hash(const struct px_sticky *s, const char *group, const char *v, size_t n)
{
    return siphash(s->k0, s->k1 ^ cm_hash_str(group), v, n);
}

void px_sticky_remember(struct px_sticky *s, const char *group, const char *v, size_t n,
                        uint32_t ident)
{
    uint64_t h = table_hash(s, group, v, n);
    uint64_t tag = (h >> 32) | 1;
    _Atomic uint64_t *set = s->table + (h % SETS) * WAYS;
    uint64_t e = (tag << 32) | ident;
    int slot = -1;
    for (int i = 0; i < WAYS; i++) {
        uint64_t cur = atomic_load_explicit(&set[i], memory_order_relaxed);
        if (cur >> 32 == tag) {
            slot = i; /* the same value again: update */
            break;
        }
        if (cur == 0 && slot < 0)
            slot = i;
    }
    if (slot < 0)
        slot = (int)((h >> 16) % WAYS); /* full: evict one, chosen by the hash */
    atomic_store_explicit(&set[slot], e, memory_order_relaxed);
}

bool px_sticky_recall(const struct px_sticky *s, const char *group, const char *v, size_t n,
                      uint32_t *ident)
{
    uint64_t h = table_hash(s, group, v, n);
    uint64_t tag = (h >> 32) | 1;
    _Atomic uint64_t *set = s->table + (h % SETS) * WAYS;
    for (int i = 0; i < WAYS; i++) {
        uint64_t cur = atomic_load_explicit(&set[i], memory_order_relaxed);
        if (cur >> 32 == tag) {
            *ident = (uint32_t)cur;
            return true;
        }
    }
    return false;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Finds name in one Cookie field value (RFC 6265 5.4: "a=b; c=d"). */
static bool cookie_in(const char *p, size_t len, const char *name, const char **v, size_t *vlen)
{
    size_t nl = strlen(name);
    const char *end = p + len;
    while (p < end) {
        while (p < end && (is_ows(*p) || *p == ';'))
            p++;
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *pe = semi ? semi : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        if (eq && (size_t)(eq - p) == nl && memcmp(p, name, nl) == 0) {
            const char *a = eq + 1, *b = pe;
            while (a < b && is_ows(*a))
                a++;
            while (b > a && is_ows(b[-1]))
                b--;
            if (b - a >= 2 && *a == '"' && b[-1] == '"') {
                a++;
                b--;
            }
            if (a == b)
                return false;
            *v = a;
            *vlen = (size_t)(b - a);
            return true;
        }
        p = pe;
    }
    return false;
}

bool px_sticky_cookie(const struct px_hdr *h, size_t n, const char *name, const char **v,
                      size_t *vlen)
{
    for (size_t i = 0; i < n; i++)
        if (h[i].name_len == 6 && strncasecmp(h[i].name, "cookie", 6) == 0 &&
            cookie_in(h[i].value, h[i].value_len, name, v, vlen))
            return true;
    return false;
}

struct px_server *px_sticky_server(const struct px_group *g, const struct px_req *r)
{
    const struct rc_server_group *m = g->model;
    const char *v;
    size_t n;
    if (!m->sticky.server) {
        if (!px_sticky_cookie(r->hdrs, r->n_hdrs, PX_STICKY_INSERT_COOKIE, &v, &n))
            return NULL;
        return px_lb_by_cookie(g, v, n);
    }
    struct px_registry *reg = g->n_servers ? g->servers[0].backend->reg : NULL;
    uint32_t ident;
    if (!reg || !reg->sticky || !m->sticky.cookie ||
        !px_sticky_cookie(r->hdrs, r->n_hdrs, m->sticky.cookie, &v, &n) ||
        !px_sticky_recall(reg->sticky, m->meta.name, v, n, &ident))
        return NULL;
    return px_lb_by_ident(g, ident);
}

/* Server: the value of a Set-Cookie field that sets cookie name. */
static bool set_cookie_value(const struct px_hdr *f, const char *name, const char **v, size_t *vl)
{
    if (f->name_len != 10 || strncasecmp(f->name, "set-cookie", 10) != 0)
        return false;
    const char *p = f->value, *end = f->value + f->value_len;
    while (p < end && is_ows(*p))
        p++;
    const char *semi = memchr(p, ';', (size_t)(end - p));
    return cookie_in(p, (size_t)((semi ? semi : end) - p), name, v, vl);
}

static void on_head(void *arg, struct px_resp_head *rh, struct px_hdr *fields, size_t cap)
{
    struct px_exchange *x = arg;
    const struct px_group *g = x->group;
    if (!g || !x->server || !g->model->sticky.enabled)
        return;
    if (g->model->sticky.server) {
        struct px_registry *reg = x->server->backend->reg;
        for (size_t i = 0; i < rh->n && reg->sticky && g->model->sticky.cookie; i++) {
            const char *v;
            size_t vl;
            if (set_cookie_value(&rh->h[i], g->model->sticky.cookie, &v, &vl))
                px_sticky_remember(reg->sticky, g->model->meta.name, v, vl,
                                   px_lb_ident_of(g, x->server));
        }
        return;
    }
    const char *val = px_lb_cookie_of(g, x->server);
    if (!val || rh->n >= cap || rh->h != fields)
        return;
    int len = snprintf(x->set_cookie, sizeof x->set_cookie, "%s=%s; Max-Age=%d; Path=/; HttpOnly",
                       PX_STICKY_INSERT_COOKIE, val, g->model->sticky.cookie_timeout_s);
    if (len <= 0 || (size_t)len >= sizeof x->set_cookie)
        return;
    fields[rh->n++] = (struct px_hdr){"set-cookie", 10, x->set_cookie, (size_t)len};
}

void px_sticky_watch(struct px_exchange *x, struct px_bresp *bp)
{
    if (x->group && x->group->model && x->group->model->sticky.enabled) {
        bp->on_head = on_head;
        bp->on_head_arg = x;
    }
}
