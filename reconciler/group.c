/* ServerGroup resources (group.h). */
#include <stdio.h>
#include <string.h>

#include "reconciler/arena.h"
#include "reconciler/build.h"
#include "reconciler/field.h"
#include "reconciler/group.h"
#include "reconciler/meta.h"
#include "reconciler/reuse.h"
#include "reconciler/source.h"
#include "common/hostname.h"

/* A server address that is not an IP literal must be a host name that
 * getaddrinfo resolves as a name: legal characters and labels, and a last
 * label that is not all digits ("10.1.2" would be read as an IPv4 address). */
static bool valid_host_name(const char *s)
{
    char norm[CM_HOSTNAME_MAX + 1];
    if (cm_hostname_normalize(s, strlen(s), norm, sizeof norm) < 0 || strchr(s, '_'))
        return false;
    const char *last = strrchr(norm, '.');
    last = last ? last + 1 : norm;
    for (const char *p = norm; *p; p++)
        if ((*p == '-' && (p == norm || p[-1] == '.' || p[1] == '.' || p[1] == '\0')))
            return false;
    return last[strspn(last, "0123456789")] != '\0';
}

static unsigned code_bit(const char *s)
{
    return s && strlen(s) == 8 && !strncmp(s, "http_", 5) ? 1u << (s[5] - '0') : 0;
}

/* The reference's rule for HealthCheckHost: a domain name with at least one
 * dot whose rightmost label is letters only (the schema checked the
 * characters and the length). */
static bool health_host_ok(const char *h)
{
    const char *dot = strrchr(h, '.');
    if (!dot || dot == h || !dot[1])
        return false;
    for (const char *p = dot + 1; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
            return false;
    return true;
}

/* An RFC 6265 cookie name: a token (no separators, controls or spaces). */
static bool cookie_name_ok(const char *s)
{
    if (!s || !*s || *s == '$')
        return false;
    for (; *s; s++)
        if (*s <= 32 || *s >= 127 || strchr("()<>@,;:\\\"/[]?={}", *s))
            return false;
    return true;
}

/* uchQueryParameter, stickySession, slowStart and connectionDrain: the
 * ranges are the schema's (alb-api.md 3.1); what depends on another field
 * is checked here. Errors are reported; -1 only when out of memory. */
static int build_lb_options(struct rc_load *L, struct rc_doc *d, yaml_node_t *spec,
                            struct rc_server_group *g)
{
    yaml_node_t *uch = rc_at(d, spec, "uchQueryParameter");
    if (g->scheduler == RC_SCHED_UCH && !uch)
        rc_doc_err(L, d, RC_ERROR, rc_at(d, spec, "scheduler"), "spec.scheduler",
                   "the Uch scheduler needs uchQueryParameter");
    else if (g->scheduler != RC_SCHED_UCH && uch)
        rc_doc_err(L, d, RC_ERROR, uch, "spec.uchQueryParameter",
                   "uchQueryParameter is used only by the Uch scheduler");
    if (uch && g->scheduler == RC_SCHED_UCH &&
        !(g->uch_query_parameter = rc_arena_strdup(L->arena, rc_y_str(uch))))
        return -1;

    yaml_node_t *st = rc_at(d, spec, "stickySession");
    g->sticky.enabled = rc_field_bool(d, st, "enabled", false);
    g->sticky.server = !strcmp(rc_field_str(d, st, "type", "Insert"), "Server");
    g->sticky.cookie_timeout_s = rc_field_int(d, st, "cookieTimeoutSeconds", 1000);
    const char *cookie = rc_field_str(d, st, "cookie", "");
    if (g->sticky.enabled && g->sticky.server) {
        yaml_node_t *cn = rc_at(d, st, "cookie");
        if (!cookie_name_ok(cookie))
            rc_doc_err(L, d, RC_ERROR, cn ? cn : st, "spec.stickySession.cookie",
                       "type Server needs the backend's cookie name (1-200 token characters, "
                       "not starting with $)");
        else if (!(g->sticky.cookie = rc_arena_strdup(L->arena, cookie)))
            return -1;
        yaml_node_t *tn = rc_at(d, st, "cookieTimeoutSeconds");
        if (tn)
            rc_doc_err(L, d, RC_ERROR, tn, "spec.stickySession.cookieTimeoutSeconds",
                       "cookieTimeoutSeconds is for type Insert (the backend's cookie keeps "
                       "its own lifetime)");
    } else if (g->sticky.enabled && *cookie) {
        rc_doc_err(L, d, RC_ERROR, rc_at(d, st, "cookie"), "spec.stickySession.cookie",
                   "cookie is for type Server (Insert uses albd's SERVERID cookie)");
    }

    yaml_node_t *ss = rc_at(d, spec, "slowStart");
    g->slow_start.enabled = rc_field_bool(d, ss, "enabled", false);
    g->slow_start.duration_s = rc_field_int(d, ss, "durationSeconds", 30);
    if (g->slow_start.enabled && g->scheduler != RC_SCHED_WRR)
        rc_doc_err(L, d, RC_ERROR, rc_at(d, ss, "enabled"), "spec.slowStart.enabled",
                   "slow start works only with the Wrr scheduler");

    yaml_node_t *cd = rc_at(d, spec, "connectionDrain");
    g->drain.enabled = rc_field_bool(d, cd, "enabled", false);
    g->drain.timeout_s = rc_field_int(d, cd, "timeoutSeconds", 300);
    return 0;
}

int rc_build_group(struct rc_load *L, struct rc_doc *d, struct rc_server_group *g,
                   const struct rc_kind_docs *certs)
{
    yaml_node_t *spec = rc_at(d, rc_doc_root(d), "spec");
    if (rc_fill_meta(L, d, &g->meta, NULL, 0, NULL, 0) != 0)
        return -1;
    g->protocol = !strcmp(rc_field_str(d, spec, "protocol", "HTTP"), "HTTPS") ? RC_GROUP_HTTPS
                                                                              : RC_GROUP_HTTP;
    const char *sch = rc_field_str(d, spec, "scheduler", "Wrr");
    g->scheduler = !strcmp(sch, "Wlc")   ? RC_SCHED_WLC
                   : !strcmp(sch, "Sch") ? RC_SCHED_SCH
                   : !strcmp(sch, "Uch") ? RC_SCHED_UCH
                                         : RC_SCHED_WRR;
    g->upstream_keepalive = rc_field_bool(d, spec, "upstreamKeepalive", true);
    g->fail_open = strcmp(rc_field_str(d, spec, "whenAllUnhealthy", "FailOpen"), "Reject") != 0;

    yaml_node_t *servers = rc_at(d, spec, "servers");
    if (servers && servers->type == YAML_SEQUENCE_NODE) {
        yaml_node_item_t *start = servers->data.sequence.items.start;
        size_t n = (size_t)(servers->data.sequence.items.top - start);
        g->servers = rc_arena_alloc(L->arena, n * sizeof(*g->servers));
        if (g->servers == NULL)
            return -1;
        for (size_t i = 0; i < n; i++) {
            yaml_node_t *sn = yaml_document_get_node(d->y, start[i]);
            struct rc_server *s = &g->servers[g->n_servers++];
            yaml_node_t *an = rc_at(d, sn, "address");
            s->address = rc_arena_strdup(L->arena, rc_y_str(an));
            s->port = rc_field_int(d, sn, "port", 0);
            s->weight = rc_field_int(d, sn, "weight", 100);
            s->loc = rc_y_loc(d, sn);
            if (s->address == NULL)
                return -1;
            char path[64];
            snprintf(path, sizeof(path), "spec.servers[%zu].address", i);
            if (!rc_is_ip(s->address) && !valid_host_name(s->address))
                rc_doc_err(L, d, RC_ERROR, an, path,
                           "\"%s\" is neither an IP address nor a valid host name", s->address);
            for (size_t j = 0; j < i; j++) {
                if (!strcmp(g->servers[j].address, s->address) && g->servers[j].port == s->port) {
                    snprintf(path, sizeof(path), "spec.servers[%zu]", i);
                    rc_doc_err(L, d, RC_ERROR, sn, path, "duplicates spec.servers[%zu] (%s:%d)", j,
                               s->address, s->port);
                    break;
                }
            }
        }
    }

    struct rc_health_check *hc = &g->health_check;
    yaml_node_t *h = rc_at(d, spec, "healthCheck");
    hc->enabled = rc_field_bool(d, h, "enabled", true);
    const char *proto = rc_field_str(d, h, "protocol", "HTTP");
    hc->protocol = !strcmp(proto, "HTTPS") ? 1 : !strcmp(proto, "TCP") ? 2 : 0;
    hc->method = rc_arena_strdup(L->arena, rc_field_str(d, h, "method", "HEAD"));
    hc->path = rc_arena_strdup(L->arena, rc_field_str(d, h, "path", "/"));
    hc->host = rc_arena_strdup(L->arena, rc_field_str(d, h, "host", NULL));
    hc->port = rc_field_int(d, h, "port", 0);
    hc->http_version = !strcmp(rc_field_str(d, h, "httpVersion", "HTTP1.1"), "HTTP1.0") ? 10 : 11;
    hc->interval_s = rc_field_int(d, h, "intervalSeconds", 2);
    hc->timeout_s = rc_field_int(d, h, "timeoutSeconds", 5);
    hc->healthy_threshold = rc_field_int(d, h, "healthyThreshold", 3);
    hc->unhealthy_threshold = rc_field_int(d, h, "unhealthyThreshold", 3);
    yaml_node_t *codes = rc_at(d, h, "codes");
    if (codes && codes->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = codes->data.sequence.items.start;
             it < codes->data.sequence.items.top; it++)
            hc->codes |= code_bit(rc_y_str(yaml_document_get_node(d->y, *it)));
    } else {
        hc->codes = code_bit("http_2xx") | code_bit("http_3xx");
    }
    if (hc->method == NULL || hc->path == NULL)
        return -1;
    if (hc->host && !health_host_ok(hc->host))
        rc_doc_err(L, d, RC_ERROR, rc_at(d, h, "host"), "spec.healthCheck.host",
                   "\"%s\" is not a domain name: it needs at least one dot and a last label of "
                   "letters only (health.example.com)",
                   hc->host);
    if (build_lb_options(L, d, spec, g) != 0)
        return -1;

    /* spec.tls: end-to-end TLS of an HTTPS group. */
    yaml_node_t *tls = rc_at(d, spec, "tls");
    if (tls && g->protocol != RC_GROUP_HTTPS)
        rc_doc_err(L, d, RC_ERROR, tls, "spec.tls", "tls needs protocol: HTTPS");
    yaml_node_t *cas = rc_at(d, spec, "tls.caCertificates");
    if (cas && cas->type == YAML_SEQUENCE_NODE) {
        yaml_node_item_t *start = cas->data.sequence.items.start;
        size_t n = (size_t)(cas->data.sequence.items.top - start);
        g->tls.ca_certificates = rc_arena_alloc(L->arena, (n + 1) * sizeof(void *));
        if (g->tls.ca_certificates == NULL)
            return -1;
        for (size_t i = 0; i < n; i++) {
            char path[64];
            snprintf(path, sizeof(path), "spec.tls.caCertificates[%zu]", i);
            yaml_node_t *v = yaml_document_get_node(d->y, start[i]);
            long k = rc_resolve(L, d, v, path, "Certificate", certs);
            if (k < 0)
                continue;
            const struct rc_certificate *c = L->m->certificates[k];
            if (c->type != RC_CERT_CA)
                rc_doc_err(L, d, RC_ERROR, v, path,
                           "certificate \"%s\" is a Server certificate, not a CA", c->meta.name);
            g->tls.ca_certificates[g->tls.n_ca_certificates++] = c;
        }
    }
    yaml_node_t *sn = rc_at(d, spec, "tls.serverName");
    if (sn) {
        g->tls.server_name = rc_arena_strdup(L->arena, rc_y_str(sn));
        if (g->tls.server_name == NULL)
            return -1;
        if (!rc_is_ip(g->tls.server_name) && !valid_host_name(g->tls.server_name))
            rc_doc_err(L, d, RC_ERROR, sn, "spec.tls.serverName",
                       "\"%s\" is neither an IP address nor a valid host name", g->tls.server_name);
    }
    yaml_node_t *cc = rc_at(d, spec, "tls.clientCertificate");
    if (cc) {
        long k = rc_resolve(L, d, cc, "spec.tls.clientCertificate", "Certificate", certs);
        if (k >= 0) {
            const struct rc_certificate *c = L->m->certificates[k];
            if (c->type == RC_CERT_CA || c->key_pem == NULL)
                rc_doc_err(L, d, RC_ERROR, cc, "spec.tls.clientCertificate",
                           "certificate \"%s\" has no private key (a client certificate needs "
                           "certificate and privateKey files)",
                           c->meta.name);
            g->tls.client_certificate = c;
        }
    }
    return 0;
}

bool rc_reuse_group(struct rc_load *L, struct rc_doc *d, struct rc_server_group *g)
{
    /* spec.tls names certificates: their existence is checked by a build
     * (a lazy document has no "tls" in its text at all: load.c). */
    if (!rc_reuse_from(L, d) || (!d->lazy && rc_at(d, rc_doc_root(d), "spec.tls") != NULL))
        return false;
    if (rc_arena_hold(L->m->arena, d->prev_src->origin) != 0) {
        L->oom = true;
        return false;
    }
    *g = *(const struct rc_server_group *)d->prev_src->res;
    int moved = d->src_line - d->prev_src->line;
    if (moved != 0) {
        /* Moved in its file (load.c): the copy's locations are the new
         * ones; the servers array is the only part that holds any. */
        struct rc_server *sv = rc_arena_alloc(L->arena, (g->n_servers + 1) * sizeof(*sv));
        if (sv == NULL) {
            L->oom = true;
            return false;
        }
        for (size_t i = 0; i < g->n_servers; i++) {
            sv[i] = g->servers[i];
            sv[i].loc.line += moved;
        }
        g->servers = sv;
        g->meta.loc.line += moved;
        d->copy_local = true;
    }
    return true;
}
