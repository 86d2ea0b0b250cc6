/* Response rules: the filter (see proxy/resp_rules.h). */
#include "proxy/resp_rules.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "proxy/router.h"
#include "reconciler/model-t.h"

static bool name_is(const struct px_hdr *h, const char *name)
{
    size_t l = strlen(name);
    return h->name_len == l && strncasecmp(h->name, name, l) == 0;
}

bool px_resp_rule_matches(const struct rc_rule *ru, int status, const struct px_hdr *h, size_t n)
{
    if (ru->n_statuses) {
        bool ok = false;
        for (size_t i = 0; i < ru->n_statuses && !ok; i++)
            ok = status >= ru->statuses[i][0] && status <= ru->statuses[i][1];
        if (!ok)
            return false;
    }
    if (ru->resp_header_name) {
        bool ok = false;
        for (size_t i = 0; i < n && !ok; i++) {
            if (!name_is(&h[i], ru->resp_header_name))
                continue;
            for (size_t k = 0; k < ru->n_resp_header_values && !ok; k++)
                ok = px_glob(ru->resp_header_values[k], strlen(ru->resp_header_values[k]),
                             h[i].value, h[i].value_len, false);
        }
        if (!ok)
            return false;
    }
    return true;
}

static int fixed(struct px_rrf *f, const struct rc_action *a)
{
    char clen[24];
    struct px_hdr h[2];
    size_t n = 0, body_len = a->fixed.content_len;
    h[n++] =
        (struct px_hdr){"content-type", 12, a->fixed.content_type, strlen(a->fixed.content_type)};
    if (a->fixed.code == 204) {
        body_len = 0;
    } else {
        snprintf(clen, sizeof clen, "%zu", body_len);
        h[n++] = (struct px_hdr){"content-length", 14, clen, strlen(clen)};
    }
    struct px_resp_head rh = {
        .status = a->fixed.code, .reason = "", .h = h, .n = n, .has_length = true};
    f->replaced = true;
    int rc = f->next->head(f->next_owner, &rh);
    if (rc != 0 || !body_len || f->head_req)
        return rc;
    return f->next->data(f->next_owner, a->fixed.content, body_len);
}

static int f_head(void *owner, const struct px_resp_head *rh)
{
    struct px_rrf *f = owner;
    f->replaced = false;
    if (rh->status < 200)
        return f->next->head(f->next_owner, rh);
    const struct rc_rule *ru = NULL;
    for (size_t i = 0; i < f->l->n_resp_rules && i < 64 && !ru; i++)
        if ((f->cand >> i & 1) &&
            px_resp_rule_matches(&f->l->resp_rules[i], rh->status, rh->h, rh->n))
            ru = &f->l->resp_rules[i];
    if (!ru)
        return f->next->head(f->next_owner, rh);
    if (ru->action.kind == RC_ACTION_FIXED)
        return fixed(f, &ru->action);
    struct px_hdr h[PX_HDR_MAX];
    size_t k = 0;
    for (size_t i = 0; i < rh->n; i++) {
        bool drop = false;
        for (size_t j = 0; j < ru->n_remove_headers && !drop; j++)
            drop = name_is(&rh->h[i], ru->remove_headers[j]);
        for (size_t j = 0; j < ru->n_insert_headers && !drop; j++)
            drop = name_is(&rh->h[i], ru->insert_headers[j].name);
        if (!drop)
            h[k++] = rh->h[i];
    }
    for (size_t j = 0; j < ru->n_insert_headers && k < PX_HDR_MAX; j++) {
        const struct rc_header_op *op = &ru->insert_headers[j];
        h[k++] = (struct px_hdr){op->name, strlen(op->name), op->value, strlen(op->value)};
    }
    struct px_resp_head out = *rh;
    out.h = h;
    out.n = k;
    return f->next->head(f->next_owner, &out);
}

static int f_data(void *owner, const char *at, size_t len)
{
    struct px_rrf *f = owner;
    return f->replaced ? 0 : f->next->data(f->next_owner, at, len);
}

static int f_trailers(void *owner, const struct px_hdr *h, size_t n)
{
    struct px_rrf *f = owner;
    if (f->replaced || !f->next->trailers)
        return 0;
    return f->next->trailers(f->next_owner, h, n);
}

static int f_end(void *owner)
{
    struct px_rrf *f = owner;
    return f->next->end(f->next_owner);
}

static void f_abort(void *owner, int status)
{
    struct px_rrf *f = owner;
    f->next->abort(f->next_owner, status);
}

static const struct px_sink filter = {
    .head = f_head,
    .data = f_data,
    .trailers = f_trailers,
    .end = f_end,
    .abort = f_abort,
};

void px_resp_rules_attach(struct px_exchange *x, const struct rc_listener *l, uint64_t cand,
                          bool head_req, const struct px_sink **sink)
{
    if (!cand)
        return;
    x->rrf = (struct px_rrf){
        .next = *sink, .next_owner = x->sink_owner, .l = l, .cand = cand, .head_req = head_req};
    x->sink_owner = &x->rrf;
    *sink = &filter;
}
