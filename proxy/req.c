/* The request pipeline shared by every client protocol (see req.h). */
#include "proxy/req.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "proxy/action.h"
#include "proxy/alog.h"
#include "proxy/backend_h1.h"
#include "proxy/clientip.h"
#include "proxy/compress.h"
#include "proxy/cors.h"
#include "proxy/exchange.h"
#include "proxy/group_sticky.h"
#include "proxy/router.h"
#include "proxy/lb.h"
#include "proxy/mirror.h"
#include "proxy/reqid.h"
#include "proxy/resp_rules.h"
#include "proxy/snapshot.h"
#include "proxy/tls_ctx.h"
#include "proxy/tls_headers.h"
#include "proxy/tls_io.h"

void px_client_init(struct px_client *cl, struct px_conn *c)
{
    *cl = (struct px_client){.ip = c->client_ip, .port = c->client_port};
    (void)cm_ip_parse(cl->ip, strlen(cl->ip), &cl->addr); /* "unknown" stays :: */
    if (c->tls) {
        cl->ssl = px_tls_io_ssl(c->tls);
        if (cl->ssl) {
            cl->tls_version = SSL_get_version(cl->ssl);
            cl->tls_cipher = SSL_get_cipher_name(cl->ssl);
            cl->sni = SSL_get_servername(cl->ssl, TLSEXT_NAMETYPE_host_name);
        }
    }
}

void px_client_cleanup(struct px_client *cl)
{
    free(cl->cc);
    cl->cc = NULL;
}

int px_client_cert_load(struct px_client *cl, const struct rc_listener *l)
{
    if (cl->cc || !cl->ssl || !px_tls_headers_enabled(l))
        return 0;
    cl->cc = malloc(sizeof *cl->cc);
    if (!cl->cc)
        return -ENOMEM;
    if (px_tls_client_cert_info(cl->ssl, cl->cc) == -ENOMEM) {
        free(cl->cc);
        cl->cc = NULL;
        return -ENOMEM;
    }
    return 0; /* -ENOSPC: a DN was truncated, still worth sending */
}

static bool hdr_is(const struct px_hdr *x, const char *lit)
{
    size_t l = strlen(lit);
    return x->name_len == l && strncasecmp(x->name, lit, l) == 0;
}

/* The action of a final rc_action (a rule's, or the default's). */
static void take_action(const struct px_req *r, const struct rc_action *a, struct px_action *out)
{
    if (a->kind == RC_ACTION_FORWARD) {
        out->kind = PX_ACTION_FORWARD;
        out->group = px_action_pick_group(r->lis, a);
    } else {
        out->kind = PX_ACTION_ANSWER;
        out->group = NULL;
        out->answer = a;
    }
}

/* The router's view of r into q (host and npath: the caller's buffers,
 * host 256 bytes; *npath is stack, of stack_size bytes, or a malloc'd
 * buffer the caller frees when it is not stack). 0, 400 for a path no
 * rule can be sure about, or 500. */
static int match_req(const struct px_req *r, struct px_match_req *q, char *host, char *stack,
                     size_t stack_size, char **npath)
{
    size_t pl = r->query ? (size_t)(r->query - 1 - r->path) : r->path_len;
    if (r->path_slash)
        pl = 0;
    *npath = pl + 1 <= stack_size ? stack : malloc(pl + 1);
    if (!*npath)
        return 500;
    *q = (struct px_match_req){
        .host = host,
        .host_len = r->authority ? px_router_host(r->authority, r->authority_len, host, 256) : 0,
        .query = r->query,
        .query_len = r->query_len,
        .method = px_router_method(r->method),
        .hdrs = r->hdrs,
        .n_hdrs = r->n_hdrs,
        .client = &r->client_addr,
    };
    if (!q->host_len)
        host[0] = '\0';
    if (pl == 1 && r->path[0] == '*') { /* OPTIONS * */
        q->path = "*";
        q->path_len = 1;
    } else if (px_router_normalise(r->path, pl, *npath, &q->path_len) < 0) {
        return 400;
    } else {
        q->path = *npath;
    }
    return 0;
}

/* Matches r against its listener's rules (router.h says on what). 0, or
 * 400 for a path no rule can be sure about. */
static int match_rules(const struct px_req *r, struct px_action *out)
{
    const struct rc_listener *m = r->lis->model;
    char host[256], stack[1024], *npath = NULL;
    struct px_match_req q;
    int st = match_req(r, &q, host, stack, sizeof stack, &npath);
    if (!st) {
        long i = px_router_match(r->lis->router, m, &q);
        if (i >= 0) {
            out->rule = &m->rules[i];
            take_action(r, &out->rule->action, out);
            if (!px_router_admit(r->lis->router, (size_t)i, &r->client_addr)) {
                out->kind = PX_ACTION_ANSWER;
                out->group = NULL;
                out->answer = NULL;
                out->limited_status = out->rule->limit_status;
            }
        }
    }
    if (npath != stack)
        free(npath);
    return st;
}

/* Bit i: the request conditions of the listener's resp_rules[i] match r
 * (as forwarded: after a rewrite). A path no rule can be sure about
 * matches only rules without a path condition. */
static uint64_t resp_candidates(const struct px_req *r)
{
    const struct rc_listener *m = r->lis->model;
    char host[256], stack[1024], *npath = NULL;
    struct px_match_req q;
    int st = match_req(r, &q, host, stack, sizeof stack, &npath);
    uint64_t cand = 0;
    if (st == 400) {
        q.path = "";
        q.path_len = 0;
    }
    if (st != 500)
        for (size_t i = 0; i < m->n_resp_rules && i < 64; i++) {
            const struct rc_rule *ru = &m->resp_rules[i];
            if ((st != 400 || !ru->n_paths) && px_rule_matches(ru, NULL, &q))
                cand |= (uint64_t)1 << i;
        }
    if (npath && npath != stack)
        free(npath);
    return cand;
}

int px_route(const struct px_req *r, struct px_action *out)
{
    const struct rc_listener *m = r->lis->model;
    *out = (struct px_action){.kind = PX_ACTION_FORWARD, .group = px_exchange_choose_group(r->lis)};
    if (m->n_rules) {
        int st = match_rules(r, out);
        if (st || out->rule)
            return st;
    }
    if (m->default_action)
        take_action(r, m->default_action, out);
    return 0;
}

void px_req_client_ip(struct px_req *r)
{
    const struct rc_listener *m = r->lis->model;
    bool found =
        m->client_ips.enabled &&
        px_clientip_from_xff(r->hdrs, r->n_hdrs, m->client_ips.trusted, m->client_ips.n_trusted,
                             m->client_ips.leftmost, &r->client_addr);
    if (found) {
        cm_ip_format(&r->client_addr, r->client_ip);
    } else {
        r->client_addr = r->client->addr;
        size_t n = strnlen(r->client->ip, sizeof r->client_ip - 1); /* per request: no snprintf */
        memcpy(r->client_ip, r->client->ip, n);
        r->client_ip[n] = '\0';
    }
    if (m->client_ips.enabled)
        px_log_debug("client IP %s for %.*s (%s; peer %s)", r->client_ip, (int)r->path_len, r->path,
                     found ? "from X-Forwarded-For" : "the peer", r->client->ip);
}

int px_filters_attach(const struct px_req *r, struct px_exchange *x, const struct px_action *a,
                      const struct px_sink *sink, const struct px_sink **out)
{
    bool set_group_cookie = a->set_group_cookie;
    if (px_compress_attach(x, r, sink, out) < 0)
        return 500;
    /* In front of compression: the CORS fields join the head it passes on. */
    px_cors_attach(x, r, a->rule ? a->rule->cors : NULL, out);
    if (set_group_cookie)
        px_group_sticky_attach(x, a->rule, a->group, out);
    /* In front of all: response rules see the backend's head. */
    if (r->lis->model->n_resp_rules)
        px_resp_rules_attach(x, r->lis->model, resp_candidates(r), r->is_head, out);
    return 0;
}

/* The request transforms of a forward: client-sent client-certificate
 * headers out, albd's forwarding headers in, the backend head built.
 * 0, 431 or 500. */
static int transform(struct px_req *r, const struct px_group *g, struct px_buf *hout,
                     struct px_buf *tgt)
{
    const struct rc_listener *m = r->lis->model;
    /* Expect means nothing from an HTTP/1.0 client, albd answers
     * 100-continue itself, and HTTP/2 has none: no backend gets it. */
    size_t k = 0;
    for (size_t i = 0; i < r->n_hdrs; i++)
        if (!hdr_is(&r->hdrs[i], "expect"))
            r->hdrs[k++] = r->hdrs[i];
    r->n_hdrs = k;
    /* Client-sent X-Forwarded-Clientcert-* never reach a backend. */
    r->n_hdrs = px_tls_headers_strip(m, r->hdrs, r->n_hdrs);
    if (r->target_authority) {
        size_t i = 0;
        while (i < r->n_hdrs && !hdr_is(&r->hdrs[i], "host"))
            i++;
        if (i == r->n_hdrs) {
            if (r->n_hdrs >= PX_HDR_MAX)
                return 431;
            r->hdrs[r->n_hdrs++] = (struct px_hdr){"Host", 4, r->authority, r->authority_len};
        } else {
            r->hdrs[i].value = r->authority;
            r->hdrs[i].value_len = r->authority_len;
        }
    }
    if (px_client_cert_load(r->client, m) < 0)
        return 500;
    struct px_hdr cch[PX_TLS_HDR_MAX];
    size_t n_cch = r->client->cc ? px_tls_headers_fill(m, r->client->cc, cch) : 0;
    struct px_fwd fwd = {
        .xff_mode = m->xff_mode,
        /* Append adds "the IP address of the last hop" (the reference):
         * the peer, not the retrieved address, so the chain stays true. */
        .client_ip = r->client->ip,
        .proto = m->headers.proto ? r->lis->scheme : NULL,
        .port = m->headers.port ? r->lis->port_str : NULL,
        .host = m->headers.host,
        .client_port = m->headers.client_src_port ? r->client->port : NULL,
        .slb_id = m->headers.slb_id && m->instance ? m->instance->id : NULL,
        .upgrade = r->upgrade,
        .extra = cch,
        .n_extra = n_cch,
    };
    bool keep = g && g->model->upstream_keepalive && !r->upgrade;
    px_buf_reset(hout);
    return px_backend_h1_request_head(hout, r, &fwd, keep, tgt) < 0 ? 431 : 0;
}

int px_req_start(struct px_req *r, struct px_exchange *x, struct px_buf *hout, struct px_buf *tgt,
                 const struct px_sink *proto_sink, const struct px_sink **sink)
{
    const struct rc_listener *m = r->lis->model;
    px_req_client_ip(r);
    int wid = x->w ? x->w->id : 0; /* unit tests run the pipeline without a worker */
    bool h2 = x->tag && strcmp(x->tag, "h2") == 0;
    px_alog_begin(&x->log, r->lis, wid, r->client, h2 ? "2" : r->minor ? "1.1" : "1.0", r);
    /* Domain fronting: every host the request names must be one the SNI
     * certificate covers. */
    if (px_tls_host_check_needed(m)) {
        int st = px_tls_check_request(r->client->ssl, r->target, r->target_len, r->hdrs, r->n_hdrs);
        if (st)
            return st;
    }
    struct px_action a;
    int rst = px_route(r, &a);
    if (rst)
        return rst;
    bool set_group_cookie = false;
    if (a.kind == PX_ACTION_FORWARD && a.rule && a.rule->action.forward.sticky &&
        a.rule->action.forward.n_groups > 1) {
        struct px_group *sg = px_group_sticky_pick(r, a.rule, &set_group_cookie);
        if (sg)
            a.group = sg;
        a.set_group_cookie = set_group_cookie && a.group;
    }
    px_alog_group(&x->log, a.group);
    px_alog_rule(&x->log, a.rule ? a.rule->name : NULL);
    x->req_id[0] = '\0';
    if (m->request_id.enabled) {
        r->n_hdrs = px_reqid_apply(r->hdrs, r->n_hdrs, m->request_id.trust_client, wid, x->req_id);
        px_alog_request_id(&x->log, x->req_id);
    }
    if (a.kind != PX_ACTION_ANSWER && a.rule && a.rule->cors && px_cors_is_preflight(r))
        return px_cors_answer_preflight(r, a.rule->cors, proto_sink, x->owner) < 0
                   ? 500
                   : PX_REQ_ANSWERED;
    if (a.kind == PX_ACTION_ANSWER)
        return px_action_answer(r, &a, proto_sink, x->owner) < 0 ? 500 : PX_REQ_ANSWERED;
    px_exchange_begin(x, r->lis);
    x->group = a.group;
    px_lb_key_from_req(&x->lb_key, a.group, r);
    x->idempotent = px_method_idempotent(r->method);
    x->body_sent = false;
    char *scratch = NULL;
    int st = a.rule ? px_action_request_extras(r, a.rule, &scratch) : 0;
    if (!st)
        st = transform(r, a.group, hout, tgt);
    if (st) {
        free(scratch);
        return st;
    }
    st = px_filters_attach(r, x, &a, proto_sink, sink);
    if (st) {
        free(scratch);
        return st;
    }
    if (a.rule && a.rule->mirror_group && px_mirror_eligible(r))
        px_mirror_send(x->w, r, a.rule, hout->data, hout->len);
    px_exchange_connect(x);
    free(scratch); /* rewritten values: r points into it until now */
    return 0;
}

bool px_method_idempotent(const char *m)
{
    return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "OPTIONS") == 0 ||
           strcmp(m, "PUT") == 0 || strcmp(m, "DELETE") == 0;
}

void px_req_count_response(struct px_worker *w, int status)
{
    int cls = status / 100;
    if (cls >= 1 && cls <= 5)
        atomic_fetch_add_explicit(&w->stats.responses_by_class[cls], 1, memory_order_relaxed);
}

void px_body_meter_reset(struct px_body_meter *m)
{
    *m = (struct px_body_meter){0};
}

void px_body_meter_restart(struct px_body_meter *m)
{
    m->rate_start = 0;
}

int px_body_meter_add(struct px_body_meter *m, const struct rc_listener *l, uint64_t now,
                      size_t len)
{
    m->total += len;
    if (l->limits.max_request_body_bytes && m->total > l->limits.max_request_body_bytes)
        return 413;
    if (!l->limits.min_body_rate)
        return 0;
    if (!m->rate_start) {
        m->rate_start = now ? now : 1;
        m->rate_bytes = 0;
    }
    m->rate_bytes += len;
    uint64_t elapsed = now - m->rate_start;
    if (elapsed >= PX_BODY_RATE_WINDOW_MS) {
        if (m->rate_bytes * 1000 < (uint64_t)l->limits.min_body_rate * elapsed)
            return 408;
        m->rate_start = now;
        m->rate_bytes = 0;
    }
    return 0;
}
