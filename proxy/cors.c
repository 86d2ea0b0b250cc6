/* The cors action: preflight answers and the response filter (see
 * proxy/cors.h). */
#include "proxy/cors.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "reconciler/model-t.h"

static bool name_is(const struct px_hdr *h, const char *name)
{
    size_t l = strlen(name);
    return h->name_len == l && strncasecmp(h->name, name, l) == 0;
}

static const struct px_hdr *find(const struct px_hdr *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (name_is(&h[i], name))
            return &h[i];
    return NULL;
}

bool px_cors_is_preflight(const struct px_req *r)
{
    return strcmp(r->method, "OPTIONS") == 0 && find(r->hdrs, r->n_hdrs, "origin") &&
           find(r->hdrs, r->n_hdrs, "access-control-request-method");
}

static bool allowed(const struct rc_cors *co, const char *o, size_t len)
{
    if (len == 0 || len >= PX_CORS_ORIGIN_MAX)
        return false;
    if (co->any_origin)
        return true;
    for (size_t i = 0; i < co->n_origins; i++)
        if (strlen(co->origins[i]) == len && strncasecmp(co->origins[i], o, len) == 0)
            return true;
    return false;
}

/* The Access-Control-Allow-Origin value for allowed origin o. */
static struct px_hdr allow_origin(const struct rc_cors *co, const char *o, size_t len)
{
    if (co->any_origin && !co->credentials)
        return (struct px_hdr){"access-control-allow-origin", 27, "*", 1};
    return (struct px_hdr){"access-control-allow-origin", 27, o, len};
}

static struct px_hdr field(const char *name, const char *v)
{
    return (struct px_hdr){name, strlen(name), v, strlen(v)};
}

int px_cors_answer_preflight(struct px_req *r, const struct rc_cors *co, const struct px_sink *sink,
                             void *owner)
{
    const struct px_hdr *oh = find(r->hdrs, r->n_hdrs, "origin");
    char origin[PX_CORS_ORIGIN_MAX];
    size_t olen = 0;
    if (oh && oh->value_len < sizeof origin) {
        memcpy(origin, oh->value, oh->value_len);
        olen = oh->value_len;
    }
    char age[16];
    struct px_hdr *f = r->hdrs; /* the request's fields are not read below */
    size_t n = 0;
    f[n++] = field("vary", "Origin");
    if (allowed(co, origin, olen)) {
        f[n++] = allow_origin(co, origin, olen);
        if (co->methods_j)
            f[n++] = field("access-control-allow-methods", co->methods_j);
        if (co->headers_j)
            f[n++] = field("access-control-allow-headers", co->headers_j);
        if (co->has_max_age) {
            snprintf(age, sizeof age, "%d", co->max_age);
            f[n++] = field("access-control-max-age", age);
        }
        if (co->credentials)
            f[n++] = field("access-control-allow-credentials", "true");
    }
    struct px_resp_head rh = {.status = 204, .reason = "", .h = f, .n = n, .has_length = true};
    if (sink->head(owner, &rh) < 0)
        return -1;
    return sink->end(owner) < 0 ? -1 : 0;
}

static int f_head(void *owner, const struct px_resp_head *rh)
{
    struct px_cors_f *cf = owner;
    if (rh->status < 200 || rh->n + 4 > PX_HDR_MAX)
        return cf->next->head(cf->next_owner, rh);
    const struct rc_cors *co = cf->co;
    struct px_hdr h[PX_HDR_MAX];
    size_t k = 0;
    for (size_t i = 0; i < rh->n; i++)
        if (rh->h[i].name_len < 15 || strncasecmp(rh->h[i].name, "access-control-", 15) != 0)
            h[k++] = rh->h[i];
    h[k++] = allow_origin(co, cf->origin, cf->origin_len);
    if (co->credentials)
        h[k++] = field("access-control-allow-credentials", "true");
    if (co->expose_j)
        h[k++] = field("access-control-expose-headers", co->expose_j);
    h[k++] = field("vary", "Origin");
    struct px_resp_head out = *rh;
    out.h = h;
    out.n = k;
    return cf->next->head(cf->next_owner, &out);
}

static int f_data(void *owner, const char *at, size_t len)
{
    struct px_cors_f *cf = owner;
    return cf->next->data(cf->next_owner, at, len);
}

static int f_trailers(void *owner, const struct px_hdr *h, size_t n)
{
    struct px_cors_f *cf = owner;
    return cf->next->trailers ? cf->next->trailers(cf->next_owner, h, n) : 0;
}

static int f_end(void *owner)
{
    struct px_cors_f *cf = owner;
    return cf->next->end(cf->next_owner);
}

static void f_abort(void *owner, int status)
{
    struct px_cors_f *cf = owner;
    cf->next->abort(cf->next_owner, status);
}

static const struct px_sink filter = {
    .head = f_head,
    .data = f_data,
    .trailers = f_trailers,
    .end = f_end,
    .abort = f_abort,
};

void px_cors_attach(struct px_exchange *x, const struct px_req *r, const struct rc_cors *co,
                    const struct px_sink **sink)
{
    const struct px_hdr *oh = co ? find(r->hdrs, r->n_hdrs, "origin") : NULL;
    if (!oh || !allowed(co, oh->value, oh->value_len))
        return;
    struct px_cors_f *cf = &x->cors;
    cf->next = *sink;
    cf->next_owner = x->sink_owner;
    cf->co = co;
    memcpy(cf->origin, oh->value, oh->value_len);
    cf->origin_len = oh->value_len;
    x->sink_owner = cf;
    *sink = &filter;
}
