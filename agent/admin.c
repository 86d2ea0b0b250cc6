/* A deliberately small HTTP/1.1 server for the admin endpoint: GET and
 * HEAD only, one request per connection, answers built in memory. Loopback
 * traffic from probes and operators, not the data plane, but still reachable
 * by anything on the host (and by a browser through DNS rebinding), so it is
 * bounded: a request head must arrive within HEAD_TIMEOUT_MS and fit in
 * REQ_MAX bytes, the answer must be taken within WRITE_TIMEOUT_MS, at most
 * MAX_CONNS connections are open at once, and the Host header must name this
 * machine (see host_allowed). */
#include "agent/admin.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent/obs_metrics.h"
#include "agent/certsvc.h"
#include "agent/query.h"
#include "agent/status_track.h"
#include "common/log.h"
#include "proxy/dns.h"
#include "proxy/health.h"
#include "proxy/px.h"
#include "reconciler/err.h"
#include "reconciler/export.h"
#include "reconciler/meta.h"
#include "reconciler/model-t.h"
#include "reconciler/model.h"
#include "reconciler/selector.h"
#include "reconciler/source.h"

enum {
    REQ_MAX = 8192,           /* request line and headers, bytes */
    HEAD_TIMEOUT_MS = 5000,   /* from accept to the end of the request head */
    WRITE_TIMEOUT_MS = 30000, /* from the request head to the last response byte */
    MAX_CONNS = 64,           /* open connections per endpoint; more are refused with 503 */
};

struct ag_admin {
    struct ag_agent *agent;
    bool probe_only; /* /healthz and /readyz only */
    bool saturated;  /* MAX_CONNS reached (logged once per episode) */
    uv_tcp_t tcp;
    struct admin_conn *conns;
    size_t n_conns;
};

struct admin_conn {
    struct ag_admin *ad; /* NULL once the endpoint is closing */
    uv_tcp_t tcp;
    uv_timer_t timer; /* the head deadline, then the write deadline */
    int open_handles; /* freed when both tcp and timer are closed */
    uv_write_t wr;
    char req[REQ_MAX];
    size_t len;
    char *resp;
    bool responded;
    struct admin_conn *prev, *next;
};

/* A connection refused because the endpoint is at MAX_CONNS. */
struct admin_refused {
    uv_tcp_t tcp;
};

/* A growable string for response bodies. */
struct sbuf {
    char *p;
    size_t len, cap;
};

__attribute__((format(printf, 2, 3))) static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (b->p && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return;
        b->p = p;
        b->cap = cap;
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    struct admin_conn *c = h->data;
    if (--c->open_handles > 0)
        return;
    if (c->ad) {
        if (c->prev)
            c->prev->next = c->next;
        else
            c->ad->conns = c->next;
        if (c->next)
            c->next->prev = c->prev;
        c->ad->n_conns--;
    }
    free(c->resp);
    free(c);
}

static void conn_close(struct admin_conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp)) {
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
        uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    }
}

static void on_deadline(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_written(uv_write_t *wr, int status)
{
    conn_close(wr->data);
}

/* Answers and closes: Connection: close, one request per connection. A
 * HEAD answer carries the headers a GET would, without the body. */
static void respond(struct admin_conn *c, bool head, int code, const char *ctype, const char *body,
                    size_t blen)
{
    const char *reason = code == 200   ? "OK"
                         : code == 404 ? "Not Found"
                         : code == 405 ? "Method Not Allowed"
                         : code == 421 ? "Misdirected Request"
                         : code == 431 ? "Request Header Fields Too Large"
                         : code == 503 ? "Service Unavailable"
                                       : "Bad Request";
    struct sbuf b = {0};
    /* Albd-Generation on every answer: the serving configuration's
     * generation, for a script that waits for a change to apply (HEAD
     * /healthz costs nothing; /metrics and /status grow with the
     * configuration). */
    sb_printf(&b,
              "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
              "%sAlbd-Generation: %llu\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
              code, reason, ctype, blen, code == 405 ? "Allow: GET, HEAD\r\n" : "",
              (unsigned long long)px_runtime_generation(c->ad->agent->rt));
    if (!b.p) {
        conn_close(c);
        return;
    }
    size_t send_len = head ? 0 : blen;
    char *p = realloc(b.p, b.len + send_len + 1);
    if (!p) {
        free(b.p);
        conn_close(c);
        return;
    }
    if (send_len)
        memcpy(p + b.len, body, send_len);
    c->resp = p;
    c->responded = true;
    uv_buf_t buf = uv_buf_init(p, (unsigned)(b.len + send_len));
    c->wr.data = c;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_start(&c->timer, on_deadline, WRITE_TIMEOUT_MS, 0);
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &buf, 1, on_written) != 0)
        conn_close(c);
}

static void iso_time(time_t t, char out[32])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- Kubernetes-style resource status: observedGeneration and the
 * Ready/Accepted/Programmed conditions, with lastTransitionTime kept
 * across reloads in a->status_track. ---- */

/* The metadata of name in an array of n resources of stride bytes whose
 * struct rc_meta is at offset off: a binary search (model arrays are
 * sorted by name), then, should that miss, a scan. NULL when absent. */
static const struct rc_meta *meta_in(const void *base, size_t n, size_t stride, size_t off,
                                     const char *name)
{
#define AG_META(i) ((const struct rc_meta *)((const char *)base + (i)*stride + off))
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(AG_META(mid)->name, name);
        if (c == 0)
            return AG_META(mid);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(AG_META(i)->name, name) == 0)
            return AG_META(i);
    return NULL;
#undef AG_META
}

/* The running model's metadata of kind/name, or NULL. */
static const struct rc_meta *running_meta(const struct rc_model *m, const char *kind,
                                          const char *name)
{
    if (m == NULL || kind == NULL || name == NULL)
        return NULL;
#define AG_FIND(k, T, arr, n)                                                                      \
    if (strcmp(kind, k) == 0)                                                                      \
        return meta_in(m->arr, m->n, sizeof *m->arr, offsetof(T, meta), name);
    AG_FIND("Instance", struct rc_instance, instances, n_instances)
    if (strcmp(kind, "Certificate") == 0) { /* an array of pointers (model-t.h) */
        const struct rc_certificate *c = rc_model_certificate(m, name);
        return c ? &c->meta : NULL;
    }
    AG_FIND("TLSPolicy", struct rc_tls_policy, policies, n_policies)
    AG_FIND("ServerGroup", struct rc_server_group, groups, n_groups)
    AG_FIND("Listener", struct rc_listener, listeners, n_listeners)
#undef AG_FIND
    return NULL;
}

/* The running model's ServerGroup name, or NULL: a binary search (a
 * /status of 10,000 groups must not compare every pair). */
static const struct rc_server_group *running_group(const struct ag_agent *a, const char *name)
{
    const struct rc_model *m = a->running;
    if (m == NULL || name == NULL)
        return NULL;
    const struct rc_meta *mt = meta_in(m->groups, m->n_groups, sizeof *m->groups,
                                       offsetof(struct rc_server_group, meta), name);
    return mt ? (const struct rc_server_group *)((const char *)mt -
                                                 offsetof(struct rc_server_group, meta))
              : NULL;
}

/* The three conditions of a resource in state st: status, reason. */
struct cond_view {
    const char *type, *status, *reason, *message;
};

static void conditions_of(const struct rc_res_status *r, struct cond_view out[3])
{
    const char *msg = r->message ? r->message : "";
    if (r->state != RC_RES_READY && strstr(msg, RC_PENDING_PREFIX)) {
        /* Valid, but it waits for a certificate from a certificate service
         * that was never fetched nor cached: not serving yet. */
        out[0] = (struct cond_view){"Accepted", "True", "Accepted", "the spec is valid"};
        out[1] = (struct cond_view){"Programmed", "False", "Pending", msg};
        out[2] = (struct cond_view){"Ready", "False", "Pending", msg};
        return;
    }
    switch (r->state) {
    case RC_RES_READY:
        out[0] = (struct cond_view){"Accepted", "True", "Accepted", "the spec is valid"};
        out[1] =
            (struct cond_view){"Programmed", "True", "Programmed", "the proxy serves this spec"};
        out[2] = (struct cond_view){"Ready", "True", "Ready", "serving its current spec"};
        break;
    case RC_RES_KEPT:
        out[0] = (struct cond_view){"Accepted", "False", "Invalid", msg};
        out[1] = (struct cond_view){"Programmed", "True", "KeptLastGood",
                                    "the proxy still serves the last good version"};
        out[2] = (struct cond_view){"Ready", "False", "KeptLastGood", msg};
        break;
    case RC_RES_ABSENT:
        out[0] = (struct cond_view){"Accepted", "False", "Invalid", msg};
        out[1] = (struct cond_view){"Programmed", "False", "Invalid",
                                    "never valid: the proxy does not serve it"};
        out[2] = (struct cond_view){"Ready", "False", "Invalid", msg};
        break;
    case RC_RES_BLOCKED:
    default:
        out[0] = (struct cond_view){"Accepted", "True", "Accepted", "the spec is valid"};
        out[1] = (struct cond_view){"Programmed", "False", "Blocked", msg};
        out[2] = (struct cond_view){"Ready", "False", "Blocked", msg};
        break;
    }
}

/* "file:line:col" of r: its error's location when it is not ready, else
 * where the running model's document starts; "" when unknown. */
static void resource_source(const struct ag_agent *a, const struct rc_res_status *r, char *out,
                            size_t size)
{
    out[0] = '\0';
    if (r->file) {
        snprintf(out, size, "%s:%d:%d", r->file, r->line, r->col);
        return;
    }
    const struct rc_meta *mt = running_meta(a->running, r->kind, r->name);
    const struct rc_source *src =
        mt ? NULL : rc_sources_find(rc_model_sources(a->running), r->kind, r->name);
    if (mt && mt->loc.file)
        snprintf(out, size, "%s:%d:%d", mt->loc.file, mt->loc.line, mt->loc.col);
    else if (src && src->file)
        snprintf(out, size, "%s:%d:%d", src->file, src->line, src->col);
}

/* The digest that decides whether r's spec changed: the running
 * resource's canonical digest when it is ready (for a kind the model does
 * not hold, e.g. CertificateService, its document's bytes), else one over
 * its state, error and location (a new broken version is a new
 * generation). */
static void resource_digest(const struct ag_agent *a, const struct rc_res_status *r, char out[65])
{
    const struct rc_meta *mt =
        r->state == RC_RES_READY ? running_meta(a->running, r->kind, r->name) : NULL;
    if (mt) {
        memcpy(out, mt->digest, 65);
        return;
    }
    const struct rc_source *src =
        r->state == RC_RES_READY && a->running
            ? rc_sources_find(rc_model_sources(a->running), r->kind, r->name)
            : NULL;
    if (src && src->text) {
        rc_sha256_hex(src->text, src->len, out);
        return;
    }
    struct sbuf b = {0};
    sb_printf(&b, "%d\n%s\n%s:%d:%d", (int)r->state, r->message ? r->message : "",
              r->file ? r->file : "", r->line, r->col);
    rc_sha256_hex(b.p ? b.p : "", b.p ? strlen(b.p) : 0, out);
    free(b.p);
}

/* Sets cond's lastTransitionTime from e's record of its type, recording
 * now when its status is new or changed (status_track.h). */
static void stamp_condition(struct ag_track_entry *e, json_t *cond, time_t now)
{
    const char *type = json_string_value(json_object_get(cond, "type"));
    const char *status = json_string_value(json_object_get(cond, "status"));
    if (!type || !status)
        return;
    char ts[32];
    iso_time(ag_track_condition(e, ag_cond_type_of(type), status, now), ts);
    json_object_set_new(cond, "lastTransitionTime", json_string(ts));
}

/* Once per reconcile over every resource (10,000 certificates): only the
 * tracking entries are touched — an unchanged resource costs a digest
 * comparison and three string comparisons, nothing is formatted. */
void ag_status_observe(struct ag_agent *a)
{
    const struct rc_status *st = &a->last_status;
    struct ag_track *t = ag_track_new(st->n);
    if (t == NULL)
        return; /* out of memory: the last reconcile's records stay */
    time_t now = time(NULL);
    for (size_t i = 0; i < st->n; i++) {
        const struct rc_res_status *r = &st->v[i];
        if (!r->kind || !r->name)
            continue;
        char key[512], digest[65];
        snprintf(key, sizeof key, "%s/%s", r->kind, r->name);
        resource_digest(a, r, digest);
        struct ag_track_entry *e = ag_track_carry(t, a->status_track, key, digest);
        if (e == NULL)
            continue; /* out of memory: /status shows it at generation 0 */
        struct cond_view cv[3];
        conditions_of(r, cv);
        for (int k = 0; k < 3; k++)
            ag_track_condition(e, ag_cond_type_of(cv[k].type), cv[k].status, now);
    }
    /* What is left in the old table: resources gone from the manifests. */
    ag_track_free(a->status_track);
    a->status_track = t;
}

void ag_status_forget(struct ag_agent *a)
{
    ag_track_free(a->status_track);
    a->status_track = NULL;
}

/* The /status entry of r: kind, name, source, observedGeneration and its
 * conditions (see README "/status"). */
static json_t *resource_status(struct ag_agent *a, const struct rc_res_status *r)
{
    char key[512], src[512];
    snprintf(key, sizeof key, "%s/%s", r->kind ? r->kind : "", r->name ? r->name : "");
    resource_source(a, r, src, sizeof src);
    struct ag_track_entry *e = ag_track_get(a->status_track, key);
    json_t *rs = json_pack("{s:s, s:s, s:[]}", "kind", r->kind ? r->kind : "", "name",
                           r->name ? r->name : "", "conditions");
    json_object_set_new(rs, "source", src[0] ? json_string(src) : json_null());
    json_object_set_new(rs, "observedGeneration",
                        json_integer(e ? (json_int_t)ag_track_generation(e) : 0));
    struct cond_view cv[3];
    conditions_of(r, cv);
    time_t now = time(NULL);
    for (int k = 0; k < 3; k++) {
        json_t *c = json_pack("{s:s, s:s, s:s, s:s}", "type", cv[k].type, "status", cv[k].status,
                              "reason", cv[k].reason, "message", cv[k].message);
        if (strcmp(cv[k].status, "True") != 0 && src[0])
            json_object_set_new(c, "source", json_string(src));
        if (e)
            stamp_condition(e, c, now);
        json_array_append_new(json_object_get(rs, "conditions"), c);
    }
    return rs;
}

/* With a label selector, whether /status lists resource kind/name: by its
 * labels in the running configuration (ex); a resource absent from it
 * (invalid, never applied) has no labels. Problems not tied to a resource
 * (kind or name NULL) are always listed. */
static bool status_selected(const struct rc_selector *sel, const json_t *ex, const char *kind,
                            const char *name)
{
    if (rc_selector_size(sel) == 0 || kind == NULL || name == NULL)
        return true;
    const json_t *res =
        json_object_get(json_object_get(json_object_get(ex, "resources"), kind), name);
    return rc_selector_matches_json(sel, res ? json_object_get(res, "labels") : NULL);
}

/* The servers of group `name` given by host name, and what they resolve
 * to now (proxy/dns.c): "hostNames": [{"name", "port", "resolved",
 * "addresses", "error", "lastResolved", "lastAttempt"}]. Nothing when it
 * has none. */
static void add_host_names(struct ag_agent *a, const char *name, json_t *res)
{
    const struct rc_server_group *g = running_group(a, name);
    json_t *names = NULL;
    for (size_t i = 0; g && i < g->n_servers; i++) {
        const struct rc_server *sv = &g->servers[i];
        unsigned char ip[16];
        if (inet_pton(AF_INET, sv->address, ip) == 1 || inet_pton(AF_INET6, sv->address, ip) == 1)
            continue;
        struct px_dns_state st;
        px_runtime_host_state(a->rt, sv->address, &st);
        json_t *addrs = json_array();
        for (size_t k = 0; k < st.n_addrs; k++)
            json_array_append_new(addrs, json_string(st.addrs[k]));
        json_t *o = json_pack("{s:s, s:i, s:b, s:o}", "name", sv->address, "port", sv->port,
                              "resolved", st.resolved, "addresses", addrs);
        json_object_set_new(o, "error", st.error[0] ? json_string(st.error) : json_null());
        char ts[32];
        if (st.last_ok)
            iso_time(st.last_ok, ts);
        json_object_set_new(o, "lastResolved", st.last_ok ? json_string(ts) : json_null());
        if (st.last_attempt)
            iso_time(st.last_attempt, ts);
        json_object_set_new(o, "lastAttempt", st.last_attempt ? json_string(ts) : json_null());
        if (!names)
            names = json_array();
        json_array_append_new(names, o);
    }
    if (names)
        json_object_set_new(res, "hostNames", names);
}

/* ---- Server health: /status "serverGroups", /metrics albd_server_up and
 * albd_health_transitions_total. Read from the prober's report
 * (px_runtime_health_each), off the request path. ---- */

struct health_status {
    struct ag_agent *a;
    const struct rc_selector *sel;
    json_t *ex;
    json_t *groups;
    json_t *group;  /* the group being filled, or NULL */
    char name[256]; /* its name */
    bool skip;      /* not selected by the label selector */
};

static const char *when_all_unhealthy(const struct ag_agent *a, const char *group)
{
    const struct rc_server_group *g = running_group(a, group);
    return g ? (g->fail_open ? "FailOpen" : "Reject") : NULL;
}

/* The slowStart.durationSeconds of group `group` in the running model, 0
 * when it has no slow start. */
static int slow_start_duration(const struct ag_agent *a, const char *group)
{
    const struct rc_server_group *g = running_group(a, group);
    return g && g->slow_start.enabled ? g->slow_start.duration_s : 0;
}

static void health_status_row(const struct px_server_health *sh, void *arg)
{
    struct health_status *hs = arg;
    if (strcmp(hs->name, sh->group) != 0) { /* rows come group by group */
        snprintf(hs->name, sizeof hs->name, "%s", sh->group);
        hs->skip = !status_selected(hs->sel, hs->ex, "ServerGroup", sh->group);
        hs->group = NULL;
        if (!hs->skip) {
            const char *w = when_all_unhealthy(hs->a, sh->group);
            hs->group = json_pack("{s:s, s:i, s:[]}", "name", sh->group, "serversUp", 0, "servers");
            if (w)
                json_object_set_new(hs->group, "whenAllUnhealthy", json_string(w));
            json_array_append_new(hs->groups, hs->group);
        }
    }
    if (hs->skip || !hs->group)
        return;
    json_t *probe = json_null();
    if (sh->last_result) {
        char ts[32];
        iso_time(sh->last_probe, ts);
        probe = json_pack("{s:s, s:s, s:s}", "result", sh->last_result, "reason", sh->reason,
                          "time", ts);
    }
    json_t *o = json_pack("{s:s, s:s, s:b, s:b, s:o, s:I}", "server", sh->server, "health",
                          sh->verdict, "up", sh->up, "ejected", sh->ejected, "lastProbe", probe,
                          "transitions", (json_int_t)sh->transitions);
    /* Slow start: the ramp of the backend's clock (proxy/lb.c), shown
     * while it lasts; draining: no group sends it new requests. */
    uint64_t now_ms = uv_hrtime() / 1000000,
             dur_ms = (uint64_t)slow_start_duration(hs->a, sh->group) * 1000;
    bool ramping = dur_ms && sh->slow_start_ms && now_ms - sh->slow_start_ms < dur_ms;
    json_object_set_new(o, "slowStart", json_boolean(ramping));
    if (ramping)
        json_object_set_new(o, "slowStartRemainingSeconds",
                            json_real((double)(dur_ms - (now_ms - sh->slow_start_ms)) / 1000.0));
    json_object_set_new(o, "draining", json_boolean(sh->draining));
    json_array_append_new(json_object_get(hs->group, "servers"), o);
    if (sh->up) {
        json_t *n = json_object_get(hs->group, "serversUp");
        json_integer_set(n, json_integer_value(n) + 1);
    }
}

/* Per group, in the served order: each server's health verdict, whether
 * server choice may send to it, its last probe (result, reason, time) and
 * its up/down transitions. */
static json_t *server_groups_status(struct ag_agent *a, const struct rc_selector *sel, json_t *ex)
{
    struct health_status hs = {.a = a, .sel = sel, .ex = ex, .groups = json_array()};
    px_runtime_health_each(a->rt, health_status_row, &hs);
    return hs.groups;
}

/* Adds a Degraded condition to each ServerGroup of res (the /status
 * resources) that has servers marked down, naming them and why: a group
 * whose backends fail their checks must not look merely Ready. */
static void add_degraded(struct ag_agent *a, json_t *res, json_t *groups)
{
    size_t i, j, k;
    json_t *r, *g, *sv;
    json_t *by_name = json_object(); /* name -> group: one lookup per resource */
    json_array_foreach(groups, j, g)
    {
        const char *n = json_string_value(json_object_get(g, "name"));
        if (n)
            json_object_set(by_name, n, g);
    }
    json_array_foreach(res, i, r)
    {
        const char *kind = json_string_value(json_object_get(r, "kind"));
        if (!kind || strcmp(kind, "ServerGroup") != 0)
            continue;
        const char *name = json_string_value(json_object_get(r, "name"));
        g = name ? json_object_get(by_name, name) : NULL;
        if (!g)
            continue;
        {
            size_t total = json_array_size(json_object_get(g, "servers")), down = 0;
            struct sbuf msg = {0};
            json_array_foreach(json_object_get(g, "servers"), k, sv)
            {
                if (json_is_true(json_object_get(sv, "up")))
                    continue;
                const char *why =
                    json_string_value(json_object_get(json_object_get(sv, "lastProbe"), "reason"));
                if (json_is_true(json_object_get(sv, "ejected")))
                    why = "passive ejection";
                sb_printf(&msg, "%s%s (%s)", down ? ", " : "",
                          json_string_value(json_object_get(sv, "server")), why ? why : "down");
                down++;
            }
            if (down > 0) {
                char head[96];
                snprintf(head, sizeof head, "%zu of %zu servers down: ", down, total);
                json_t *cond =
                    json_pack("{s:s, s:s, s:s, s:s+}", "type", "Degraded", "status", "True",
                              "reason", down == total ? "AllServersDown" : "ServersDown", "message",
                              head, msg.p ? msg.p : "");
                json_array_append_new(json_object_get(r, "conditions"), cond);
            }
            /* Its lastTransitionTime: when /status first saw this status
             * (health changes between reads are not tracked here). */
            char key[512];
            snprintf(key, sizeof key, "ServerGroup/%s", name);
            struct ag_track_entry *track = ag_track_get(a->status_track, key);
            json_t *c = !track ? NULL
                        : down > 0
                            ? json_array_get(json_object_get(r, "conditions"),
                                             json_array_size(json_object_get(r, "conditions")) - 1)
                            : json_pack("{s:s, s:s}", "type", "Degraded", "status", "False");
            if (c)
                stamp_condition(track, c, time(NULL));
            if (c && down == 0)
                json_decref(c);
            free(msg.p);
        }
    }
    json_decref(by_name);
}

static void label_value(struct sbuf *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            sb_printf(b, "\\%c", *v);
        else if (*v == '\n')
            sb_printf(b, "\\n");
        else
            sb_printf(b, "%c", *v);
    }
}

struct health_metrics {
    struct sbuf *b;
    bool transitions; /* this pass writes the counter, else the gauge */
};

static void health_metrics_row(const struct px_server_health *sh, void *arg)
{
    struct health_metrics *hm = arg;
    sb_printf(hm->b, "%s{group=\"",
              hm->transitions ? "albd_health_transitions_total" : "albd_server_up");
    label_value(hm->b, sh->group);
    sb_printf(hm->b, "\",server=\"");
    label_value(hm->b, sh->server);
    if (hm->transitions)
        sb_printf(hm->b, "\"} %llu\n", (unsigned long long)sh->transitions);
    else
        sb_printf(hm->b, "\"} %d\n", sh->up ? 1 : 0);
}

static void server_health_metrics(struct ag_agent *a, struct sbuf *b)
{
    struct health_metrics hm = {.b = b};
    sb_printf(b, "# HELP albd_server_up Whether server choice may send new requests to the "
                 "server (1), or a health check or passive ejection marked it down (0).\n"
                 "# TYPE albd_server_up gauge\n");
    px_runtime_health_each(a->rt, health_metrics_row, &hm);
    hm.transitions = true;
    sb_printf(b, "# HELP albd_health_transitions_total Changes of the server between up and "
                 "down (health checks and passive ejection).\n"
                 "# TYPE albd_health_transitions_total counter\n");
    px_runtime_health_each(a->rt, health_metrics_row, &hm);
}

static char *status_json(struct ag_agent *a, const struct rc_selector *sel)
{
    json_t *ex = rc_selector_size(sel) > 0 && a->running ? rc_export_model(a->running) : NULL;
    json_t *root = json_object();
    json_object_set_new(root, "generation", json_integer((json_int_t)px_runtime_generation(a->rt)));
    json_object_set_new(root, "ready", json_boolean(a->running != NULL));
    json_object_set_new(root, "manifestDigest",
                        a->manifest_digest[0] ? json_string(a->manifest_digest) : json_null());
    char ts[32];
    if (a->last_applied) {
        iso_time(a->last_applied, ts);
        json_object_set_new(root, "lastApplied", json_string(ts));
    } else {
        json_object_set_new(root, "lastApplied", json_null());
    }
    json_object_set_new(root, "lastError",
                        a->last_error[0] ? json_string(a->last_error) : json_null());

    json_t *problems = json_array();
    for (size_t i = 0; i < a->last_errs.n; i++) {
        const struct rc_err *e = &a->last_errs.v[i];
        if (!status_selected(sel, ex, e->kind, e->name))
            continue;
        char src[512];
        snprintf(src, sizeof src, "%s:%d:%d", e->file ? e->file : "", e->line, e->col);
        json_t *o = json_pack("{s:s, s:s, s:s}", "severity", rc_severity_name(e->severity),
                              "message", e->msg ? e->msg : "", "source", src);
        if (e->kind)
            json_object_set_new(o, "kind", json_string(e->kind));
        if (e->name)
            json_object_set_new(o, "name", json_string(e->name));
        if (e->path)
            json_object_set_new(o, "path", json_string(e->path));
        if (e->msg && !strncmp(e->msg, RC_RULE_CONTAINED_PREFIX, strlen(RC_RULE_CONTAINED_PREFIX)))
            json_object_set_new(o, "reason", json_string("RuleContained"));
        json_array_append_new(problems, o);
    }
    json_object_set_new(root, "problems", problems);

    json_t *res = json_array();
    const struct rc_status *st = &a->last_status;
    for (size_t i = 0; i < st->n; i++) {
        const struct rc_res_status *r = &st->v[i];
        if (!status_selected(sel, ex, r->kind, r->name))
            continue;
        json_t *rs = resource_status(a, r);
        if (r->kind && r->name && strcmp(r->kind, "ServerGroup") == 0)
            add_host_names(a, r->name, rs);
        json_array_append_new(res, rs);
    }
    json_object_set_new(root, "resources", res);
    json_t *groups = server_groups_status(a, sel, ex);
    add_degraded(a, res, groups);
    json_object_set_new(root, "serverGroups", groups);
    json_object_set_new(root, "certificateService", ag_certsvc_status(a->certsvc));
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(root);
    json_decref(ex);
    return s;
}

static char *metrics_text(struct ag_agent *a)
{
    struct px_stats st;
    px_runtime_stats(a->rt, &st);
    struct sbuf b = {0};
    sb_printf(&b,
              "# HELP albd_reconciles_total Reconciles by result.\n"
              "# TYPE albd_reconciles_total counter\n"
              "albd_reconciles_total{result=\"success\"} %llu\n"
              "albd_reconciles_total{result=\"partial\"} %llu\n"
              "albd_reconciles_total{result=\"failure\"} %llu\n",
              (unsigned long long)a->reconciles_ok, (unsigned long long)a->reconciles_partial,
              (unsigned long long)a->reconciles_failed);
    size_t invalid = 0;
    for (size_t i = 0; i < a->last_status.n; i++)
        invalid += a->last_status.v[i].state != RC_RES_READY;
    sb_printf(&b,
              "# HELP albd_invalid_resources Resources not applied as written (kept last good, "
              "absent or blocked).\n"
              "# TYPE albd_invalid_resources gauge\nalbd_invalid_resources %zu\n",
              invalid);
    const struct rc_status *ls = &a->last_status;
    sb_printf(&b,
              "# HELP albd_last_reconcile_files Manifest, certificate and key files of the last "
              "reconcile: read; found unchanged (by a stat, or without one when the watcher "
              "reported no change under their path); of those, without a stat.\n"
              "# TYPE albd_last_reconcile_files gauge\n"
              "albd_last_reconcile_files{how=\"read\"} %zu\n"
              "albd_last_reconcile_files{how=\"unchanged\"} %zu\n"
              "albd_last_reconcile_files{how=\"unchanged_without_stat\"} %zu\n",
              ls->files_read + ls->manifests_read, ls->files_reused + ls->manifests_skipped,
              ls->files_unstatted);
    sb_printf(
        &b,
        "# HELP albd_apply_duration_seconds Seconds the last successful reconcile took until its "
        "configuration served (read, validate, build, swap).\n"
        "# TYPE albd_apply_duration_seconds gauge\n"
        "albd_apply_duration_seconds %.6f\n",
        a->last_apply_seconds);
    sb_printf(&b,
              "# HELP albd_config_generation Generation of the serving configuration.\n"
              "# TYPE albd_config_generation gauge\nalbd_config_generation %llu\n",
              (unsigned long long)px_runtime_generation(a->rt));
    sb_printf(&b,
              "# HELP albd_snapshots_active Configuration snapshots still in memory.\n"
              "# TYPE albd_snapshots_active gauge\nalbd_snapshots_active %d\n",
              st.snapshots_alive);
    sb_printf(&b,
              "# HELP albd_config_model_bytes Memory held by the running configuration model: "
              "its resources, their sources and certificate bytes, including what it keeps "
              "of earlier reconciles' memory (bounded by compaction).\n"
              "# TYPE albd_config_model_bytes gauge\nalbd_config_model_bytes %zu\n",
              rc_model_footprint(a->running));
    sb_printf(&b,
              "# HELP albd_manifest_errors Errors found by the last reconcile.\n"
              "# TYPE albd_manifest_errors gauge\nalbd_manifest_errors %zu\n",
              rc_errs_count_errors(&a->last_errs));
    sb_printf(&b,
              "# HELP albd_connections_accepted_total Client connections accepted.\n"
              "# TYPE albd_connections_accepted_total counter\n"
              "albd_connections_accepted_total %llu\n"
              "# HELP albd_connections_active Client connections open.\n"
              "# TYPE albd_connections_active gauge\nalbd_connections_active %llu\n"
              "# HELP albd_connections_handed_over_total Client connections a worker accepted "
              "and handed to a less loaded worker.\n"
              "# TYPE albd_connections_handed_over_total counter\n"
              "albd_connections_handed_over_total %llu\n",
              (unsigned long long)st.connections_accepted,
              (unsigned long long)st.connections_active,
              (unsigned long long)st.connections_handed_over);
    sb_printf(&b,
              "# HELP albd_connections_parked Idle client connections holding no read or write "
              "buffer.\n"
              "# TYPE albd_connections_parked gauge\nalbd_connections_parked %llu\n"
              "# HELP albd_connection_buffer_bytes Bytes of read and write buffers client "
              "connections hold.\n"
              "# TYPE albd_connection_buffer_bytes gauge\nalbd_connection_buffer_bytes %llu\n",
              (unsigned long long)st.connections_parked,
              (unsigned long long)st.connection_buffer_bytes);
    sb_printf(&b,
              "# HELP albd_connection_exchanges HTTP/1.x request states client connections "
              "hold (idle keep-alive connections hold none).\n"
              "# TYPE albd_connection_exchanges gauge\nalbd_connection_exchanges %llu\n",
              (unsigned long long)st.connection_exchanges);
    sb_printf(&b,
              "# HELP albd_requests_total Requests received.\n"
              "# TYPE albd_requests_total counter\nalbd_requests_total %llu\n",
              (unsigned long long)st.requests);
    sb_printf(&b, "# HELP albd_responses_total Responses sent, by status class.\n"
                  "# TYPE albd_responses_total counter\n");
    for (int c = 1; c <= 5; c++)
        sb_printf(&b, "albd_responses_total{code=\"%dxx\"} %llu\n", c,
                  (unsigned long long)st.responses_by_class[c]);
    sb_printf(&b,
              "# HELP albd_upstream_connections_total Upstream connections opened or reused.\n"
              "# TYPE albd_upstream_connections_total counter\n"
              "albd_upstream_connections_total{kind=\"new\"} %llu\n"
              "albd_upstream_connections_total{kind=\"reused\"} %llu\n",
              (unsigned long long)st.upstream_connects, (unsigned long long)st.upstream_reused);
    sb_printf(&b,
              "# HELP albd_mirror_requests_total trafficMirror copies, by outcome.\n"
              "# TYPE albd_mirror_requests_total counter\n"
              "albd_mirror_requests_total{result=\"sent\"} %llu\n"
              "albd_mirror_requests_total{result=\"dropped\"} %llu\n"
              "albd_mirror_requests_total{result=\"failed\"} %llu\n",
              (unsigned long long)st.mirror_sent, (unsigned long long)st.mirror_dropped,
              (unsigned long long)st.mirror_failed);
    server_health_metrics(a, &b);
    char *obs = ag_obs_metrics(a); /* agent/obs_metrics.c */
    if (obs)
        sb_printf(&b, "%s", obs);
    free(obs);
    char *cs = NULL;
    size_t cs_len = 0;
    if (ag_certsvc_metrics(a->certsvc, &cs, &cs_len) == 0 && cs)
        sb_printf(&b, "%s", cs);
    free(cs);
    return b.p;
}

/* ":" and a port number (1 to 65535), or nothing. */
static bool port_ok(const char *p, size_t n)
{
    if (n == 0)
        return true;
    if (p[0] != ':' || n < 2 || n > 6)
        return false;
    unsigned v = 0;
    for (size_t i = 1; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    return v >= 1 && v <= 65535;
}

/* Whether a Host header value names this machine: an IPv4 literal, an IPv6
 * literal in brackets, localhost, or a name given with --admin-host, each
 * with an optional port. A browser led here by DNS rebinding sends the
 * attacker's name, which is none of these; probes (kubelet sends the pod
 * IP), curl and `albd plan --against http://127.0.0.1:9901` send an IP or
 * localhost. */
static bool host_allowed(const struct ag_options *o, const char *v, size_t n)
{
    char host[256];
    if (n == 0)
        return false;
    if (v[0] == '[') {
        const char *rb = memchr(v, ']', n);
        if (rb == NULL)
            return false;
        size_t hl = (size_t)(rb - v - 1);
        struct in6_addr a6;
        if (hl == 0 || hl >= INET6_ADDRSTRLEN)
            return false;
        memcpy(host, v + 1, hl);
        host[hl] = '\0';
        return inet_pton(AF_INET6, host, &a6) == 1 && port_ok(rb + 1, n - (size_t)(rb + 1 - v));
    }
    const char *colon = memchr(v, ':', n);
    size_t hl = colon ? (size_t)(colon - v) : n;
    if (hl == 0 || hl >= sizeof host || !port_ok(v + hl, n - hl))
        return false;
    memcpy(host, v, hl);
    host[hl] = '\0';
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) == 1 || strcasecmp(host, "localhost") == 0)
        return true;
    for (size_t i = 0; i < o->n_admin_hosts; i++)
        if (strcasecmp(host, o->admin_hosts[i]) == 0)
            return true;
    return false;
}

/* Finds the Host header of the request head req (NUL-terminated, complete):
 * 0 none, 1 one (value without surrounding blanks in *v, *n), -1 several. */
static int find_host(const char *req, const char **v, size_t *n)
{
    int found = 0;
    const char *line = strchr(req, '\n');
    while (line) {
        line++;
        const char *eol = strchr(line, '\n');
        if (eol == NULL)
            break;
        size_t len = (size_t)(eol - line);
        if (len && line[len - 1] == '\r')
            len--;
        if (len == 0)
            break; /* end of the head */
        if (len >= 5 && strncasecmp(line, "host:", 5) == 0) {
            if (found++)
                return -1;
            const char *p = line + 5, *e = line + len;
            while (p < e && (*p == ' ' || *p == '\t'))
                p++;
            while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            *v = p;
            *n = (size_t)(e - p);
        }
        line = eol;
    }
    return found;
}

#define TEXT(s) "text/plain", s, sizeof s - 1

/* /status and /config, optionally narrowed by "l=SELECTOR" in query (see
 * reconciler/selector.h; several l= are ANDed). A bad selector or query
 * is answered 400 with the reason. */
static void serve_selected(struct admin_conn *c, bool head, const char *path, const char *query)
{
    struct ag_agent *a = c->ad->agent;
    char *text = NULL, why[320], msg[512];
    struct rc_selector *sel = NULL;
    if (ag_query_get(query, "l", ',', &text, why, sizeof why) < 0 ||
        rc_selector_parse(text, &sel, why, sizeof why) != 0) {
        int n = snprintf(msg, sizeof msg, "bad label selector (l=): %s\n", why);
        respond(c, head, 400, "text/plain", msg, n > 0 && (size_t)n < sizeof msg ? (size_t)n : 0);
        free(text);
        return;
    }
    free(text);
    char *s = NULL;
    if (strcmp(path, "/status") == 0) {
        s = status_json(a, sel);
    } else {
        json_t *j = a->running ? rc_export_model(a->running) : json_object();
        if (j && rc_selector_filter_exports(sel, j, NULL) != 0) {
            json_decref(j);
            j = NULL;
        }
        if (j) {
            json_object_set_new(j, "generation",
                                json_integer((json_int_t)px_runtime_generation(a->rt)));
            s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
            json_decref(j);
        }
    }
    rc_selector_free(sel);
    respond(c, head, 200, "application/json", s ? s : "{}", s ? strlen(s) : 2);
    free(s);
}

static void handle(struct admin_conn *c)
{
    struct ag_admin *ad = c->ad;
    struct ag_agent *a = ad->agent;
    char method[8], path[REQ_MAX];
    if (sscanf(c->req, "%7s %8191s HTTP/1.%*c", method, path) != 2) {
        respond(c, false, 400, TEXT("bad request\n"));
        return;
    }
    bool head = strcmp(method, "HEAD") == 0;
    const char *hv = NULL;
    size_t hn = 0;
    int nh = find_host(c->req, &hv, &hn);
    if (nh < 0) {
        respond(c, head, 400, TEXT("more than one Host header\n"));
        return;
    }
    /* A request without Host (HTTP/1.0 health checks) cannot come from a
     * browser, so it is let through. One naming another host is answered
     * 421, not 403: nothing is forbidden to the client, the request was
     * meant for another authority — what a page's script sends after DNS
     * rebinding its name to this address. */
    if (nh == 1 && !host_allowed(&a->opt, hv, hn)) {
        respond(c, head, 421,
                TEXT("unknown Host: use an IP address, localhost, or a name given with "
                     "--admin-host\n"));
        return;
    }
    char *q = strchr(path, '?');
    if (q)
        *q++ = '\0';
    if (!head && strcmp(method, "GET") != 0) {
        respond(c, false, 405, TEXT("GET or HEAD only\n"));
        return;
    }
    if (strcmp(path, "/healthz") == 0) {
        respond(c, head, 200, TEXT("ok\n"));
    } else if (strcmp(path, "/readyz") == 0) {
        if (a->stopping) /* SIGTERM: stop sending here; still serving for the grace */
            respond(c, head, 503, TEXT("draining\n"));
        else if (a->running && a->listeners_pending && !a->opt.ready_when_any)
            respond(c, head, 503, TEXT("not ready: listeners wait for service certificates\n"));
        else if (a->running && a->running->n_listeners > 0)
            respond(c, head, 200, TEXT("ready\n"));
        else if (a->running) /* an empty folder serves nothing: not ready for traffic */
            respond(c, head, 503, TEXT("not ready: no listener\n"));
        else
            respond(c, head, 503, TEXT("not ready\n"));
    } else if (ad->probe_only) {
        respond(c, head, 404, TEXT("not found: this address serves /healthz and /readyz only\n"));
    } else if (strcmp(path, "/status") == 0 || strcmp(path, "/config") == 0) {
        serve_selected(c, head, path, q);
    } else if (strcmp(path, "/metrics") == 0) {
        char *s = metrics_text(a);
        respond(c, head, 200, "text/plain; version=0.0.4", s ? s : "", s ? strlen(s) : 0);
        free(s);
    } else {
        respond(c, head, 404, TEXT("not found\n"));
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct admin_conn *c = h->data;
    buf->base = c->req + c->len;
    buf->len = REQ_MAX - 1 - c->len;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct admin_conn *c = s->data;
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->len += (size_t)n;
    c->req[c->len] = '\0';
    if (strstr(c->req, "\r\n\r\n") || strstr(c->req, "\n\n"))
        handle(c);
    else if (c->len >= REQ_MAX - 1)
        respond(c, false, 431, TEXT("request head too large\n"));
}

static void on_refused_closed(uv_handle_t *h)
{
    free(h->data);
}

/* Accepts and closes at once, with a 503 if the socket takes it without
 * waiting: an endpoint at MAX_CONNS keeps nothing for new connections. */
static void refuse(uv_stream_t *server)
{
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                               "Content-Length: 5\r\nRetry-After: 1\r\nCache-Control: no-store\r\n"
                               "Connection: close\r\n\r\nbusy\n";
    struct admin_refused *r = calloc(1, sizeof *r);
    if (r == NULL)
        return;
    r->tcp.data = r;
    uv_tcp_init(server->loop, &r->tcp);
    if (uv_accept(server, (uv_stream_t *)&r->tcp) == 0) {
        uv_buf_t b = uv_buf_init((char *)busy, sizeof busy - 1);
        uv_try_write((uv_stream_t *)&r->tcp, &b, 1);
    }
    uv_close((uv_handle_t *)&r->tcp, on_refused_closed);
}

static const char *endpoint_name(const struct ag_admin *ad)
{
    return ad->probe_only ? "probe endpoint" : "admin endpoint";
}

static void on_connection(uv_stream_t *server, int status)
{
    struct ag_admin *ad = server->data;
    if (status < 0)
        return;
    if (ad->n_conns >= MAX_CONNS) {
        if (!ad->saturated)
            px_log_warn("%s: %d connections open; refusing new ones until some close",
                        endpoint_name(ad), MAX_CONNS);
        ad->saturated = true;
        refuse(server);
        return;
    }
    if (ad->n_conns < MAX_CONNS / 2)
        ad->saturated = false;
    struct admin_conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->ad = ad;
    c->tcp.data = c;
    c->timer.data = c;
    c->open_handles = 2;
    uv_tcp_init(server->loop, &c->tcp);
    uv_timer_init(server->loop, &c->timer);
    c->next = ad->conns;
    if (ad->conns)
        ad->conns->prev = c;
    ad->conns = c;
    ad->n_conns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0 ||
        uv_timer_start(&c->timer, on_deadline, HEAD_TIMEOUT_MS, 0) != 0)
        conn_close(c);
}

int ag_admin_start(struct ag_agent *a, const char *addr, bool probe_only, struct ag_admin **out)
{
    char host[128];
    int port = 0;
    struct sockaddr_storage ss;
    bool loopback;
    int rc;
    if (addr[0] == '[') {
        if (sscanf(addr, "[%127[^]]]:%d", host, &port) != 2)
            return UV_EINVAL;
        rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss);
        loopback = rc == 0 && IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&ss)->sin6_addr);
    } else {
        if (sscanf(addr, "%127[^:]:%d", host, &port) != 2)
            return UV_EINVAL;
        rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
        loopback = rc == 0 && (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
    }
    if (rc != 0 || port <= 0 || port > 65535)
        return UV_EINVAL;
    struct ag_admin *ad = calloc(1, sizeof *ad);
    if (!ad)
        return UV_ENOMEM;
    ad->agent = a;
    ad->probe_only = probe_only;
    ad->tcp.data = ad;
    uv_tcp_init(a->loop, &ad->tcp);
    rc = uv_tcp_bind(&ad->tcp, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&ad->tcp, 64, on_connection);
    if (rc != 0) {
        ag_admin_close(ad);
        return rc;
    }
    if (!loopback && !probe_only)
        px_log_warn("admin endpoint %s is not on loopback: /config, /status and /metrics are "
                    "readable from the network; for health checks from outside, keep --admin on "
                    "127.0.0.1 and use --probe ADDR:PORT",
                    addr);
    *out = ad;
    return 0;
}

static void on_admin_closed(uv_handle_t *h)
{
    free(h->data);
}

void ag_admin_close(struct ag_admin *ad)
{
    if (!ad)
        return;
    struct admin_conn *next;
    for (struct admin_conn *c = ad->conns; c; c = next) {
        next = c->next;
        c->ad = NULL;
        c->prev = c->next = NULL;
        conn_close(c);
    }
    ad->conns = NULL;
    ad->n_conns = 0;
    uv_close((uv_handle_t *)&ad->tcp, on_admin_closed);
}
