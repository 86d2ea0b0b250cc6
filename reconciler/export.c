/* The model as canonical JSON (see export.h for the shape).
 *
 * Every builder returns 0 or -1 (out of memory); a failed builder leaves its
 * partial object to be freed by the caller's json_decref() of the root. */
#include "reconciler/export.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/hash.h"
#include "reconciler/model.h"

/* json_string() refuses invalid UTF-8; names from certificates can carry
 * any byte, and one bad subject must not make /config fail, so such bytes
 * become '?'. */
static json_t *str_new(const char *s)
{
    json_t *j = json_string(s);
    if (j != NULL)
        return j;
    char *copy = strdup(s);
    if (copy == NULL)
        return NULL;
    for (unsigned char *p = (unsigned char *)copy; *p != '\0'; p++)
        if (*p >= 0x80)
            *p = '?';
    j = json_string(copy);
    free(copy);
    return j;
}

/* Omits the key when s is NULL: absent and unset mean the same thing. */
static int set_str(json_t *o, const char *key, const char *s)
{
    if (s == NULL)
        return 0;
    return json_object_set_new(o, key, str_new(s));
}

static int set_int(json_t *o, const char *key, json_int_t v)
{
    return json_object_set_new(o, key, json_integer(v));
}

static int set_bool(json_t *o, const char *key, bool v)
{
    return json_object_set_new(o, key, json_boolean(v));
}

/* Adds an empty object under key and returns it (borrowed), NULL on OOM. */
static json_t *add_obj(json_t *o, const char *key)
{
    json_t *child = json_object();
    if (json_object_set_new(o, key, child) != 0)
        return NULL;
    return child;
}

/* Adds an empty array under key and returns it (borrowed), NULL on OOM. */
static json_t *add_array(json_t *o, const char *key)
{
    json_t *child = json_array();
    if (json_object_set_new(o, key, child) != 0)
        return NULL;
    return child;
}

static int set_str_array(json_t *o, const char *key, const char *const *v, size_t n)
{
    json_t *a = json_array();
    if (json_object_set_new(o, key, a) != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(a, str_new(v[i] != NULL ? v[i] : "")) != 0)
            return -1;
    return 0;
}

static int set_time(json_t *o, const char *key, time_t t)
{
    struct tm tm;
    char buf[32];
    if (gmtime_r(&t, &tm) == NULL || strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        return set_str(o, key, "invalid");
    return set_str(o, key, buf);
}

/* Adds the string map v (n entries) under key. 0, or -1 on OOM. */
static int set_map(json_t *o, const char *key, const struct rc_label *v, size_t n)
{
    json_t *map = add_obj(o, key);
    if (map == NULL)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (set_str(map, v[i].key, v[i].value) != 0)
            return -1;
    return 0;
}

/* Creates resources[kind][meta->name] = {"labels": {...}, "spec": {}}, with
 * "annotations" and "namespace" only when the manifest has them (so that a
 * /config without them, from an albd before they existed, compares equal),
 * and returns the spec object (borrowed), NULL on OOM. */
static json_t *add_resource(json_t *kind, const struct rc_meta *meta)
{
    json_t *res = add_obj(kind, meta->name);
    if (res == NULL || set_map(res, "labels", meta->labels, meta->n_labels) != 0)
        return NULL;
    if (meta->n_annotations > 0 &&
        set_map(res, "annotations", meta->annotations, meta->n_annotations) != 0)
        return NULL;
    if (set_str(res, "namespace", meta->ns) != 0)
        return NULL;
    return add_obj(res, "spec");
}

static const char *edition_name(enum rc_edition e)
{
    switch (e) {
    case RC_EDITION_BASIC:
        return "Basic";
    case RC_EDITION_WAF:
        return "WAF";
    case RC_EDITION_STANDARD:
        break;
    }
    return "Standard";
}

static int export_instance(json_t *kind, const struct rc_instance *in)
{
    json_t *spec = add_resource(kind, &in->meta);
    if (spec == NULL)
        return -1;
    if (set_str(spec, "id", in->id != NULL ? in->id : in->meta.name) != 0 ||
        set_str(spec, "edition", edition_name(in->edition)) != 0 ||
        set_str_array(spec, "addresses", in->addresses, in->n_addresses) != 0 ||
        set_int(spec, "maxTimeoutSeconds", in->max_timeout_s) != 0)
        return -1;
    return 0;
}

/* Hex SHA-256 of public bytes (the certificate chain PEM). */
static int sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != sizeof md)
        return -1;
    cm_hex(md, sizeof md, out);
    return 0;
}

static const char *key_type_name(enum rc_key_type t)
{
    switch (t) {
    case RC_KEY_RSA:
        return "RSA";
    case RC_KEY_EC:
        return "EC";
    case RC_KEY_OTHER:
        return "other";
    case RC_KEY_NONE:
        break;
    }
    return NULL;
}

/* Facts only. key_pem is deliberately never read here: nothing computed
 * from a private key may leave the process. key_path is a path the operator
 * wrote, not a secret. */
/* p relative to the manifest folder root when it lies under it (the same
 * repository checked out elsewhere exports the same text), else p. */
static const char *under_root(const char *root, const char *p)
{
    size_t n = root ? strlen(root) : 0;
    while (n > 1 && root[n - 1] == '/')
        n--;
    if (!p || n == 0 || strncmp(p, root, n) != 0 || p[n] != '/')
        return p;
    p += n;
    while (*p == '/')
        p++;
    return *p ? p : NULL;
}

static int export_certificate(json_t *kind, const struct rc_certificate *c, const char *root)
{
    json_t *spec = add_resource(kind, &c->meta);
    if (spec == NULL)
        return -1;
    if (set_str(spec, "type", c->type == RC_CERT_CA ? "CA" : "Server") != 0)
        return -1;
    json_t *source = add_obj(spec, "source");
    if (source == NULL)
        return -1;
    json_t *src;
    switch (c->source) {
    case RC_CERT_SOURCE_FILES:
        if ((src = add_obj(source, "files")) == NULL ||
            set_str(src, "certificate", under_root(root, c->cert_path)) ||
            set_str(src, "privateKey", under_root(root, c->key_path)))
            return -1;
        break;
    case RC_CERT_SOURCE_INLINE:
        if ((src = add_obj(source, "inline")) == NULL ||
            set_str(src, "sha256Fingerprint", c->fingerprint_sha256) != 0)
            return -1;
        break;
    case RC_CERT_SOURCE_SERVICE:
        if ((src = add_obj(source, "service")) == NULL ||
            set_str(src, "name", c->service ? c->service->meta.name : NULL) ||
            set_str(src, "certificateId", c->service_id) ||
            (c->pending && set_bool(src, "pending", true)))
            return -1;
        break;
    }
    if (c->cert_pem == NULL)
        return 0; /* a service certificate not fetched yet: no facts */
    if (set_str(spec, "subject", c->subject) != 0 || set_str(spec, "issuer", c->issuer) != 0 ||
        set_str_array(spec, "dnsNames", c->dns_names, c->n_dns_names) != 0 ||
        set_time(spec, "notBefore", c->not_before) != 0 ||
        set_time(spec, "notAfter", c->not_after) != 0 ||
        set_str(spec, "sha256Fingerprint", c->fingerprint_sha256) != 0 ||
        set_str(spec, "keyType", key_type_name(c->key_type)) != 0 ||
        set_bool(spec, "isCa", c->is_ca) != 0)
        return -1;
    if (c->key_type != RC_KEY_NONE && set_int(spec, "keyBits", c->key_bits) != 0)
        return -1;
    /* The leaf fingerprint misses a renewed intermediate; the chain's hash
     * does not. The chain is public, so its hash is too. */
    if (c->cert_pem != NULL) {
        char hex[65];
        size_t len = c->cert_pem_len != 0 ? c->cert_pem_len : strlen(c->cert_pem);
        if (sha256_hex(c->cert_pem, len, hex) != 0 || set_str(spec, "chainSha256", hex) != 0)
            return -1;
    }
    return 0;
}

/* The token file's path is shown, never its content. */
static int export_cert_service(json_t *kind, const struct rc_cert_service *s)
{
    json_t *spec = add_resource(kind, &s->meta);
    if (spec == NULL || set_str(spec, "endpoint", s->endpoint) ||
        set_str(spec, "caFile", s->ca_file) ||
        (s->token_file && set_str(spec, "tokenFile", s->token_file)) ||
        set_int(spec, "refreshIntervalSeconds", s->refresh_s) ||
        set_int(spec, "timeoutSeconds", s->timeout_s))
        return -1;
    if (s->client_cert) {
        json_t *cc = add_obj(spec, "clientCertificate");
        if (cc == NULL || set_str(cc, "certificate", s->client_cert) ||
            set_str(cc, "privateKey", s->client_key))
            return -1;
    }
    return 0;
}

static int export_policy(json_t *kind, const struct rc_tls_policy *p)
{
    static const struct {
        unsigned bit;
        const char *name;
    } versions[] = {
        {RC_TLS_1_0, "TLSv1.0"},
        {RC_TLS_1_1, "TLSv1.1"},
        {RC_TLS_1_2, "TLSv1.2"},
        {RC_TLS_1_3, "TLSv1.3"},
    };
    json_t *spec = add_resource(kind, &p->meta);
    if (spec == NULL)
        return -1;
    json_t *v = json_array();
    if (json_object_set_new(spec, "tlsVersions", v) != 0)
        return -1;
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++)
        if ((p->versions & versions[i].bit) != 0 &&
            json_array_append_new(v, str_new(versions[i].name)))
            return -1;
    return set_str_array(spec, "ciphers", p->ciphers, p->n_ciphers);
}

static const char *scheduler_name(enum rc_scheduler s)
{
    switch (s) {
    case RC_SCHED_WLC:
        return "Wlc";
    case RC_SCHED_SCH:
        return "Sch";
    case RC_SCHED_UCH:
        return "Uch";
    case RC_SCHED_WRR:
        break;
    }
    return "Wrr";
}

static int export_health_check(json_t *spec, const struct rc_health_check *hc)
{
    static const char *const protocols[] = {"HTTP", "HTTPS", "TCP"};
    json_t *o = add_obj(spec, "healthCheck");
    if (o == NULL)
        return -1;
    const char *proto = hc->protocol >= 0 && hc->protocol < 3 ? protocols[hc->protocol] : "HTTP";
    json_t *codes;
    if (set_bool(o, "enabled", hc->enabled) != 0 || set_str(o, "protocol", proto) != 0 ||
        set_str(o, "method", hc->method) != 0 || set_str(o, "path", hc->path) != 0 ||
        set_str(o, "host", hc->host) != 0 || set_int(o, "port", hc->port) != 0 ||
        set_str(o, "httpVersion", hc->http_version == 10 ? "HTTP1.0" : "HTTP1.1") != 0 ||
        (codes = add_array(o, "codes")) == NULL)
        return -1;
    /* bit n stands for http_nxx */
    for (int bit = 1; bit <= 5; bit++) {
        char name[16];
        snprintf(name, sizeof name, "http_%dxx", bit);
        if ((hc->codes & (1u << bit)) != 0 && json_array_append_new(codes, str_new(name)) != 0)
            return -1;
    }
    if (set_int(o, "intervalSeconds", hc->interval_s) != 0 ||
        set_int(o, "timeoutSeconds", hc->timeout_s) != 0 ||
        set_int(o, "healthyThreshold", hc->healthy_threshold) != 0 ||
        set_int(o, "unhealthyThreshold", hc->unhealthy_threshold) != 0)
        return -1;
    return 0;
}

/* uchQueryParameter, stickySession, slowStart, connectionDrain. */
static int export_lb_options(json_t *spec, const struct rc_server_group *g)
{
    if (g->uch_query_parameter && set_str(spec, "uchQueryParameter", g->uch_query_parameter) != 0)
        return -1;
    json_t *st = add_obj(spec, "stickySession");
    if (st == NULL || set_bool(st, "enabled", g->sticky.enabled) != 0 ||
        set_str(st, "type", g->sticky.server ? "Server" : "Insert") != 0 ||
        (g->sticky.server ? set_str(st, "cookie", g->sticky.cookie ? g->sticky.cookie : "")
                          : set_int(st, "cookieTimeoutSeconds", g->sticky.cookie_timeout_s)) != 0)
        return -1;
    json_t *ss = add_obj(spec, "slowStart");
    if (ss == NULL || set_bool(ss, "enabled", g->slow_start.enabled) != 0 ||
        set_int(ss, "durationSeconds", g->slow_start.duration_s) != 0)
        return -1;
    json_t *cd = add_obj(spec, "connectionDrain");
    if (cd == NULL || set_bool(cd, "enabled", g->drain.enabled) != 0 ||
        set_int(cd, "timeoutSeconds", g->drain.timeout_s) != 0)
        return -1;
    return 0;
}

static int export_group(json_t *kind, const struct rc_server_group *g)
{
    json_t *spec = add_resource(kind, &g->meta);
    if (spec == NULL)
        return -1;
    json_t *servers;
    if (set_str(spec, "protocol", g->protocol == RC_GROUP_HTTPS ? "HTTPS" : "HTTP") != 0 ||
        set_str(spec, "scheduler", scheduler_name(g->scheduler)) != 0 ||
        (servers = add_array(spec, "servers")) == NULL)
        return -1;
    for (size_t i = 0; i < g->n_servers; i++) {
        const struct rc_server *s = &g->servers[i];
        json_t *o = json_object();
        if (json_array_append_new(servers, o) != 0 || set_str(o, "address", s->address) != 0 ||
            set_int(o, "port", s->port) != 0 || set_int(o, "weight", s->weight) != 0)
            return -1;
    }
    if (export_health_check(spec, &g->health_check) != 0 ||
        set_str(spec, "whenAllUnhealthy", g->fail_open ? "FailOpen" : "Reject") != 0 ||
        set_bool(spec, "upstreamKeepalive", g->upstream_keepalive) != 0)
        return -1;
    if (g->protocol == RC_GROUP_HTTPS &&
        (g->tls.n_ca_certificates || g->tls.server_name || g->tls.client_certificate)) {
        json_t *tls = json_object();
        if (json_object_set_new(spec, "tls", tls) != 0)
            return -1;
        if (g->tls.n_ca_certificates) {
            json_t *cas = add_array(tls, "caCertificates");
            if (cas == NULL)
                return -1;
            for (size_t i = 0; i < g->tls.n_ca_certificates; i++)
                if (json_array_append_new(cas, str_new(g->tls.ca_certificates[i]->meta.name)) != 0)
                    return -1;
        }
        if ((g->tls.server_name && set_str(tls, "serverName", g->tls.server_name) != 0) ||
            (g->tls.client_certificate &&
             set_str(tls, "clientCertificate", g->tls.client_certificate->meta.name) != 0))
            return -1;
    }
    return export_lb_options(spec, g);
}

static const char *listener_protocol_name(enum rc_listener_protocol p)
{
    switch (p) {
    case RC_LISTENER_HTTPS:
        return "HTTPS";
    case RC_LISTENER_QUIC:
        return "QUIC";
    case RC_LISTENER_HTTP:
        break;
    }
    return "HTTP";
}

static const char *xff_mode_name(enum rc_xff_mode m)
{
    switch (m) {
    case RC_XFF_REMOVE:
        return "Remove";
    case RC_XFF_PRESERVE:
        return "Preserve";
    case RC_XFF_APPEND:
        break;
    }
    return "Append";
}

/* One headers.clientCert entry: {enabled, name} with name only when on. */
static int set_client_cert_header(json_t *o, const char *key, const char *name)
{
    json_t *h = add_obj(o, key);
    if (h == NULL || set_bool(h, "enabled", name != NULL) != 0 || set_str(h, "name", name) != 0)
        return -1;
    return 0;
}

static int set_cert_names(json_t *o, const char *key, const struct rc_certificate *const *v,
                          size_t n)
{
    json_t *a = json_array();
    if (json_object_set_new(o, key, a) != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(a, str_new(v[i] != NULL ? v[i]->meta.name : "")) != 0)
            return -1;
    return 0;
}

static int export_listener_tls(json_t *spec, const struct rc_listener *l)
{
    json_t *tls = add_obj(spec, "tls");
    if (tls == NULL)
        return -1;
    const char *policy = l->tls.policy != NULL ? l->tls.policy->meta.name : "tls_cipher_policy_1_2";
    if ((l->tls.certificate != NULL &&
         set_str(tls, "certificate", l->tls.certificate->meta.name) != 0) ||
        set_cert_names(tls, "extensionCertificates", l->tls.extension_certificates,
                       l->tls.n_extension_certificates) != 0 ||
        set_str(tls, "policy", policy) != 0 || set_bool(tls, "strictSni", l->tls.strict_sni) != 0)
        return -1;
    json_t *mutual = add_obj(tls, "mutualAuthentication");
    if (mutual == NULL || set_bool(mutual, "enabled", l->tls.mutual.enabled) != 0 ||
        set_cert_names(mutual, "caCertificates", l->tls.mutual.ca_certificates,
                       l->tls.mutual.n_ca_certificates) != 0)
        return -1;
    return 0;
}

/* A redirect or fixed response (a rule's, or a listener's default). */
static int export_action(json_t *o, const struct rc_action *a)
{
    if (a->kind == RC_ACTION_FORWARD) {
        json_t *fwd = add_obj(o, "forward");
        json_t *gs = fwd != NULL ? add_array(fwd, "serverGroups") : NULL;
        if (gs == NULL)
            return -1;
        for (size_t i = 0; i < a->forward.n_groups; i++) {
            json_t *g = json_object();
            if (json_array_append_new(gs, g) != 0 ||
                set_str(g, "name", a->forward.groups[i]->meta.name) != 0 ||
                set_int(g, "weight", a->forward.weights[i]) != 0)
                return -1;
        }
        if (a->forward.sticky) {
            json_t *ss = add_obj(fwd, "stickySession");
            if (ss == NULL || set_bool(ss, "enabled", true) != 0 ||
                set_int(ss, "timeoutSeconds", a->forward.sticky_timeout_s) != 0)
                return -1;
        }
        return 0;
    }
    if (a->kind == RC_ACTION_REDIRECT) {
        json_t *r = add_obj(o, "redirect");
        const char *proto = !strcmp(a->redirect.protocol, "http")    ? "HTTP"
                            : !strcmp(a->redirect.protocol, "https") ? "HTTPS"
                                                                     : a->redirect.protocol;
        if (r == NULL || set_int(r, "code", a->redirect.code) != 0 ||
            set_str(r, "protocol", proto) != 0 || set_str(r, "host", a->redirect.host) != 0 ||
            set_str(r, "port", a->redirect.port) != 0 ||
            set_str(r, "path", a->redirect.path) != 0 ||
            set_str(r, "query", a->redirect.query) != 0)
            return -1;
        return 0;
    }
    json_t *f = add_obj(o, "fixedResponse");
    if (f == NULL || set_int(f, "code", a->fixed.code) != 0 ||
        set_str(f, "contentType", a->fixed.content_type) != 0 ||
        set_str(f, "content", a->fixed.content) != 0)
        return -1;
    return 0;
}

/* spec.accessLog and spec.requestId. sample2xx is a real, except the
 * integers 0 and 1 (so that a manifest's 1 and the default read alike). */
static int export_listener_obs(json_t *spec, const struct rc_listener *l)
{
    json_t *al = add_obj(spec, "accessLog");
    double s = l->access_log.sample2xx;
    if (al == NULL || set_bool(al, "enabled", l->access_log.enabled) != 0 ||
        set_str(al, "path", l->access_log.path ? l->access_log.path : "-") != 0 ||
        json_object_set_new(al, "sample2xx",
                            s == 0.0 || s == 1.0 ? json_integer((json_int_t)s) : json_real(s)) != 0)
        return -1;
    json_t *id = add_obj(spec, "requestId");
    if (id == NULL || set_bool(id, "enabled", l->request_id.enabled) != 0 ||
        set_bool(id, "trustClient", l->request_id.trust_client) != 0 ||
        set_bool(id, "echo", l->request_id.echo) != 0)
        return -1;
    return 0;
}

static int set_strs(json_t *o, const char *key, const char *const *v, size_t n)
{
    if (n == 0)
        return 0;
    json_t *a = add_array(o, key);
    if (a == NULL)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(a, str_new(v[i])) != 0)
            return -1;
    return 0;
}

static int set_kvs(json_t *o, const char *key, const struct rc_kv *v, size_t n)
{
    if (n == 0)
        return 0;
    json_t *a = add_array(o, key);
    if (a == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_object();
        if (json_array_append_new(a, e) != 0 || set_str(e, "key", v[i].key) != 0 ||
            set_str(e, "value", v[i].value) != 0)
            return -1;
    }
    return 0;
}

/* One forwarding rule, in the manifest's shape (the plan keys rules by
 * name: field-level changes per rule). */
static int export_rule(json_t *rules, const struct rc_rule *r)
{
    static const char *const methods[] = {"HEAD", "GET",   "POST",  "OPTIONS",
                                          "PUT",  "PATCH", "DELETE"};
    json_t *o = json_object();
    if (json_array_append_new(rules, o) != 0 || set_str(o, "name", r->name) != 0 ||
        set_int(o, "priority", r->priority) != 0)
        return -1;
    json_t *c = add_obj(o, "conditions");
    if (c == NULL || set_strs(c, "host", r->hosts, r->n_hosts) != 0 ||
        set_strs(c, "path", r->paths, r->n_paths) != 0 ||
        set_kvs(c, "query", r->query, r->n_query) != 0 ||
        set_kvs(c, "cookie", r->cookies, r->n_cookies) != 0 ||
        set_strs(c, "sourceIp", r->source_ips, r->n_source_ips) != 0)
        return -1;
    if (r->methods) {
        json_t *m = add_array(c, "method");
        if (m == NULL)
            return -1;
        for (unsigned b = 0; b < 7; b++)
            if ((r->methods & (1u << b)) && json_array_append_new(m, json_string(methods[b])) != 0)
                return -1;
    }
    if (r->header_name) {
        json_t *h = add_obj(c, "header");
        if (h == NULL || set_str(h, "name", r->header_name) != 0 ||
            set_strs(h, "values", r->header_values, r->n_header_values) != 0)
            return -1;
    }
    if (r->response) {
        if (set_str(o, "direction", "Response") != 0)
            return -1;
        if (r->n_statuses) {
            json_t *sc = add_array(c, "responseStatusCode");
            if (sc == NULL)
                return -1;
            for (size_t i = 0; i < r->n_statuses; i++) {
                char b[16];
                if (r->statuses[i][0] == r->statuses[i][1])
                    snprintf(b, sizeof b, "%d", r->statuses[i][0]);
                else
                    snprintf(b, sizeof b, "%d-%d", r->statuses[i][0], r->statuses[i][1]);
                if (json_array_append_new(sc, json_string(b)) != 0)
                    return -1;
            }
        }
        if (r->resp_header_name) {
            json_t *h = add_obj(c, "responseHeader");
            if (h == NULL || set_str(h, "name", r->resp_header_name) != 0 ||
                set_strs(h, "values", r->resp_header_values, r->n_resp_header_values) != 0)
                return -1;
        }
    }
    json_t *a = add_obj(o, "actions");
    if (a == NULL || ((!r->response || r->action.kind != RC_ACTION_FORWARD) &&
                      export_action(a, &r->action) != 0))
        return -1;
    if (r->rewrite_host || r->rewrite_path || r->rewrite_query) {
        json_t *rw = add_obj(a, "rewrite");
        if (rw == NULL || set_str(rw, "host", r->rewrite_host) != 0 ||
            set_str(rw, "path", r->rewrite_path) != 0 ||
            set_str(rw, "query", r->rewrite_query) != 0)
            return -1;
    }
    if (set_strs(a, "removeHeaders", r->remove_headers, r->n_remove_headers) != 0)
        return -1;
    if (r->limit_qps || r->limit_per_ip_qps) {
        json_t *tl = add_obj(a, "trafficLimit");
        if (tl == NULL || (r->limit_qps && set_int(tl, "qps", r->limit_qps) != 0) ||
            (r->limit_per_ip_qps && set_int(tl, "perIpQps", r->limit_per_ip_qps) != 0) ||
            set_int(tl, "status", r->limit_status) != 0)
            return -1;
    }
    if (r->mirror_group) {
        json_t *tm = add_obj(a, "trafficMirror");
        json_t *gs = tm ? add_array(tm, "serverGroups") : NULL;
        json_t *g = gs ? json_object() : NULL;
        if (g == NULL || json_array_append_new(gs, g) != 0 ||
            set_str(g, "name", r->mirror_group->meta.name) != 0)
            return -1;
    }
    if (r->cors) {
        const struct rc_cors *co = r->cors;
        json_t *cj = add_obj(a, "cors");
        if (cj == NULL || set_strs(cj, "allowOrigin", co->origins, co->n_origins) != 0 ||
            set_strs(cj, "allowMethods", co->methods, co->n_methods) != 0 ||
            set_strs(cj, "allowHeaders", co->headers, co->n_headers) != 0 ||
            set_strs(cj, "exposeHeaders", co->expose, co->n_expose) != 0 ||
            set_bool(cj, "allowCredentials", co->credentials) != 0 ||
            (co->has_max_age && set_int(cj, "maxAge", co->max_age) != 0))
            return -1;
    }
    if (r->n_insert_headers) {
        static const char *const types[] = {"UserDefined", "ReferenceHeader", "SystemDefined"};
        json_t *ih = add_array(a, "insertHeaders");
        if (ih == NULL)
            return -1;
        for (size_t i = 0; i < r->n_insert_headers; i++) {
            const struct rc_header_op *op = &r->insert_headers[i];
            json_t *e = json_object();
            if (json_array_append_new(ih, e) != 0 || set_str(e, "name", op->name) != 0 ||
                set_str(e, "valueType", types[op->type]) != 0 ||
                set_str(e, "value", op->value) != 0)
                return -1;
        }
    }
    return 0;
}

static int export_listener(json_t *kind, const struct rc_listener *l)
{
    json_t *spec = add_resource(kind, &l->meta);
    if (spec == NULL)
        return -1;
    bool tls = l->protocol == RC_LISTENER_HTTPS || l->protocol == RC_LISTENER_QUIC;
    if ((l->instance != NULL && set_str(spec, "instance", l->instance->meta.name) != 0) ||
        set_str(spec, "protocol", listener_protocol_name(l->protocol)) != 0 ||
        set_int(spec, "port", l->port) != 0 || (tls && set_bool(spec, "http2", l->http2) != 0) ||
        set_int(spec, "idleTimeoutSeconds", l->idle_timeout_s) != 0 ||
        set_int(spec, "requestTimeoutSeconds", l->request_timeout_s) != 0)
        return -1;
    json_t *lim = add_obj(spec, "limits");
    if (lim == NULL ||
        set_int(lim, "maxRequestBodyBytes", (json_int_t)l->limits.max_request_body_bytes) != 0 ||
        set_int(lim, "headerTimeoutSeconds", l->limits.header_timeout_s) != 0 ||
        set_int(lim, "minBodyRateBytesPerSecond", (json_int_t)l->limits.min_body_rate) != 0)
        return -1;
    if (export_listener_obs(spec, l) != 0)
        return -1;
    json_t *comp = add_obj(spec, "compression");
    if (comp == NULL || set_bool(comp, "gzip", l->gzip) != 0 ||
        set_bool(comp, "brotli", l->brotli) != 0)
        return -1;
    json_t *xff = add_obj(spec, "xForwardedFor");
    if (xff == NULL || set_str(xff, "mode", xff_mode_name(l->xff_mode)) != 0)
        return -1;
    json_t *csi = add_obj(xff, "clientSourceIps");
    json_t *trusted = json_array();
    if (csi == NULL || json_object_set_new(csi, "trusted", trusted) != 0 ||
        set_bool(csi, "enabled", l->client_ips.enabled) != 0)
        return -1;
    for (size_t i = 0; i < l->client_ips.n_trusted; i++)
        if (json_array_append_new(trusted, str_new(l->client_ips.trusted_text[i])) != 0)
            return -1;
    json_t *h = add_obj(spec, "headers");
    if (h == NULL || set_bool(h, "slbId", l->headers.slb_id) != 0 ||
        set_bool(h, "proto", l->headers.proto) != 0 || set_bool(h, "port", l->headers.port) != 0 ||
        set_bool(h, "host", l->headers.host) != 0 ||
        set_bool(h, "clientSrcPort", l->headers.client_src_port) != 0)
        return -1;
    if (l->protocol == RC_LISTENER_HTTPS) {
        json_t *cc = add_obj(h, "clientCert");
        if (cc == NULL ||
            set_client_cert_header(cc, "subjectDN", l->client_cert_headers.subject_dn) != 0 ||
            set_client_cert_header(cc, "issuerDN", l->client_cert_headers.issuer_dn) != 0 ||
            set_client_cert_header(cc, "fingerprint", l->client_cert_headers.fingerprint) != 0 ||
            set_client_cert_header(cc, "clientVerify", l->client_cert_headers.client_verify) != 0)
            return -1;
    }
    if (tls && export_listener_tls(spec, l) != 0)
        return -1;
    if (l->default_action != NULL) {
        json_t *action = add_obj(spec, "defaultAction");
        if (action == NULL || export_action(action, l->default_action) != 0)
            return -1;
    } else if (l->default_group != NULL) {
        json_t *action = add_obj(spec, "defaultAction");
        json_t *fwd = action != NULL ? add_obj(action, "forward") : NULL;
        if (fwd == NULL || set_str(fwd, "serverGroup", l->default_group->meta.name) != 0)
            return -1;
    }
    if (l->n_rules == 0 && l->n_resp_rules == 0)
        return 0;
    json_t *rules = add_array(spec, "rules");
    if (rules == NULL)
        return -1;
    for (size_t i = 0; i < l->n_rules; i++)
        if (export_rule(rules, &l->rules[i]) != 0)
            return -1;
    for (size_t i = 0; i < l->n_resp_rules; i++)
        if (export_rule(rules, &l->resp_rules[i]) != 0)
            return -1;
    return 0;
}

static bool str_same(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool labels_same(const struct rc_label *a, size_t na, const struct rc_label *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (!str_same(a[i].key, b[i].key) || !str_same(a[i].value, b[i].value))
            return false;
    return true;
}

/* True when export_certificate() writes the same for c (root rc) and o
 * (root ro): the digest covers the document and the PEM bytes (model-t.h
 * rc_meta.digest); the rest is compared here. */
static bool cert_same(const struct rc_certificate *c, const char *rc,
                      const struct rc_certificate *o, const char *ro)
{
    return o != NULL && c->meta.digest[0] != '\0' && strcmp(c->meta.digest, o->meta.digest) == 0 &&
           str_same(rc, ro) && str_same(c->meta.ns, o->meta.ns) &&
           labels_same(c->meta.labels, c->meta.n_labels, o->meta.labels, o->meta.n_labels) &&
           labels_same(c->meta.annotations, c->meta.n_annotations, o->meta.annotations,
                       o->meta.n_annotations) &&
           c->type == o->type && c->source == o->source && c->pending == o->pending &&
           str_same(c->cert_path, o->cert_path) && str_same(c->key_path, o->key_path) &&
           str_same(c->service_id, o->service_id) &&
           (c->cert_pem == NULL) == (o->cert_pem == NULL) &&
           str_same(c->fingerprint_sha256, o->fingerprint_sha256);
}

/* True when export_group() writes the same for g and o: the digest covers
 * the group's spec, which is all its export derives from (defaults and the
 * names it refers to included); the envelope is compared here. */
static bool group_same(const struct rc_server_group *g, const struct rc_server_group *o)
{
    return o != NULL && g->meta.digest[0] != '\0' && strcmp(g->meta.digest, o->meta.digest) == 0 &&
           str_same(g->meta.ns, o->meta.ns) &&
           labels_same(g->meta.labels, g->meta.n_labels, o->meta.labels, o->meta.n_labels) &&
           labels_same(g->meta.annotations, g->meta.n_annotations, o->meta.annotations,
                       o->meta.n_annotations);
}

/* True when l is a copy of other's listener of the same name (reuse.h: a
 * copy keeps the very name pointer of what it copies, a build never has
 * it). A listener is copied only when its document is unchanged and what
 * it refers to was copied too, so it exports the same; a changed one, or
 * one whose group changed, was built and is compared whole. */
static bool listener_copied(const struct rc_listener *l, const struct rc_model *other)
{
    size_t lo = 0, hi = other->n_listeners;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(other->listeners[mid].meta.name, l->meta.name);
        if (c == 0)
            return other->listeners[mid].meta.name == l->meta.name;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* other: NULL, or the model m is compared with (rc_export_pair()): its
 * certificates that cert_same(), groups that group_same() and listeners
 * that one model copied from the other are left out (10,000 unchanged
 * groups, or 2,500 extension certificates of an unchanged listener, are
 * not exported twice to find one change). */
static int export_all(json_t *root, const struct rc_model *m, const struct rc_model *other)
{
    if (set_str(root, "apiVersion", RC_EXPORT_API_VERSION) != 0 ||
        set_int(root, "generation", 0) != 0 ||
        (m->digest[0] != '\0' && set_str(root, "manifestDigest", m->digest) != 0))
        return -1;
    json_t *res = add_obj(root, "resources");
    if (res == NULL)
        return -1;
    json_t *k;
    if ((k = add_obj(res, "Instance")) == NULL)
        return -1;
    for (size_t i = 0; i < m->n_instances; i++)
        if (export_instance(k, &m->instances[i]) != 0)
            return -1;
    if ((k = add_obj(res, "Certificate")) == NULL)
        return -1;
    for (size_t i = 0; i < m->n_certificates; i++) {
        const struct rc_certificate *c = m->certificates[i];
        if (other != NULL &&
            cert_same(c, m->root, rc_model_certificate(other, c->meta.name), other->root))
            continue;
        if (export_certificate(k, c, m->root) != 0)
            return -1;
    }
    if ((k = add_obj(res, "CertificateService")) == NULL)
        return -1;
    for (size_t i = 0; i < m->n_cert_services; i++)
        if (export_cert_service(k, &m->cert_services[i]) != 0)
            return -1;
    if ((k = add_obj(res, "TLSPolicy")) == NULL)
        return -1;
    for (size_t i = 0; i < m->n_policies; i++)
        if (!m->policies[i].system && export_policy(k, &m->policies[i]) != 0)
            return -1;
    if ((k = add_obj(res, "ServerGroup")) == NULL)
        return -1;
    for (size_t i = 0; i < m->n_groups; i++) {
        const struct rc_server_group *g = &m->groups[i];
        if (other != NULL && group_same(g, rc_model_group(other, g->meta.name)))
            continue;
        if (export_group(k, g) != 0)
            return -1;
    }
    if ((k = add_obj(res, "Listener")) == NULL)
        return -1;
    for (size_t i = 0; i < m->n_listeners; i++) {
        if (other != NULL && listener_copied(&m->listeners[i], other))
            continue;
        if (export_listener(k, &m->listeners[i]) != 0)
            return -1;
    }
    return 0;
}

json_t *rc_export_model(const struct rc_model *m)
{
    json_t *root = json_object();
    if (root == NULL)
        return NULL;
    if (export_all(root, m, NULL) != 0) {
        json_decref(root);
        return NULL;
    }
    return root;
}

int rc_export_pair(const struct rc_model *a, const struct rc_model *b, json_t **ea, json_t **eb)
{
    *ea = a != NULL ? json_object() : NULL;
    *eb = json_object();
    if ((a != NULL && (*ea == NULL || export_all(*ea, a, b) != 0)) || *eb == NULL ||
        export_all(*eb, b, a) != 0) {
        json_decref(*ea);
        json_decref(*eb);
        *ea = *eb = NULL;
        return -1;
    }
    return 0;
}

char *rc_export_model_text(const struct rc_model *m)
{
    json_t *root = rc_export_model(m);
    if (root == NULL)
        return NULL;
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(root);
    if (text == NULL)
        return NULL;
    size_t len = strlen(text);
    char *out = realloc(text, len + 2);
    if (out == NULL) {
        free(text);
        return NULL;
    }
    out[len] = '\n';
    out[len + 1] = '\0';
    return out;
}
