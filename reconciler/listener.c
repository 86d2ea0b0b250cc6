/* Listener resources (listener.h): building one from its document (its
 * references resolved into this model's arrays, the TLS settings, the
 * client-certificate headers, the edition and timeout checks), copying an
 * unchanged one, and the port clashes between listeners. */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "reconciler/arena.h"
#include "reconciler/build.h"
#include "reconciler/field.h"
#include "reconciler/listener.h"
#include "reconciler/meta.h"
#include "reconciler/model.h"
#include "reconciler/resolve.h"
#include "reconciler/reuse.h"
#include "reconciler/rules.h"
#include "reconciler/source.h"

/* ---- Listener ---- */

/* The reference's reserved request headers: a client-certificate header
 * may not be renamed to one (alb-https-listener.txt), nor may a rule
 * insert or remove one (alb-api.md 4.3; rules.c). */
static const char *const reserved_headers[] = {"slb-id",
                                               "slb-ip",
                                               "x-forwarded-for",
                                               "x-forwarded-proto",
                                               "x-forwarded-eip",
                                               "x-forwarded-port",
                                               "x-forwarded-client-srcport",
                                               "x-forwarded-host",
                                               "connection",
                                               "upgrade",
                                               "content-length",
                                               "transfer-encoding",
                                               "keep-alive",
                                               "te",
                                               "host",
                                               "cookie",
                                               "remoteip",
                                               "authority",
                                               NULL};

bool rc_header_reserved(const char *name)
{
    for (size_t r = 0; reserved_headers[r]; r++)
        if (!strcasecmp(name, reserved_headers[r]))
            return true;
    return false;
}

struct cc_header {
    const char *field; /* manifest key under headers.clientCert */
    const char *def;   /* the reference's header name */
    size_t offset;     /* into rc_listener.client_cert_headers */
};

static const struct cc_header cc_headers[] = {
    {"subjectDN", "X-Forwarded-Clientcert-subjectdn",
     offsetof(struct rc_listener, client_cert_headers.subject_dn)},
    {"issuerDN", "X-Forwarded-Clientcert-issuerdn",
     offsetof(struct rc_listener, client_cert_headers.issuer_dn)},
    {"fingerprint", "X-Forwarded-Clientcert-fingerprint",
     offsetof(struct rc_listener, client_cert_headers.fingerprint)},
    {"clientVerify", "X-Forwarded-Clientcert-clientverify",
     offsetof(struct rc_listener, client_cert_headers.client_verify)},
};

static int build_client_cert_headers(struct rc_load *L, struct rc_doc *d, yaml_node_t *spec,
                                     struct rc_listener *li)
{
    for (size_t i = 0; i < sizeof(cc_headers) / sizeof(cc_headers[0]); i++) {
        const struct cc_header *h = &cc_headers[i];
        char path[96];
        snprintf(path, sizeof(path), "headers.clientCert.%s", h->field);
        yaml_node_t *node = rc_at(d, spec, path);
        if (node == NULL)
            continue;
        yaml_node_t *name_node = rc_at(d, node, "name");
        const char *name = rc_y_str(name_node);
        char full[112];
        snprintf(full, sizeof(full), "spec.%s.name", path);
        if (name && rc_header_reserved(name))
            rc_doc_err(L, d, RC_ERROR, name_node, full, "\"%s\" is a reserved header name", name);
        for (size_t j = 0; name && j < i; j++) {
            const char **other = (const char **)((char *)li + cc_headers[j].offset);
            if (*other && !strcasecmp(*other, name))
                rc_doc_err(L, d, RC_ERROR, name_node, full,
                           "\"%s\" is already the name of headers.clientCert.%s", name,
                           cc_headers[j].field);
        }
        if (!rc_field_bool(d, node, "enabled", false))
            continue;
        if (li->protocol != RC_LISTENER_HTTPS) {
            snprintf(full, sizeof(full), "spec.%s.enabled", path);
            rc_doc_err(L, d, RC_ERROR, rc_at(d, node, "enabled"), full,
                       "client certificate headers need an HTTPS listener");
        }
        const char **slot = (const char **)((char *)li + h->offset);
        if ((*slot = rc_arena_strdup(L->arena, name ? name : h->def)) == NULL)
            return -1;
    }
    return 0;
}

/* xForwardedFor.clientSourceIps: the trusted list, each entry an address
 * or CIDR range (common/ip.h); enabled needs a non-empty list (the
 * reference: "you must configure a trusted IP list") and a Standard or
 * WAF instance. */
static int build_client_ips(struct rc_load *L, struct rc_doc *d, yaml_node_t *spec,
                            struct rc_listener *li)
{
    yaml_node_t *csi = rc_at(d, spec, "xForwardedFor.clientSourceIps");
    if (csi == NULL)
        return 0;
    li->client_ips.enabled = rc_field_bool(d, csi, "enabled", false);
    yaml_node_t *en = rc_at(d, csi, "enabled");
    if (li->client_ips.enabled && li->instance && li->instance->edition == RC_EDITION_BASIC)
        rc_doc_err(L, d, RC_ERROR, en, "spec.xForwardedFor.clientSourceIps.enabled",
                   "retrieving the client IP needs a Standard or WAF instance (instance \"%s\" is "
                   "Basic)",
                   li->instance->meta.name);
    if (li->client_ips.enabled && li->protocol == RC_LISTENER_QUIC)
        rc_doc_err(L, d, RC_ERROR, en, "spec.xForwardedFor.clientSourceIps.enabled",
                   "retrieving the client IP is for HTTP and HTTPS listeners");
    yaml_node_t *tr = rc_at(d, csi, "trusted");
    size_t n = 0;
    if (tr && tr->type == YAML_SEQUENCE_NODE)
        n = (size_t)(tr->data.sequence.items.top - tr->data.sequence.items.start);
    if (li->client_ips.enabled && n == 0)
        rc_doc_err(L, d, RC_ERROR, tr ? tr : (en ? en : csi),
                   tr ? "spec.xForwardedFor.clientSourceIps.trusted"
                      : "spec.xForwardedFor.clientSourceIps",
                   "retrieving the client IP needs a trusted list (addresses or CIDR ranges of "
                   "the proxies in front of albd; 0.0.0.0/0 takes the leftmost address)");
    if (n == 0)
        return 0;
    struct cm_cidr *v = rc_arena_alloc(L->arena, n * sizeof(*v));
    const char **txt = rc_arena_alloc(L->arena, n * sizeof(*txt));
    if (v == NULL || txt == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *e = yaml_document_get_node(d->y, tr->data.sequence.items.start[i]);
        const char *t = rc_y_str(e);
        char path[80];
        snprintf(path, sizeof(path), "spec.xForwardedFor.clientSourceIps.trusted[%zu]", i);
        struct cm_cidr c;
        if (t == NULL || !cm_cidr_parse(t, strlen(t), &c)) {
            rc_doc_err(L, d, RC_ERROR, e, path,
                       "\"%s\" is not an IPv4 or IPv6 address or CIDR range (ADDR or ADDR/N)",
                       t ? t : "");
            continue;
        }
        /* 0.0.0.0/0 is the reference's "take the leftmost address". */
        static const uint8_t any4[16] = {[10] = 0xff, [11] = 0xff};
        if (c.bits == 96 && memcmp(c.net.b, any4, sizeof any4) == 0)
            li->client_ips.leftmost = true;
        if ((txt[li->client_ips.n_trusted] = rc_arena_strdup(L->arena, t)) == NULL)
            return -1;
        v[li->client_ips.n_trusted++] = c;
    }
    li->client_ips.trusted = v;
    li->client_ips.trusted_text = txt;
    return 0;
}

/* The field path of a server certificate reference: field itself, or its
 * item index (index >= 0) — written out only for a message, not for each
 * of 10,000 extension certificates that resolve. */
static const char *cert_path(char *buf, size_t size, const char *field, long index)
{
    if (index < 0)
        return field;
    snprintf(buf, size, "%s[%ld]", field, index);
    return buf;
}

static const struct rc_certificate *server_cert(struct rc_load *L, struct rc_doc *d, yaml_node_t *v,
                                                const char *field, long index,
                                                const struct rc_refs *r)
{
    char buf[96];
    const char *name = rc_y_str(v);
    long i = name ? rc_kind_find(&r->certs, name) : -1;
    if (i < 0)
        i = rc_resolve(L, d, v, cert_path(buf, sizeof buf, field, index), "Certificate", &r->certs);
    if (i < 0)
        return NULL;
    const struct rc_certificate *c = L->m->certificates[i];
    if (c->pending && L->cert_pending_is_error)
        rc_doc_err(L, d, RC_ERROR, v, cert_path(buf, sizeof buf, field, index),
                   RC_PENDING_PREFIX "certificate \"%s\" was never fetched from certificate "
                                     "service \"%s\" and is not cached: this listener waits "
                                     "for it",
                   c->meta.name, c->service ? c->service->meta.name : "?");
    /* A self-signed leaf may carry CA:TRUE (what `openssl req -x509`
     * makes by default); an issuing CA certificate may not serve. */
    if (c->type == RC_CERT_CA || (c->is_ca && !c->self_signed))
        rc_doc_err(L, d, RC_ERROR, v, cert_path(buf, sizeof buf, field, index),
                   "certificate \"%s\" is a CA certificate, not a server certificate",
                   c->meta.name);
    return c;
}

static int build_listener_tls(struct rc_load *L, struct rc_doc *d, yaml_node_t *spec,
                              struct rc_listener *li, const struct rc_refs *r)
{
    yaml_node_t *tls = rc_at(d, spec, "tls");
    if (li->protocol == RC_LISTENER_HTTP) {
        if (tls)
            rc_doc_err(L, d, RC_ERROR, rc_y_get_key(d->y, spec, "tls"), "spec.tls",
                       "HTTP listeners take no tls settings");
        return 0;
    }
    yaml_node_t *cert = rc_at(d, tls, "certificate");
    if (cert == NULL)
        rc_doc_err(L, d, RC_ERROR, tls ? tls : spec, tls ? "spec.tls" : "spec",
                   "%s listeners need tls.certificate",
                   li->protocol == RC_LISTENER_HTTPS ? "HTTPS" : "QUIC");
    else
        li->tls.certificate = server_cert(L, d, cert, "spec.tls.certificate", -1, r);

    yaml_node_t *ext = rc_at(d, tls, "extensionCertificates");
    if (ext && ext->type == YAML_SEQUENCE_NODE) {
        yaml_node_item_t *start = ext->data.sequence.items.start;
        size_t n = (size_t)(ext->data.sequence.items.top - start);
        li->tls.extension_certificates = rc_arena_alloc(L->arena, n * sizeof(void *));
        if (li->tls.extension_certificates == NULL)
            return -1;
        for (size_t i = 0; i < n; i++) {
            const struct rc_certificate *c =
                server_cert(L, d, yaml_document_get_node(d->y, start[i]),
                            "spec.tls.extensionCertificates", (long)i, r);
            if (c)
                li->tls.extension_certificates[li->tls.n_extension_certificates++] = c;
        }
    }

    /* albd defaults to tls_cipher_policy_1_2; the reference product defaults
     * to tls_cipher_policy_1_0, which still enables TLS 1.0 and 1.1. */
    yaml_node_t *pol = rc_at(d, tls, "policy");
    const char *pname = pol ? rc_y_str(pol) : "tls_cipher_policy_1_2";
    li->tls.policy = rc_model_policy(L->m, pname);
    if (li->tls.policy == NULL && L->contain)
        rc_missing_ref(L, d, pol, "spec.tls.policy", "TLSPolicy", pname,
                       rc_kind_broken(&r->policies, pname));
    else if (li->tls.policy == NULL && !rc_kind_broken(&r->policies, pname))
        rc_doc_err(L, d, RC_ERROR, pol, "spec.tls.policy", "no TLSPolicy named \"%s\"", pname);
    if (li->tls.policy && !li->tls.policy->system && li->instance &&
        li->instance->edition == RC_EDITION_BASIC)
        rc_doc_err(L, d, RC_ERROR, pol, "spec.tls.policy",
                   "custom TLS policies need a Standard or WAF instance (instance \"%s\" is Basic)",
                   li->instance->meta.name);

    li->tls.strict_sni = rc_field_bool(d, tls, "strictSni", false);
    yaml_node_t *mutual = rc_at(d, tls, "mutualAuthentication");
    li->tls.mutual.enabled = rc_field_bool(d, mutual, "enabled", false);
    if (li->tls.mutual.enabled && li->instance && li->instance->edition == RC_EDITION_BASIC)
        rc_doc_err(L, d, RC_ERROR, rc_at(d, mutual, "enabled"),
                   "spec.tls.mutualAuthentication.enabled",
                   "mutual authentication needs a Standard or WAF instance (instance \"%s\" is "
                   "Basic)",
                   li->instance->meta.name);
    yaml_node_t *cas = rc_at(d, mutual, "caCertificates");
    if (cas && cas->type == YAML_SEQUENCE_NODE) {
        yaml_node_item_t *start = cas->data.sequence.items.start;
        size_t n = (size_t)(cas->data.sequence.items.top - start);
        li->tls.mutual.ca_certificates = rc_arena_alloc(L->arena, n * sizeof(void *));
        if (li->tls.mutual.ca_certificates == NULL)
            return -1;
        for (size_t i = 0; i < n; i++) {
            char path[80];
            snprintf(path, sizeof(path), "spec.tls.mutualAuthentication.caCertificates[%zu]", i);
            yaml_node_t *v = yaml_document_get_node(d->y, start[i]);
            long k = rc_resolve(L, d, v, path, "Certificate", &r->certs);
            if (k < 0)
                continue;
            const struct rc_certificate *c = L->m->certificates[k];
            if (c->type != RC_CERT_CA)
                rc_doc_err(L, d, RC_ERROR, v, path,
                           "certificate \"%s\" is a Server certificate, not a CA", c->meta.name);
            li->tls.mutual.ca_certificates[li->tls.mutual.n_ca_certificates++] = c;
        }
    } else if (li->tls.mutual.enabled) {
        rc_doc_err(L, d, RC_ERROR, mutual, "spec.tls.mutualAuthentication",
                   "mutual authentication needs caCertificates");
    }
    return 0;
}

/* The schema allows listener timeouts up to RC_MAX_TIMEOUT_LIMIT_S; the
 * instance's maxTimeoutSeconds (the reference's quota) bounds them per
 * instance. */
static void check_timeout_ceiling(struct rc_load *L, struct rc_doc *d, yaml_node_t *spec,
                                  const char *field, int value, const struct rc_instance *in)
{
    if (in == NULL || value <= in->max_timeout_s)
        return; /* without an instance, its own error says why */
    char path[64];
    snprintf(path, sizeof(path), "spec.%s", field);
    rc_doc_err(L, d, RC_ERROR, rc_at(d, spec, field), path,
               "%d is above %d, the timeout ceiling of instance \"%s\" (raise its "
               "spec.maxTimeoutSeconds, up to %d)",
               value, in->max_timeout_s, in->meta.name, RC_MAX_TIMEOUT_LIMIT_S);
}

/* spec.accessLog: the path is "-" (standard output) or absolute (albd
 * may run with any working directory); sample2xx is within 0-1 (the
 * schema says so; YAML integers 0 and 1 are numbers too). */
static int build_access_log(struct rc_load *L, struct rc_doc *d, yaml_node_t *spec,
                            struct rc_listener *li)
{
    li->access_log.enabled = rc_field_bool(d, spec, "accessLog.enabled", false);
    const char *path = rc_field_str(d, spec, "accessLog.path", "-");
    if (strcmp(path, "-") != 0 && path[0] != '/')
        rc_doc_err(L, d, RC_ERROR, rc_at(d, spec, "accessLog.path"), "spec.accessLog.path",
                   "\"%s\" is neither \"-\" (standard output) nor an absolute file path", path);
    if ((li->access_log.path = rc_arena_strdup(L->arena, path)) == NULL)
        return -1;
    li->access_log.sample2xx = 1.0;
    yaml_node_t *sn = rc_at(d, spec, "accessLog.sample2xx");
    if (sn) {
        struct rc_yval v;
        rc_y_classify(sn, &v);
        if (v.type == RC_Y_INT || v.type == RC_Y_FLOAT)
            li->access_log.sample2xx = v.d;
    }
    return 0;
}

int rc_build_listener(struct rc_load *L, struct rc_doc *d, struct rc_listener *li,
                      const struct rc_refs *r)
{
    yaml_node_t *spec = rc_at(d, rc_doc_root(d), "spec");
    if (rc_fill_meta(L, d, &li->meta, NULL, 0, NULL, 0) != 0)
        return -1;
    yaml_node_t *inst = rc_at(d, spec, "instance");
    if (inst) {
        long i = rc_resolve(L, d, inst, "spec.instance", "Instance", &r->instances);
        if (i >= 0)
            li->instance = &L->m->instances[i];
    } else if (L->m->n_instances == 1 && r->instances.n_broken == 0) {
        li->instance = &L->m->instances[0]; /* the only one, or the implicit "default" */
    } else if (L->m->n_instances + r->instances.n_broken > 1) {
        rc_doc_err(L, d, RC_ERROR, spec, "spec",
                   "missing required field \"instance\" (there is more than one Instance)");
    } else if (L->contain) {
        /* The only Instance is invalid: its own error says why. */
        rc_doc_err(L, d, RC_ERROR, spec, "spec",
                   "the Instance this listener would use is invalid and has no last good "
                   "version");
    }
    const char *proto = rc_field_str(d, spec, "protocol", "HTTP");
    li->protocol = !strcmp(proto, "HTTPS")  ? RC_LISTENER_HTTPS
                   : !strcmp(proto, "QUIC") ? RC_LISTENER_QUIC
                                            : RC_LISTENER_HTTP;
    li->port = rc_field_int(d, spec, "port", 0);
    yaml_node_t *h2 = rc_at(d, spec, "http2");
    li->http2 = li->protocol == RC_LISTENER_HTTPS && rc_field_bool(d, spec, "http2", true);
    if (h2 && li->protocol != RC_LISTENER_HTTPS && rc_field_bool(d, spec, "http2", false))
        rc_doc_err(L, d, RC_ERROR, h2, "spec.http2", "http2 is only for HTTPS listeners");
    li->idle_timeout_s = rc_field_int(d, spec, "idleTimeoutSeconds", 15);
    li->request_timeout_s = rc_field_int(d, spec, "requestTimeoutSeconds", 60);
    check_timeout_ceiling(L, d, spec, "idleTimeoutSeconds", li->idle_timeout_s, li->instance);
    check_timeout_ceiling(L, d, spec, "requestTimeoutSeconds", li->request_timeout_s, li->instance);
    li->limits.max_request_body_bytes = rc_field_u64(d, spec, "limits.maxRequestBodyBytes", 0);
    li->limits.header_timeout_s = rc_field_int(d, spec, "limits.headerTimeoutSeconds", 10);
    li->limits.min_body_rate =
        (uint32_t)rc_field_u64(d, spec, "limits.minBodyRateBytesPerSecond", 256);
    if (build_access_log(L, d, spec, li) != 0)
        return -1;
    li->request_id.enabled = rc_field_bool(d, spec, "requestId.enabled", true);
    li->request_id.trust_client = rc_field_bool(d, spec, "requestId.trustClient", false);
    li->request_id.echo = rc_field_bool(d, spec, "requestId.echo", false);
    li->gzip = rc_field_bool(d, spec, "compression.gzip", true);
    li->brotli = rc_field_bool(d, spec, "compression.brotli", true);
    const char *mode = rc_field_str(d, spec, "xForwardedFor.mode", "Append");
    li->xff_mode = !strcmp(mode, "Remove")     ? RC_XFF_REMOVE
                   : !strcmp(mode, "Preserve") ? RC_XFF_PRESERVE
                                               : RC_XFF_APPEND;
    if (build_client_ips(L, d, spec, li) != 0)
        return -1;
    li->headers.slb_id = rc_field_bool(d, spec, "headers.slbId", false);
    li->headers.proto = rc_field_bool(d, spec, "headers.proto", false);
    li->headers.port = rc_field_bool(d, spec, "headers.port", false);
    li->headers.host = rc_field_bool(d, spec, "headers.host", false);
    li->headers.client_src_port = rc_field_bool(d, spec, "headers.clientSrcPort", false);
    if (build_client_cert_headers(L, d, spec, li) != 0 || build_listener_tls(L, d, spec, li, r))
        return -1;
    yaml_node_t *gn = rc_at(d, spec, "defaultAction.forward.serverGroup");
    if (gn) {
        long i = rc_resolve(L, d, gn, "spec.defaultAction.forward.serverGroup", "ServerGroup",
                            &r->groups);
        if (i >= 0)
            li->default_group = &L->m->groups[i];
    }
    /* Forwarding rules and a default redirect or fixed response
     * (rules.c): their groups resolve through r->groups like the default
     * group's; rc_reuse_listener re-points them (rc_rules_reuse). */
    if (rc_build_rules(L, d, spec, li, r) != 0)
        return -1;
    return 0;
}

/* Within one instance, ports are unique per protocol, and HTTP and HTTPS
 * listeners may not share one (HTTPS and QUIC may: TCP and UDP). */
void rc_check_ports(struct rc_load *L, struct rc_kind_docs *ld)
{
    static const char *const pnames[] = {"HTTP", "HTTPS", "QUIC"};
    for (size_t i = 0; i < L->m->n_listeners; i++) {
        const struct rc_listener *a = &L->m->listeners[i];
        if (a->instance == NULL)
            continue;
        for (size_t j = 0; j < L->m->n_listeners; j++) {
            const struct rc_listener *b = &L->m->listeners[j];
            if (j == i || b->instance != a->instance || b->port != a->port)
                continue;
            bool same = a->protocol == b->protocol;
            bool tcp_clash = a->protocol != RC_LISTENER_QUIC && b->protocol != RC_LISTENER_QUIC;
            if (!same && !tcp_clash)
                continue;
            /* Report on the one that comes later in the sources. */
            int c = strcmp(a->meta.loc.file, b->meta.loc.file);
            if (c < 0 || (c == 0 && a->meta.loc.line < b->meta.loc.line))
                continue;
            struct rc_doc *d = ld->v[i];
            if (d->lazy && rc_doc_parse(d) != 0) { /* a copied listener: parsed to say where */
                L->oom = true;
                return;
            }
            rc_doc_err(L, d, RC_ERROR, rc_at(d, rc_doc_root(d), "spec.port"), "spec.port",
                       "port %d is already used by %s listener \"%s\" on instance \"%s\"", a->port,
                       pnames[b->protocol], b->meta.name, a->instance->meta.name);
            break;
        }
    }
}

/* ---- copies of unchanged listeners (reuse.h) ---- */

/* Every reference field of struct rc_listener: rc_reuse_listener re-points
 * each into the new model's arrays, and rc_copy_check then proves it did,
 * and that no other word of the copy points into the previous model's (or
 * this model's) resource arrays: a reference field added to the struct but
 * not here fails that check loudly instead of routing, after an unrelated
 * reload, to the previous model's group.
 *
 * Forwarding rules (rules.c) are not words of the struct but an arena
 * array (rules, default_action) whose forward actions point at groups:
 * rc_reuse_listener gives the copy a new rules array with every group
 * re-pointed (rc_rules_reuse), or builds the listener when one is not a
 * copy. default_action and resp_rules (response rules: no forward)
 * hold no reference. */
const struct rc_ref_field rc_listener_refs[] = {
    {"instance", offsetof(struct rc_listener, instance), RC_REF_ONE, RC_REF_INSTANCE},
    {"tls.certificate", offsetof(struct rc_listener, tls.certificate), RC_REF_ONE,
     RC_REF_CERTIFICATE},
    {"tls.extension_certificates", offsetof(struct rc_listener, tls.extension_certificates),
     offsetof(struct rc_listener, tls.n_extension_certificates), RC_REF_CERTIFICATE},
    {"tls.policy", offsetof(struct rc_listener, tls.policy), RC_REF_ONE, RC_REF_POLICY},
    {"tls.mutual.ca_certificates", offsetof(struct rc_listener, tls.mutual.ca_certificates),
     offsetof(struct rc_listener, tls.mutual.n_ca_certificates), RC_REF_CERTIFICATE},
    {"default_group", offsetof(struct rc_listener, default_group), RC_REF_ONE, RC_REF_GROUP},
};
const size_t rc_listener_n_refs = sizeof(rc_listener_refs) / sizeof(rc_listener_refs[0]);

/* The struct as rc_listener_refs was last reviewed against (LP64). A field
 * added to struct rc_listener almost always changes its size: this stops
 * the build until whoever added it has looked at the table above (and at
 * rc_reuse_listener), then updated the number. A field that fits in
 * padding is still caught at run time by rc_copy_check's scan of the
 * words outside the table. */
#if UINTPTR_MAX == UINT64_MAX
_Static_assert(sizeof(struct rc_listener) == RC_LISTENER_REVIEWED_SIZE,
               "struct rc_listener changed: update rc_listener_refs (listener.c) for any "
               "reference field, re-point it in rc_reuse_listener, then "
               "RC_LISTENER_REVIEWED_SIZE (listener.h)");
#endif

#define COPY_OF(L, field, old)                                                                     \
    ((const __typeof__(*(L)->m->field) *)rc_copy_of((old), (L)->prev->field, (L)->prev->n_##field, \
                                                    (L)->m->field, (L)->m->n_##field,              \
                                                    sizeof(*(L)->m->field), true))

/* Re-points one reference of a copied listener; false when what it uses
 * is not a copy of what its running version used. */
#define REPOINT(L, field, ref) ((ref) == NULL || ((ref) = COPY_OF(L, field, (ref))) != NULL)

/* This model's version of old, a certificate of the running model: old
 * itself when this model shares it, its copy (the same name pointer), or
 * NULL when it was built again (or is gone). */
static const struct rc_certificate *cert_copy_of(struct rc_load *L, const struct rc_refs *r,
                                                 const struct rc_certificate *old)
{
    if (rc_copy_ctx_has_cert(L->copy_ctx, old))
        return old;
    long i = rc_kind_find(&r->certs, old->meta.name);
    if (i < 0 || (size_t)i >= L->m->n_certificates)
        return NULL;
    const struct rc_certificate *c = L->m->certificates[i];
    return c->meta.name == old->meta.name ? c : NULL;
}

/* Re-points one certificate reference; false when it is not a copy. */
static bool repoint_cert(struct rc_load *L, const struct rc_refs *r,
                         const struct rc_certificate **ref)
{
    return *ref == NULL || (*ref = cert_copy_of(L, r, *ref)) != NULL;
}

static bool repoint_certs(struct rc_load *L, const struct rc_refs *r,
                          const struct rc_certificate ***v, size_t n)
{
    if (n == 0)
        return true;
    const struct rc_certificate **nv = rc_arena_alloc(L->arena, n * sizeof(*nv));
    if (nv == NULL) {
        L->oom = true;
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if ((nv[i] = cert_copy_of(L, r, (*v)[i])) == NULL)
            return false;
    *v = nv;
    return true;
}

/* A listener whose document is unchanged and whose references are all
 * copies of what its running version uses (the same instance, certificates,
 * policy and group, unchanged) would pass the same checks and come out the
 * same: it is copied, its references re-pointed into this model's arrays.
 * A listener with 2,500 extension certificates then costs no parse and no
 * name lookups. First pass only: containment passes build. */
bool rc_reuse_listener(struct rc_load *L, struct rc_doc *d, struct rc_listener *li,
                       const struct rc_refs *r)
{
    if (L->pass != 1 || L->contain || !rc_reuse_from(L, d) || r->instances.n_broken != 0 ||
        L->m->n_instances != L->prev->n_instances)
        return false; /* which instance a listener without one gets may change */
    struct rc_listener c = *(const struct rc_listener *)d->prev_src->res;
    const struct rc_tls_policy *pol = c.tls.policy;
    if (pol != NULL) {
        pol = rc_copy_of(pol, L->prev->policies, L->prev->n_policies, L->m->policies,
                         L->m->n_policies, sizeof(*pol), false);
        if (pol == NULL)
            return false;
        c.tls.policy = pol;
    }
    if (!REPOINT(L, instances, c.instance) || !repoint_cert(L, r, &c.tls.certificate) ||
        !REPOINT(L, groups, c.default_group) ||
        !repoint_certs(L, r, &c.tls.extension_certificates, c.tls.n_extension_certificates) ||
        !repoint_certs(L, r, &c.tls.mutual.ca_certificates, c.tls.mutual.n_ca_certificates) ||
        !rc_rules_reuse(L, &c))
        return false;
    if (rc_arena_hold(L->m->arena, d->prev_src->origin) != 0) {
        L->oom = true;
        return false;
    }
    c.meta.loc.line += d->src_line - d->prev_src->line;
    char why[160];
    if (rc_copy_check(&c, sizeof(c), rc_listener_refs, rc_listener_n_refs, L->copy_ctx, why,
                      sizeof(why)) != 0) {
        if (L->copy_ctx->failed) {
            L->oom = true;
            return false;
        }
        /* A reference field that rc_reuse_listener does not re-point (why
         * names it): a programming error. Debug builds (the ASan test
         * suite) stop here; a release build builds the listener instead
         * of copying it, which is always correct. */
        assert(!"a copied listener points into the previous model");
        return false;
    }
    *li = c;
    return true;
}
