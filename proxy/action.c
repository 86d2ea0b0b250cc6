/* Actions albd carries out itself (action.h). */
#include "proxy/action.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "proxy/router.h"
#include "proxy/snapshot-t.h"

/* xorshift64*, one state per thread: weighted choice needs no more. */
static uint64_t next_random(void)
{
    static _Thread_local uint64_t state;
    if (!state) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        state = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (uintptr_t)&state;
        state |= 1;
    }
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 0x2545f4914f6cdd1dull;
}

struct px_group *px_action_pick_group(const struct px_listener *lis, const struct rc_action *a)
{
    int total = 0;
    for (size_t i = 0; i < a->forward.n_groups; i++)
        total += a->forward.weights[i];
    if (a->forward.n_groups == 1)
        total = total ? total : 1; /* one group: its weight does not matter */
    if (total <= 0)
        return NULL;
    int pick = a->forward.n_groups == 1 ? 0 : (int)(next_random() % (uint64_t)total);
    for (size_t i = 0; i < a->forward.n_groups; i++) {
        pick -= a->forward.weights[i];
        if (pick < 0 || a->forward.n_groups == 1)
            return &lis->groups[a->forward.groups[i] - lis->model_groups];
    }
    return NULL;
}

struct out {
    char *p;
    size_t n, size;
    bool over;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->over || o->size - o->n <= n) {
        o->over = true;
        return;
    }
    memcpy(o->p + o->n, s, n);
    o->n += n;
}

struct vars {
    const char *protocol, *host, *port, *path, *query;
    size_t host_len, path_len, query_len;
};

/* Appends template t with its variables replaced. */
static void subst(struct out *o, const char *t, const struct vars *v)
{
    while (*t) {
        const char *d = strstr(t, "${");
        if (!d) {
            put(o, t, strlen(t));
            return;
        }
        put(o, t, (size_t)(d - t));
        const char *e = strchr(d, '}');
        if (!e) {
            put(o, d, strlen(d));
            return;
        }
        size_t n = (size_t)(e - d + 1);
        if (n == 11 && !memcmp(d, "${protocol}", n))
            put(o, v->protocol, strlen(v->protocol));
        else if (n == 7 && !memcmp(d, "${host}", n))
            put(o, v->host, v->host_len);
        else if (n == 7 && !memcmp(d, "${port}", n))
            put(o, v->port, strlen(v->port));
        else if (n == 7 && !memcmp(d, "${path}", n))
            put(o, v->path, v->path_len);
        else if (n == 8 && !memcmp(d, "${query}", n))
            put(o, v->query, v->query_len);
        else
            put(o, d, n); /* validation refuses any other */
        t = e + 1;
    }
}

long px_action_location(const struct px_req *r, const struct rc_action *a, char *out, size_t size)
{
    char host[256];
    size_t hl =
        r->authority ? px_router_host(r->authority, r->authority_len, host, sizeof host) : 0;
    size_t pl = r->query ? (size_t)(r->query - 1 - r->path) : r->path_len;
    struct vars v = {
        .protocol = r->lis->scheme,
        .host = host,
        .host_len = hl,
        .port = r->lis->port_str,
        .path = r->path_slash ? "/" : r->path,
        .path_len = r->path_slash ? 1 : pl,
        .query = r->query ? r->query : "",
        .query_len = r->query ? r->query_len : 0,
    };
    struct out o = {out, 0, size, false};
    char proto[8], port[16];
    struct out po = {proto, 0, sizeof proto, false}, pp = {port, 0, sizeof port, false};
    subst(&po, a->redirect.protocol, &v);
    subst(&pp, a->redirect.port, &v);
    if (po.over || pp.over)
        return -1;
    proto[po.n] = port[pp.n] = '\0';
    put(&o, proto, po.n);
    put(&o, "://", 3);
    subst(&o, a->redirect.host, &v);
    bool dflt = (!strcmp(proto, "http") && !strcmp(port, "80")) ||
                (!strcmp(proto, "https") && !strcmp(port, "443"));
    if (!dflt) {
        put(&o, ":", 1);
        put(&o, port, pp.n);
    }
    subst(&o, a->redirect.path, &v);
    size_t before = o.n;
    put(&o, "?", 1);
    subst(&o, a->redirect.query, &v);
    if (o.n == before + 1)
        o.n = before; /* an empty query: no '?' */
    if (o.over)
        return -1;
    out[o.n] = '\0';
    return (long)o.n;
}

int px_action_answer(struct px_req *r, const struct px_action *a, const struct px_sink *sink,
                     void *owner)
{
    const struct rc_action *ac = a->answer;
    struct px_hdr *f = r->hdrs;
    size_t n = 0;
    char *loc = NULL;
    char clen[24];
    const char *body = "";
    size_t body_len = 0;
    int status;
    if (!ac) { /* a trafficLimit refusal */
        status = a->limited_status;
        f[n++] = (struct px_hdr){"alb-qps-limited", 15, "Limited", 7};
    } else if (ac->kind == RC_ACTION_REDIRECT) {
        size_t size = 3 * (r->target_len + r->authority_len) + 1024;
        if (!(loc = malloc(size)))
            return -1;
        long ll = px_action_location(r, ac, loc, size);
        if (ll < 0) {
            free(loc);
            return -1;
        }
        status = ac->redirect.code;
        f[n++] = (struct px_hdr){"location", 8, loc, (size_t)ll};
    } else {
        status = ac->fixed.code;
        body = ac->fixed.content;
        body_len = ac->fixed.content_len;
        f[n++] = (struct px_hdr){"content-type", 12, ac->fixed.content_type,
                                 strlen(ac->fixed.content_type)};
    }
    if (status == 204)
        body_len = 0; /* no content, and no Content-Length (RFC 9110 8.6) */
    else {
        snprintf(clen, sizeof clen, "%zu", body_len);
        f[n++] = (struct px_hdr){"content-length", 14, clen, strlen(clen)};
    }
    struct px_resp_head rh = {.status = status, .reason = "", .h = f, .n = n, .has_length = true};
    int rc = sink->head(owner, &rh);
    free(loc);
    if (rc < 0)
        return -1;
    if (body_len && !r->is_head && sink->data(owner, body, body_len) < 0)
        return -1;
    return sink->end(owner) < 0 ? -1 : 0;
}

static bool name_is(const struct px_hdr *h, const char *name)
{
    size_t l = strlen(name);
    return h->name_len == l && strncasecmp(h->name, name, l) == 0;
}

/* Removes every field named name; returns the new count. */
static size_t drop_named(struct px_hdr *h, size_t n, const char *name)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!name_is(&h[i], name))
            h[k++] = h[i];
    return k;
}

static int rewrite(struct px_req *r, const struct rc_rule *ru, char **scratch)
{
    size_t size = 3 * (r->target_len + r->authority_len) + 1024;
    char *buf = malloc(size);
    if (!buf)
        return 500;
    *scratch = buf;
    char host[256];
    size_t hl =
        r->authority ? px_router_host(r->authority, r->authority_len, host, sizeof host) : 0;
    size_t pl = r->query ? (size_t)(r->query - 1 - r->path) : r->path_len;
    struct vars v = {
        .protocol = r->lis->scheme,
        .host = host,
        .host_len = hl,
        .port = r->lis->port_str,
        .path = r->path_slash ? "/" : r->path,
        .path_len = r->path_slash ? 1 : pl,
        .query = r->query ? r->query : "",
        .query_len = r->query ? r->query_len : 0,
    };
    struct out o = {buf, 0, size, false};
    const char *nhost = NULL;
    size_t nhost_len = 0;
    if (ru->rewrite_host) {
        subst(&o, ru->rewrite_host, &v);
        nhost = buf;
        nhost_len = o.n;
        put(&o, "", 0);
    }
    size_t path_at = o.n;
    subst(&o, ru->rewrite_path ? ru->rewrite_path : "${path}", &v);
    size_t q_at = o.n + 1;
    bool has_q = ru->rewrite_query ? true : r->query != NULL;
    if (has_q) {
        put(&o, "?", 1);
        subst(&o, ru->rewrite_query ? ru->rewrite_query : "${query}", &v);
        if (ru->rewrite_query && o.n == q_at) {
            o.n--; /* an empty query: no '?' */
            has_q = false;
        }
    }
    if (o.over)
        return 500;
    r->path = buf + path_at;
    r->path_len = o.n - path_at;
    r->path_slash = false;
    r->query = has_q ? buf + q_at : NULL;
    r->query_len = has_q ? o.n - q_at : 0;
    if (nhost) {
        r->authority = nhost;
        r->authority_len = nhost_len;
        size_t i = 0;
        while (i < r->n_hdrs && !name_is(&r->hdrs[i], "host"))
            i++;
        if (i == r->n_hdrs) {
            if (r->n_hdrs >= PX_HDR_MAX)
                return 431;
            r->hdrs[r->n_hdrs++] = (struct px_hdr){"Host", 4, nhost, nhost_len};
        } else {
            r->hdrs[i].value = nhost;
            r->hdrs[i].value_len = nhost_len;
        }
    }
    return 0;
}

int px_action_request_extras(struct px_req *r, const struct rc_rule *ru, char **scratch)
{
    *scratch = NULL;
    if (ru->rewrite_host || ru->rewrite_path || ru->rewrite_query) {
        int st = rewrite(r, ru, scratch);
        if (st)
            return st;
    }
    for (size_t i = 0; i < ru->n_remove_headers; i++)
        r->n_hdrs = drop_named(r->hdrs, r->n_hdrs, ru->remove_headers[i]);
    /* Values first: a ReferenceHeader copies the request as it came. */
    enum { MAX_INSERT = 16 };
    struct px_hdr add[MAX_INSERT];
    size_t n_add = 0;
    for (size_t i = 0; i < ru->n_insert_headers && n_add < MAX_INSERT; i++) {
        const struct rc_header_op *op = &ru->insert_headers[i];
        const char *v = NULL;
        size_t vl = 0;
        if (op->type == RC_HDR_USER) {
            v = op->value;
        } else if (op->type == RC_HDR_REFERENCE) {
            for (size_t k = 0; k < r->n_hdrs && !v; k++)
                if (name_is(&r->hdrs[k], op->value)) {
                    v = r->hdrs[k].value;
                    vl = r->hdrs[k].value_len;
                }
            if (!v)
                continue;
        } else {
            const struct rc_listener *m = r->lis->model;
            switch (op->system) {
            case RC_SYS_CLIENT_SRC_PORT:
                v = r->client ? r->client->port : "";
                break;
            case RC_SYS_CLIENT_SRC_IP:
                v = r->client_ip;
                break;
            case RC_SYS_PROTOCOL:
                v = r->lis->scheme;
                break;
            case RC_SYS_SLB_ID:
                v = m && m->instance ? m->instance->id : "";
                break;
            case RC_SYS_SLB_PORT:
                v = r->lis->port_str;
                break;
            }
        }
        if (op->type != RC_HDR_REFERENCE)
            vl = strlen(v);
        add[n_add++] = (struct px_hdr){op->name, strlen(op->name), v, vl};
    }
    for (size_t i = 0; i < n_add; i++) {
        r->n_hdrs = drop_named(r->hdrs, r->n_hdrs, add[i].name);
        if (r->n_hdrs >= PX_HDR_MAX)
            return 431;
        r->hdrs[r->n_hdrs++] = add[i];
    }
    return 0;
}
