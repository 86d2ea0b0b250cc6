/* trafficMirror copies (see mirror.h). */
#include "proxy/mirror.h"

#include <stdlib.h>
#include <string.h>

#include "proxy/backend_h1.h"
#include "proxy/lb.h"
#include "proxy/snapshot.h"
#include "proxy/upstream.h"

struct px_mirror {
    struct px_worker *w;
    struct px_snapshot *snap; /* one reference: the group and server live in it */
    struct px_upstream *u;    /* NULL once released */
    uv_timer_t timer;
    bool done;
    bool head_req;
    int req_minor; /* of the head sent (px_backend_h1_minor) */
    char *head;
    size_t head_len;
    struct px_bresp bp;
    struct px_buf hin;
    struct px_hdrlist hl;
    struct px_hdr_ent ents[PX_HDR_MAX];
    struct px_hdr scratch[PX_HDR_MAX];
    struct px_mirror *prev, *next;
};

static int sink_head(void *o, const struct px_resp_head *rh)
{
    (void)o, (void)rh;
    return 0;
}
static int sink_data(void *o, const char *at, size_t len)
{
    (void)o, (void)at, (void)len;
    return 0;
}
static int sink_trailers(void *o, const struct px_hdr *h, size_t n)
{
    (void)o, (void)h, (void)n;
    return 0;
}
static int sink_end(void *o)
{
    (void)o;
    return 0;
}
static void sink_abort(void *o, int status)
{
    (void)o, (void)status;
}
static const struct px_sink discard = {sink_head, sink_data, sink_trailers, sink_end, sink_abort};

bool px_mirror_eligible(const struct px_req *r)
{
    return r->body == PX_FRAME_NONE && !r->upgrade;
}

static void on_closed(uv_handle_t *h)
{
    struct px_mirror *m = h->data;
    px_buf_cleanup(&m->hin);
    px_snapshot_unref(m->snap);
    free(m->head);
    free(m);
}

/* Ends m once: gives its connection back (to the pool when keep), counts
 * the outcome, unlinks it and frees it after its timer closed. */
static void finish(struct px_mirror *m, bool ok, bool keep)
{
    if (m->done)
        return;
    m->done = true;
    if (m->u)
        px_upstream_release(m->u, keep);
    m->u = NULL;
    struct px_worker *w = m->w;
    atomic_fetch_add_explicit(ok ? &w->stats.mirror_sent : &w->stats.mirror_failed, 1,
                              memory_order_relaxed);
    if (m->prev)
        m->prev->next = m->next;
    else
        w->mirrors = m->next;
    if (m->next)
        m->next->prev = m->prev;
    w->n_mirrors--;
    uv_timer_stop(&m->timer);
    uv_close((uv_handle_t *)&m->timer, on_closed);
}

static void send_head(struct px_mirror *m)
{
    uv_buf_t b = uv_buf_init(m->head, (unsigned)m->head_len);
    px_bresp_init(&m->bp, &discard, m, &m->hin, &m->hl, m->scratch, m->head_req, false);
    if (px_upstream_write(m->u, &b, 1) < 0)
        finish(m, false, false);
}

static void up_on_connect(void *owner, struct px_upstream *u, int status)
{
    struct px_mirror *m = owner;
    (void)u;
    if (status < 0) {
        m->u = NULL; /* already closing */
        finish(m, false, false);
        return;
    }
    send_head(m);
}

static void up_on_read(void *owner, struct px_upstream *u, const char *data, ssize_t n)
{
    struct px_mirror *m = owner;
    (void)u;
    if (n < 0) {
        bool ok = n == UV_EOF && m->bp.any && px_bresp_eof(&m->bp);
        finish(m, ok, false);
        return;
    }
    switch (px_bresp_feed(&m->bp, data, (size_t)n, NULL)) {
    case PX_BRESP_MORE:
        return;
    case PX_BRESP_DONE:
        finish(m, true, px_bresp_keepalive(&m->bp, m->req_minor));
        return;
    case PX_BRESP_LEFTOVER:
    case PX_BRESP_UPGRADE:
        finish(m, true, false);
        return;
    case PX_BRESP_BAD:
        finish(m, false, false);
        return;
    }
}

static void up_on_writable(void *owner, struct px_upstream *u)
{
    (void)owner, (void)u;
}

static const struct px_upstream_cbs up_cbs = {up_on_connect, up_on_read, up_on_writable};

static void on_timeout(uv_timer_t *t)
{
    finish(t->data, false, false);
}

/* The mirror group in w's newest snapshot: the listener's own group when
 * the request came on that snapshot, else the group of the same name. */
static struct px_group *mirror_group(struct px_worker *w, const struct px_req *r,
                                     const struct rc_rule *rule)
{
    const struct px_listener *lis = r->lis;
    struct px_snapshot *s = w->snap;
    if (!s || !lis->groups)
        return NULL;
    if (lis->groups == s->groups)
        return &s->groups[rule->mirror_group - lis->model_groups];
    for (size_t i = 0; i < s->n_groups; i++)
        if (!strcmp(s->groups[i].model->meta.name, rule->mirror_group->meta.name))
            return &s->groups[i];
    return NULL;
}

static void dropped(struct px_worker *w)
{
    atomic_fetch_add_explicit(&w->stats.mirror_dropped, 1, memory_order_relaxed);
}

void px_mirror_send(struct px_worker *w, const struct px_req *r, const struct rc_rule *rule,
                    const char *head, size_t len)
{
    if (!w || !rule->mirror_group)
        return;
    if (w->draining || w->n_mirrors >= PX_MIRROR_MAX_INFLIGHT) {
        dropped(w);
        return;
    }
    struct px_group *g = mirror_group(w, r, rule);
    struct px_lb_key key;
    px_lb_key_from_req(&key, g, r);
    struct px_server *s = g ? px_lb_pick(g, w->id, &key) : NULL;
    struct px_mirror *m = s ? calloc(1, sizeof *m) : NULL;
    char *copy = m ? malloc(len) : NULL;
    if (!copy) {
        free(m);
        dropped(w);
        return;
    }
    memcpy(copy, head, len);
    m->w = w;
    m->head = copy;
    m->head_len = len;
    m->head_req = r->is_head;
    m->req_minor = px_backend_h1_minor(r);
    m->hl.ents = m->ents;
    px_buf_init(&m->hin, PX_BACKEND_MAX_HEAD);
    bool reused = false;
    if (px_upstream_acquire(w, s, true, &up_cbs, m, &m->u, &reused) < 0) {
        px_buf_cleanup(&m->hin);
        free(copy);
        free(m);
        atomic_fetch_add_explicit(&w->stats.mirror_failed, 1, memory_order_relaxed);
        return;
    }
    m->snap = px_snapshot_ref(w->snap);
    uv_timer_init(&w->loop, &m->timer);
    m->timer.data = m;
    uv_timer_start(&m->timer, on_timeout, PX_MIRROR_TIMEOUT_MS, 0);
    m->next = w->mirrors;
    if (m->next)
        m->next->prev = m;
    w->mirrors = m;
    w->n_mirrors++;
    if (reused)
        send_head(m);
}

void px_mirror_abort_all(struct px_worker *w)
{
    while (w->mirrors)
        finish(w->mirrors, false, false);
}
