/* Group-level stickiness (see proxy/group_sticky.h). */
#include "proxy/group_sticky.h"

#include <stdio.h>
#include <string.h>

#include "proxy/snapshot-t.h"
#include "proxy/sticky.h"
#include "reconciler/model-t.h"

struct px_group *px_group_sticky_pick(const struct px_req *r, const struct rc_rule *ru, bool *set)
{
    char name[160];
    *set = true;
    snprintf(name, sizeof name, "albd-group-%s", ru->name);
    const char *v;
    size_t vl;
    if (!px_sticky_cookie(r->hdrs, r->n_hdrs, name, &v, &vl))
        return NULL;
    const struct rc_action *a = &ru->action;
    for (size_t i = 0; i < a->forward.n_groups; i++) {
        const char *gn = a->forward.groups[i]->meta.name;
        if (a->forward.weights[i] > 0 && strlen(gn) == vl && !memcmp(gn, v, vl)) {
            *set = false;
            return &r->lis->groups[a->forward.groups[i] - r->lis->model_groups];
        }
    }
    return NULL;
}

static int f_head(void *owner, const struct px_resp_head *rh)
{
    struct px_gsf *f = owner;
    if (rh->status < 200 || rh->n + 1 > PX_HDR_MAX)
        return f->next->head(f->next_owner, rh);
    struct px_hdr h[PX_HDR_MAX];
    memcpy(h, rh->h, rh->n * sizeof *h);
    h[rh->n] = (struct px_hdr){"set-cookie", 10, f->cookie, f->len};
    struct px_resp_head out = *rh;
    out.h = h;
    out.n = rh->n + 1;
    return f->next->head(f->next_owner, &out);
}

static int f_data(void *owner, const char *at, size_t len)
{
    struct px_gsf *f = owner;
    return f->next->data(f->next_owner, at, len);
}

static int f_trailers(void *owner, const struct px_hdr *h, size_t n)
{
    struct px_gsf *f = owner;
    return f->next->trailers ? f->next->trailers(f->next_owner, h, n) : 0;
}

static int f_end(void *owner)
{
    struct px_gsf *f = owner;
    return f->next->end(f->next_owner);
}

static void f_abort(void *owner, int status)
{
    struct px_gsf *f = owner;
    f->next->abort(f->next_owner, status);
}

static const struct px_sink filter = {
    .head = f_head,
    .data = f_data,
    .trailers = f_trailers,
    .end = f_end,
    .abort = f_abort,
};

void px_group_sticky_attach(struct px_exchange *x, const struct rc_rule *ru,
                            const struct px_group *g, const struct px_sink **sink)
{
    struct px_gsf *f = &x->gsf;
    int n = snprintf(f->cookie, sizeof f->cookie, "albd-group-%s=%s; Max-Age=%d; Path=/; HttpOnly",
                     ru->name, g->model->meta.name, ru->action.forward.sticky_timeout_s);
    if (n <= 0 || (size_t)n >= sizeof f->cookie)
        return;
    f->len = (size_t)n;
    f->next = *sink;
    f->next_owner = x->sink_owner;
    x->sink_owner = f;
    *sink = &filter;
}
