/* The model as canonical JSON (see export.h for the shape).
 *
 * Every builder returns 0 or -1 (out of memory); a failed builder leaves its
 * partial object to be freed by the caller's json_decref() of the root. */
#include "reconciler/export.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* Creates resources[kind][meta->name] = {"labels": {...}, "spec": {}} and
 * returns the spec object (borrowed), NULL on OOM. */
static json_t *add_resource(json_t *kind, const struct rc_meta *meta)
{
    json_t *res = add_obj(kind, meta->name);
    if (res == NULL)
        return NULL;
    json_t *labels = add_obj(res, "labels");
    if (labels == NULL)
        return NULL;
    for (size_t i = 0; i < meta->n_labels; i++)
        if (set_str(labels, meta->labels[i].key, meta->labels[i].value) != 0)
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
    for (size_t i = 0; i < sizeof md; i++) {
        static const char hex[] = "0123456789abcdef";
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
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
static int export_certificate(json_t *kind, const struct rc_certificate *c)
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
        if ((src = add_obj(source, "files")) == NULL || set_str(src, "certificate", c->cert_path) ||
            set_str(src, "privateKey", c->key_path))
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
    return 0;
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
    json_t *comp = add_obj(spec, "compression");
    if (comp == NULL || set_bool(comp, "gzip", l->gzip) != 0 ||
        set_bool(comp, "brotli", l->brotli) != 0)
        return -1;
    json_t *xff = add_obj(spec, "xForwardedFor");
    if (xff == NULL || set_str(xff, "mode", xff_mode_name(l->xff_mode)) != 0)
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
    if (l->default_group != NULL) {
        json_t *action = add_obj(spec, "defaultAction");
        json_t *fwd = action != NULL ? add_obj(action, "forward") : NULL;
        if (fwd == NULL || set_str(fwd, "serverGroup", l->default_group->meta.name) != 0)
            return -1;
    }
    return 0;
}

static int export_all(json_t *root, const struct rc_model *m)
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
    for (size_t i = 0; i < m->n_certificates; i++)
        if (export_certificate(k, &m->certificates[i]) != 0)
            return -1;
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
    for (size_t i = 0; i < m->n_groups; i++)
        if (export_group(k, &m->groups[i]) != 0)
            return -1;
    if ((k = add_obj(res, "Listener")) == NULL)
        return -1;
    for (size_t i = 0; i < m->n_listeners; i++)
        if (export_listener(k, &m->listeners[i]) != 0)
            return -1;
    return 0;
}

json_t *rc_export_model(const struct rc_model *m)
{
    json_t *root = json_object();
    if (root == NULL)
        return NULL;
    if (export_all(root, m) != 0) {
        json_decref(root);
        return NULL;
    }
    return root;
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
