/* Builds the model from the schema-valid documents: names and references,
 * defaults, and the semantic rules of the reference (ports, editions, TLS
 * settings, header names). Certificates and TLS policies have their own
 * files (cert.c, policy.c); not-yet-supported fields are in unsupported.c. */
#include <arpa/inet.h>
#include <ctype.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "reconciler/arena.h"
#include "reconciler/build.h"
#include "reconciler/sort.h"
#include "reconciler/rc.h"
#include "reconciler/source.h"

/* ---- helpers shared with cert.c and policy.c ---- */

yaml_node_t *rc_at(struct rc_doc *d, yaml_node_t *n, const char *dotted)
{
    char key[128];
    const char *p = dotted;
    while (n && *p) {
        size_t len = strcspn(p, ".");
        if (len >= sizeof(key))
            return NULL;
        memcpy(key, p, len);
        key[len] = '\0';
        n = rc_y_get(&d->y, n, key);
        p += len;
        if (*p == '.')
            p++;
    }
    return n;
}

void rc_doc_err(struct rc_load *L, struct rc_doc *d, enum rc_severity sev, const yaml_node_t *n,
                const char *path, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n == NULL)
        n = yaml_document_get_root_node(&d->y);
    struct rc_loc loc = rc_y_loc(d, n);
    rc_errs_add(L->errs, sev, &loc, d->kind, d->name, path, "%s", msg);
}

void rc_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char sum[32];
    unsigned int n = 0;
    EVP_Digest(data, len, sum, &n, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", sum[i]);
}

static int label_cmp(const void *a, const void *b)
{
    return strcmp(((const struct rc_label *)a)->key, ((const struct rc_label *)b)->key);
}

int rc_fill_meta(struct rc_load *L, struct rc_doc *d, struct rc_meta *meta, const void *extra,
                 size_t extra_len, const void *extra2, size_t extra2_len)
{
    yaml_node_t *root = yaml_document_get_root_node(&d->y);
    meta->kind = d->kind;
    meta->name = rc_arena_strdup(L->arena, d->name);
    meta->loc = rc_y_loc(d, root);
    yaml_node_t *labels = rc_at(d, root, "metadata.labels");
    if (labels && labels->type == YAML_MAPPING_NODE) {
        size_t n = (size_t)(labels->data.mapping.pairs.top - labels->data.mapping.pairs.start);
        meta->labels = rc_arena_alloc(L->arena, n * sizeof(*meta->labels));
        if (meta->labels == NULL)
            return -1;
        for (yaml_node_pair_t *p = labels->data.mapping.pairs.start;
             p < labels->data.mapping.pairs.top; p++) {
            struct rc_label *l = &meta->labels[meta->n_labels++];
            l->key = rc_arena_strdup(L->arena, rc_y_str(yaml_document_get_node(&d->y, p->key)));
            l->value = rc_arena_strdup(L->arena, rc_y_str(yaml_document_get_node(&d->y, p->value)));
            if (l->key == NULL || l->value == NULL)
                return -1;
        }
        qsort(meta->labels, meta->n_labels, sizeof(*meta->labels), label_cmp);
    }
    size_t len = 0;
    char *canon = rc_y_canonical(&d->y, rc_y_get(&d->y, root, "spec"), &len);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (canon == NULL || md == NULL) {
        free(canon);
        EVP_MD_CTX_free(md);
        return -1;
    }
    unsigned char sum[32];
    unsigned int n = 0;
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    EVP_DigestUpdate(md, canon, len + 1);
    if (extra)
        EVP_DigestUpdate(md, extra, extra_len);
    EVP_DigestUpdate(md, "", 1);
    if (extra2)
        EVP_DigestUpdate(md, extra2, extra2_len);
    EVP_DigestFinal_ex(md, sum, &n);
    EVP_MD_CTX_free(md);
    OPENSSL_cleanse(canon, len);
    free(canon);
    for (unsigned i = 0; i < 32; i++)
        snprintf(meta->digest + 2 * i, 3, "%02x", sum[i]);
    return 0;
}

/* ---- typed reads of schema-valid nodes ---- */

static bool get_bool(struct rc_doc *d, yaml_node_t *n, const char *path, bool def)
{
    yaml_node_t *v = rc_at(d, n, path);
    struct rc_yval y;
    if (v == NULL)
        return def;
    rc_y_classify(v, &y);
    return y.type == RC_Y_BOOL ? y.b : def;
}

static int get_int(struct rc_doc *d, yaml_node_t *n, const char *path, int def)
{
    yaml_node_t *v = rc_at(d, n, path);
    struct rc_yval y;
    if (v == NULL)
        return def;
    rc_y_classify(v, &y);
    return y.type == RC_Y_INT || y.type == RC_Y_FLOAT ? (int)y.d : def;
}

/* For sizes beyond int (schema-bounded, so a double holds them exactly). */
static uint64_t get_u64(struct rc_doc *d, yaml_node_t *n, const char *path, uint64_t def)
{
    yaml_node_t *v = rc_at(d, n, path);
    struct rc_yval y;
    if (v == NULL)
        return def;
    rc_y_classify(v, &y);
    return (y.type == RC_Y_INT || y.type == RC_Y_FLOAT) && y.d >= 0 ? (uint64_t)y.d : def;
}

static const char *get_str(struct rc_doc *d, yaml_node_t *n, const char *path, const char *def)
{
    const char *s = rc_y_str(rc_at(d, n, path));
    return s ? s : def;
}

static bool is_ip(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* ---- documents by kind ---- */

struct kind_docs {
    struct rc_doc **v; /* the schema-valid, uniquely named documents, by name */
    size_t n;
    /* Names of documents of this kind that are invalid: a reference to one
     * of them is not reported again as unknown. */
    const char **broken;
    size_t n_broken;
};

static int doc_name_cmp(const void *a, const void *b)
{
    return strcmp((*(struct rc_doc *const *)a)->name, (*(struct rc_doc *const *)b)->name);
}

/* By name, then by position in L->dv (kept in a parallel index). */
struct named {
    struct rc_doc *d;
    size_t pos;
};

static int named_cmp(const void *a, const void *b)
{
    const struct named *x = a, *y = b;
    int c = strcmp(x->d->name, y->d->name);
    return c ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int collect(struct rc_load *L, const char *kind, struct kind_docs *out)
{
    memset(out, 0, sizeof(*out));
    size_t n_extra = 0;
    for (size_t i = 0; i < L->n_broken; i++)
        n_extra += !strcmp(L->broken[i].kind, kind);
    out->v = rc_arena_alloc(L->m->arena, (L->n_dv + 1) * sizeof(*out->v));
    out->broken = rc_arena_alloc(L->m->arena, (L->n_dv + n_extra + 1) * sizeof(*out->broken));
    struct named *all = malloc((L->n_dv + 1) * sizeof(*all));
    bool *dup = calloc(L->n_dv + 1, sizeof(*dup));
    if (out->v == NULL || out->broken == NULL || all == NULL || dup == NULL) {
        free(all);
        free(dup);
        return -1;
    }
    size_t n = 0;
    for (size_t i = 0; i < L->n_dv; i++) {
        struct rc_doc *d = L->dv[i];
        if (d->kind != NULL && !strcmp(d->kind, kind) && d->name != NULL)
            all[n++] = (struct named){d, i};
    }
    /* Duplicates sit next to each other once sorted; the first written
     * one (lowest position) is the definition, later ones are errors. */
    rc_sort(all, n, sizeof(*all), named_cmp);
    for (size_t i = 0; i < n; i++) {
        size_t first = i;
        while (first > 0 && !strcmp(all[first - 1].d->name, all[i].d->name))
            first--;
        if (first == i) {
            if (all[i].d->schema_ok)
                out->v[out->n++] = all[i].d;
            else
                out->broken[out->n_broken++] = all[i].d->name;
            continue;
        }
        dup[all[i].pos] = true;
        all[i].pos = all[first].pos; /* remember the definition for the message */
    }
    /* Report duplicates in source order, naming the first definition. */
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || strcmp(all[i - 1].d->name, all[i].d->name))
            continue;
        struct rc_doc *d = all[i].d;
        struct rc_doc *first = L->dv[all[i].pos];
        if ((d->lazy && rc_doc_parse(d) != 0) || (first->lazy && rc_doc_parse(first) != 0)) {
            free(all);
            free(dup);
            return -1;
        }
        yaml_node_t *root = yaml_document_get_root_node(&d->y);
        struct rc_loc fl = rc_y_loc(first, yaml_document_get_root_node(&first->y));
        rc_doc_err(L, d, RC_ERROR, rc_at(d, root, "metadata.name"), "metadata.name",
                   "duplicate %s name \"%s\" (first defined at %s:%d:%d)", kind, d->name, fl.file,
                   fl.line, fl.col);
    }
    free(all);
    free(dup);
    for (size_t i = 0; i < L->n_broken; i++)
        if (!strcmp(L->broken[i].kind, kind))
            out->broken[out->n_broken++] = L->broken[i].name;
    /* Already sorted by name; the sort keeps this independent of that. */
    rc_sort(out->v, out->n, sizeof(*out->v), doc_name_cmp);
    rc_sort(out->broken, out->n_broken, sizeof(*out->broken), str_cmp);
    return 0;
}

static bool is_broken(const struct kind_docs *k, const char *name)
{
    return k->n_broken &&
           bsearch(&name, k->broken, k->n_broken, sizeof(*k->broken), str_cmp) != NULL;
}

/* The index of the document named name in k (sorted by name), or -1. */
static long find_doc(const struct kind_docs *k, const char *name)
{
    size_t lo = 0, hi = k->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(k->v[mid]->name, name);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* In a containment pass, a reference that does not resolve makes the
 * referring resource fail too (even when the target's own error was
 * reported), and is recorded so that a deleted resource which a kept
 * version still uses can be kept as well. */
static void missing_ref(struct rc_load *L, struct rc_doc *d, const yaml_node_t *v, const char *path,
                        const char *kind, const char *name, bool broken)
{
    if (L->n_missing == L->cap_missing) {
        size_t cap = L->cap_missing ? L->cap_missing * 2 : 16;
        struct rc_missing *p = realloc(L->missing, cap * sizeof(*p));
        if (p == NULL) {
            L->oom = true;
            return;
        }
        L->missing = p;
        L->cap_missing = cap;
    }
    L->missing[L->n_missing++] = (struct rc_missing){d, kind, name, L->errs->n};
    if (broken)
        rc_doc_err(L, d, RC_ERROR, v, path, "%s \"%s\" is invalid and has no last good version",
                   kind, name);
    else
        rc_doc_err(L, d, RC_ERROR, v, path, "no %s named \"%s\"", kind, name);
}

/* Resolves the reference at node v (a name) to an index of k; reports an
 * unknown name. Returns the index or -1. */
static long resolve(struct rc_load *L, struct rc_doc *d, yaml_node_t *v, const char *path,
                    const char *kind, const struct kind_docs *k)
{
    const char *name = rc_y_str(v);
    if (name == NULL)
        return -1;
    long i = find_doc(k, name);
    if (i >= 0)
        return i;
    if (L->contain)
        missing_ref(L, d, v, path, kind, name, is_broken(k, name));
    else if (!is_broken(k, name))
        rc_doc_err(L, d, RC_ERROR, v, path, "no %s named \"%s\"", kind, name);
    return -1;
}

/* ---- Instance ---- */

static int build_instance(struct rc_load *L, struct rc_doc *d, struct rc_instance *in)
{
    yaml_node_t *spec = rc_at(d, yaml_document_get_root_node(&d->y), "spec");
    if (rc_fill_meta(L, d, &in->meta, NULL, 0, NULL, 0) != 0)
        return -1;
    in->id = rc_arena_strdup(L->arena, get_str(d, spec, "id", d->name));
    const char *ed = get_str(d, spec, "edition", "Standard");
    in->edition = !strcmp(ed, "Basic") ? RC_EDITION_BASIC
                  : !strcmp(ed, "WAF") ? RC_EDITION_WAF
                                       : RC_EDITION_STANDARD;
    in->max_timeout_s = get_int(d, spec, "maxTimeoutSeconds", RC_MAX_TIMEOUT_DEFAULT_S);
    yaml_node_t *addrs = rc_at(d, spec, "addresses");
    if (addrs && addrs->type == YAML_SEQUENCE_NODE) {
        size_t n = (size_t)(addrs->data.sequence.items.top - addrs->data.sequence.items.start);
        in->addresses = rc_arena_alloc(L->arena, n * sizeof(*in->addresses));
        if (in->addresses == NULL)
            return -1;
        for (size_t i = 0; i < n; i++) {
            yaml_node_t *a = yaml_document_get_node(&d->y, addrs->data.sequence.items.start[i]);
            const char *s = rc_y_str(a);
            if (!is_ip(s)) {
                char path[64];
                snprintf(path, sizeof(path), "spec.addresses[%zu]", i);
                rc_doc_err(L, d, RC_ERROR, a, path, "\"%s\" is not an IP address", s);
            }
            if ((in->addresses[in->n_addresses++] = rc_arena_strdup(L->arena, s)) == NULL)
                return -1;
        }
    } else {
        in->addresses = rc_arena_alloc(L->arena, 2 * sizeof(*in->addresses));
        if (in->addresses == NULL)
            return -1;
        in->addresses[0] = "0.0.0.0";
        in->addresses[1] = "::";
        in->n_addresses = 2;
    }
    return in->id ? 0 : -1;
}

/* The instance listeners use when no Instance manifest exists. */
static void default_instance(struct rc_instance *in)
{
    static const char *const addrs[] = {"0.0.0.0", "::"};
    memset(in, 0, sizeof(*in));
    in->meta.kind = "Instance";
    in->meta.name = "default";
    in->id = "default";
    in->edition = RC_EDITION_STANDARD;
    in->max_timeout_s = RC_MAX_TIMEOUT_DEFAULT_S;
    in->addresses = (const char **)addrs;
    in->n_addresses = 2;
    rc_sha256_hex("Instance/default", 16, in->meta.digest);
}

/* ---- ServerGroup ---- */

static unsigned code_bit(const char *s)
{
    return s && strlen(s) == 8 && !strncmp(s, "http_", 5) ? 1u << (s[5] - '0') : 0;
}

static int build_group(struct rc_load *L, struct rc_doc *d, struct rc_server_group *g,
                       const struct kind_docs *certs)
{
    yaml_node_t *spec = rc_at(d, yaml_document_get_root_node(&d->y), "spec");
    if (rc_fill_meta(L, d, &g->meta, NULL, 0, NULL, 0) != 0)
        return -1;
    g->protocol =
        !strcmp(get_str(d, spec, "protocol", "HTTP"), "HTTPS") ? RC_GROUP_HTTPS : RC_GROUP_HTTP;
    const char *sch = get_str(d, spec, "scheduler", "Wrr");
    g->scheduler = !strcmp(sch, "Wlc")   ? RC_SCHED_WLC
                   : !strcmp(sch, "Sch") ? RC_SCHED_SCH
                   : !strcmp(sch, "Uch") ? RC_SCHED_UCH
                                         : RC_SCHED_WRR;
    g->upstream_keepalive = get_bool(d, spec, "upstreamKeepalive", true);
    g->fail_open = strcmp(get_str(d, spec, "whenAllUnhealthy", "FailOpen"), "Reject") != 0;

    yaml_node_t *servers = rc_at(d, spec, "servers");
    if (servers && servers->type == YAML_SEQUENCE_NODE) {
        yaml_node_item_t *start = servers->data.sequence.items.start;
        size_t n = (size_t)(servers->data.sequence.items.top - start);
        g->servers = rc_arena_alloc(L->arena, n * sizeof(*g->servers));
        if (g->servers == NULL)
            return -1;
        for (size_t i = 0; i < n; i++) {
            yaml_node_t *sn = yaml_document_get_node(&d->y, start[i]);
            struct rc_server *s = &g->servers[g->n_servers++];
            yaml_node_t *an = rc_at(d, sn, "address");
            s->address = rc_arena_strdup(L->arena, rc_y_str(an));
            s->port = get_int(d, sn, "port", 0);
            s->weight = get_int(d, sn, "weight", 100);
            s->loc = rc_y_loc(d, sn);
            if (s->address == NULL)
                return -1;
            char path[64];
            snprintf(path, sizeof(path), "spec.servers[%zu].address", i);
            if (!is_ip(s->address))
                rc_doc_err(L, d, RC_ERROR, an, path, "host names are not supported yet");
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
    hc->enabled = get_bool(d, h, "enabled", true);
    const char *proto = get_str(d, h, "protocol", "HTTP");
    hc->protocol = !strcmp(proto, "HTTPS") ? 1 : !strcmp(proto, "TCP") ? 2 : 0;
    hc->method = rc_arena_strdup(L->arena, get_str(d, h, "method", "HEAD"));
    hc->path = rc_arena_strdup(L->arena, get_str(d, h, "path", "/"));
    hc->host = rc_arena_strdup(L->arena, get_str(d, h, "host", NULL));
    hc->port = get_int(d, h, "port", 0);
    hc->interval_s = get_int(d, h, "intervalSeconds", 2);
    hc->timeout_s = get_int(d, h, "timeoutSeconds", 5);
    hc->healthy_threshold = get_int(d, h, "healthyThreshold", 3);
    hc->unhealthy_threshold = get_int(d, h, "unhealthyThreshold", 3);
    yaml_node_t *codes = rc_at(d, h, "codes");
    if (codes && codes->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = codes->data.sequence.items.start;
             it < codes->data.sequence.items.top; it++)
            hc->codes |= code_bit(rc_y_str(yaml_document_get_node(&d->y, *it)));
    } else {
        hc->codes = code_bit("http_2xx") | code_bit("http_3xx");
    }
    if (hc->method == NULL || hc->path == NULL)
        return -1;

    /* End-to-end TLS is not built yet (unsupported.c says so), but its
     * references must still name real certificates. */
    yaml_node_t *cas = rc_at(d, spec, "tls.caCertificates");
    if (cas && cas->type == YAML_SEQUENCE_NODE) {
        yaml_node_item_t *start = cas->data.sequence.items.start;
        for (yaml_node_item_t *it = start; it < cas->data.sequence.items.top; it++) {
            char path[64];
            snprintf(path, sizeof(path), "spec.tls.caCertificates[%zu]", (size_t)(it - start));
            resolve(L, d, yaml_document_get_node(&d->y, *it), path, "Certificate", certs);
        }
    }
    yaml_node_t *cc = rc_at(d, spec, "tls.clientCertificate");
    if (cc)
        resolve(L, d, cc, "spec.tls.clientCertificate", "Certificate", certs);
    return 0;
}

/* ---- Listener ---- */

/* Request headers a client-certificate header may not be renamed to
 * (alb-https-listener.txt). */
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
        for (size_t r = 0; name && reserved_headers[r]; r++)
            if (!strcasecmp(name, reserved_headers[r]))
                rc_doc_err(L, d, RC_ERROR, name_node, full, "\"%s\" is a reserved header name",
                           name);
        for (size_t j = 0; name && j < i; j++) {
            const char **other = (const char **)((char *)li + cc_headers[j].offset);
            if (*other && !strcasecmp(*other, name))
                rc_doc_err(L, d, RC_ERROR, name_node, full,
                           "\"%s\" is already the name of headers.clientCert.%s", name,
                           cc_headers[j].field);
        }
        if (!get_bool(d, node, "enabled", false))
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

struct refs {
    struct kind_docs instances, certs, policies, groups;
};

static const struct rc_certificate *server_cert(struct rc_load *L, struct rc_doc *d, yaml_node_t *v,
                                                const char *path, const struct refs *r)
{
    long i = resolve(L, d, v, path, "Certificate", &r->certs);
    if (i < 0)
        return NULL;
    const struct rc_certificate *c = &L->m->certificates[i];
    /* A self-signed leaf may carry CA:TRUE (what `openssl req -x509`
     * makes by default); an issuing CA certificate may not serve. */
    if (c->type == RC_CERT_CA || (c->is_ca && !c->self_signed))
        rc_doc_err(L, d, RC_ERROR, v, path,
                   "certificate \"%s\" is a CA certificate, not a server certificate",
                   c->meta.name);
    return c;
}

static int build_listener_tls(struct rc_load *L, struct rc_doc *d, yaml_node_t *spec,
                              struct rc_listener *li, const struct refs *r)
{
    yaml_node_t *tls = rc_at(d, spec, "tls");
    if (li->protocol == RC_LISTENER_HTTP) {
        if (tls)
            rc_doc_err(L, d, RC_ERROR, rc_y_get_key(&d->y, spec, "tls"), "spec.tls",
                       "HTTP listeners take no tls settings");
        return 0;
    }
    yaml_node_t *cert = rc_at(d, tls, "certificate");
    if (cert == NULL)
        rc_doc_err(L, d, RC_ERROR, tls ? tls : spec, tls ? "spec.tls" : "spec",
                   "%s listeners need tls.certificate",
                   li->protocol == RC_LISTENER_HTTPS ? "HTTPS" : "QUIC");
    else
        li->tls.certificate = server_cert(L, d, cert, "spec.tls.certificate", r);

    yaml_node_t *ext = rc_at(d, tls, "extensionCertificates");
    if (ext && ext->type == YAML_SEQUENCE_NODE) {
        yaml_node_item_t *start = ext->data.sequence.items.start;
        size_t n = (size_t)(ext->data.sequence.items.top - start);
        li->tls.extension_certificates = rc_arena_alloc(L->arena, n * sizeof(void *));
        if (li->tls.extension_certificates == NULL)
            return -1;
        for (size_t i = 0; i < n; i++) {
            char path[64];
            snprintf(path, sizeof(path), "spec.tls.extensionCertificates[%zu]", i);
            const struct rc_certificate *c =
                server_cert(L, d, yaml_document_get_node(&d->y, start[i]), path, r);
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
        missing_ref(L, d, pol, "spec.tls.policy", "TLSPolicy", pname,
                    is_broken(&r->policies, pname));
    else if (li->tls.policy == NULL && !is_broken(&r->policies, pname))
        rc_doc_err(L, d, RC_ERROR, pol, "spec.tls.policy", "no TLSPolicy named \"%s\"", pname);
    if (li->tls.policy && !li->tls.policy->system && li->instance &&
        li->instance->edition == RC_EDITION_BASIC)
        rc_doc_err(L, d, RC_ERROR, pol, "spec.tls.policy",
                   "custom TLS policies need a Standard or WAF instance (instance \"%s\" is Basic)",
                   li->instance->meta.name);

    li->tls.strict_sni = get_bool(d, tls, "strictSni", false);
    yaml_node_t *mutual = rc_at(d, tls, "mutualAuthentication");
    li->tls.mutual.enabled = get_bool(d, mutual, "enabled", false);
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
            yaml_node_t *v = yaml_document_get_node(&d->y, start[i]);
            long k = resolve(L, d, v, path, "Certificate", &r->certs);
            if (k < 0)
                continue;
            const struct rc_certificate *c = &L->m->certificates[k];
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

static int build_listener(struct rc_load *L, struct rc_doc *d, struct rc_listener *li,
                          const struct refs *r)
{
    yaml_node_t *spec = rc_at(d, yaml_document_get_root_node(&d->y), "spec");
    if (rc_fill_meta(L, d, &li->meta, NULL, 0, NULL, 0) != 0)
        return -1;
    yaml_node_t *inst = rc_at(d, spec, "instance");
    if (inst) {
        long i = resolve(L, d, inst, "spec.instance", "Instance", &r->instances);
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
    const char *proto = get_str(d, spec, "protocol", "HTTP");
    li->protocol = !strcmp(proto, "HTTPS")  ? RC_LISTENER_HTTPS
                   : !strcmp(proto, "QUIC") ? RC_LISTENER_QUIC
                                            : RC_LISTENER_HTTP;
    li->port = get_int(d, spec, "port", 0);
    yaml_node_t *h2 = rc_at(d, spec, "http2");
    li->http2 = li->protocol == RC_LISTENER_HTTPS && get_bool(d, spec, "http2", true);
    if (h2 && li->protocol != RC_LISTENER_HTTPS && get_bool(d, spec, "http2", false))
        rc_doc_err(L, d, RC_ERROR, h2, "spec.http2", "http2 is only for HTTPS listeners");
    li->idle_timeout_s = get_int(d, spec, "idleTimeoutSeconds", 15);
    li->request_timeout_s = get_int(d, spec, "requestTimeoutSeconds", 60);
    check_timeout_ceiling(L, d, spec, "idleTimeoutSeconds", li->idle_timeout_s, li->instance);
    check_timeout_ceiling(L, d, spec, "requestTimeoutSeconds", li->request_timeout_s, li->instance);
    li->limits.max_request_body_bytes = get_u64(d, spec, "limits.maxRequestBodyBytes", 0);
    li->limits.header_timeout_s = get_int(d, spec, "limits.headerTimeoutSeconds", 10);
    li->limits.min_body_rate = (uint32_t)get_u64(d, spec, "limits.minBodyRateBytesPerSecond", 256);
    li->gzip = get_bool(d, spec, "compression.gzip", true);
    li->brotli = get_bool(d, spec, "compression.brotli", true);
    const char *mode = get_str(d, spec, "xForwardedFor.mode", "Append");
    li->xff_mode = !strcmp(mode, "Remove")     ? RC_XFF_REMOVE
                   : !strcmp(mode, "Preserve") ? RC_XFF_PRESERVE
                                               : RC_XFF_APPEND;
    yaml_node_t *csi = rc_at(d, spec, "xForwardedFor.clientSourceIps.enabled");
    if (get_bool(d, spec, "xForwardedFor.clientSourceIps.enabled", false) && li->instance &&
        li->instance->edition == RC_EDITION_BASIC)
        rc_doc_err(L, d, RC_ERROR, csi, "spec.xForwardedFor.clientSourceIps.enabled",
                   "retrieving the client IP needs a Standard or WAF instance (instance \"%s\" is "
                   "Basic)",
                   li->instance->meta.name);
    li->headers.slb_id = get_bool(d, spec, "headers.slbId", false);
    li->headers.proto = get_bool(d, spec, "headers.proto", false);
    li->headers.port = get_bool(d, spec, "headers.port", false);
    li->headers.host = get_bool(d, spec, "headers.host", false);
    li->headers.client_src_port = get_bool(d, spec, "headers.clientSrcPort", false);
    if (build_client_cert_headers(L, d, spec, li) != 0 || build_listener_tls(L, d, spec, li, r))
        return -1;
    yaml_node_t *gn = rc_at(d, spec, "defaultAction.forward.serverGroup");
    if (gn) {
        long i =
            resolve(L, d, gn, "spec.defaultAction.forward.serverGroup", "ServerGroup", &r->groups);
        if (i >= 0)
            li->default_group = &L->m->groups[i];
    }
    return 0;
}

/* Within one instance, ports are unique per protocol, and HTTP and HTTPS
 * listeners may not share one (HTTPS and QUIC may: TCP and UDP). */
static void check_ports(struct rc_load *L, struct kind_docs *ld)
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
            rc_doc_err(L, d, RC_ERROR, rc_at(d, yaml_document_get_root_node(&d->y), "spec.port"),
                       "spec.port",
                       "port %d is already used by %s listener \"%s\" on instance \"%s\"", a->port,
                       pnames[b->protocol], b->meta.name, a->instance->meta.name);
            break;
        }
    }
}

/* ---- copies of unchanged resources ----
 *
 * A document byte-identical to the source of a resource of the running
 * model (d->prev_src) builds the same resource again when what else it
 * depends on is the same, so it is copied instead (the struct; its strings
 * and arrays stay in the arena they were built in, which the new model
 * holds). That is what makes a reload cost grow with the change: with
 * 10,000 certificates and 10,000 groups, building them again is most of a
 * load. Only kinds whose build depends on the text alone, or on what is
 * checked here, are copied; the prev resource was built without an error
 * (a model holds no failed build) and the only warning a build can give
 * (expiry) is re-checked at L->now. Listeners, which point to other
 * resources, are always built. */

static bool reuse_from(struct rc_load *L, const struct rc_doc *d)
{
    const struct rc_source *s = d->prev_src;
    return s && s->res && s->origin && L->prev && L->files;
}

static bool reuse_certificate(struct rc_load *L, struct rc_doc *d, struct rc_certificate *c)
{
    if (!reuse_from(L, d))
        return false;
    const struct rc_certificate *o = d->prev_src->res;
    if (o->source == RC_CERT_SOURCE_SERVICE || !rc_cert_time_quiet(L, o))
        return false;
    /* Files: the bytes prev holds must still be what the files hold. */
    if (o->source == RC_CERT_SOURCE_FILES &&
        (!rc_filecache_unchanged(L->files, o->cert_path, o->cert_path_hash, o->cert_pem,
                                 o->cert_pem_len) ||
         (o->key_path && !rc_filecache_unchanged(L->files, o->key_path, o->key_path_hash,
                                                 o->key_pem, o->key_pem_len))))
        return false;
    if (rc_arena_hold(L->m->arena, d->prev_src->origin) != 0) {
        L->oom = true;
        return false;
    }
    *c = *o;
    /* The document may have moved in its file (a changed file's unchanged
     * document, load.c): the copy is where the document is now. */
    c->meta.loc.line += d->src_line - d->prev_src->line;
    L->certs_reused++;
    return true;
}

static bool reuse_group(struct rc_load *L, struct rc_doc *d, struct rc_server_group *g)
{
    /* spec.tls names certificates: their existence is checked by a build
     * (a lazy document has no "tls" in its text at all: load.c). */
    if (!reuse_from(L, d) ||
        (!d->lazy && rc_at(d, yaml_document_get_root_node(&d->y), "spec.tls") != NULL))
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
    }
    return true;
}

static bool reuse_instance(struct rc_load *L, struct rc_doc *d, struct rc_instance *in)
{
    if (!reuse_from(L, d) || rc_arena_hold(L->m->arena, d->prev_src->origin) != 0)
        return false;
    *in = *(const struct rc_instance *)d->prev_src->res;
    in->meta.loc.line += d->src_line - d->prev_src->line;
    return true;
}

/* The element of this model's array (base, n elements of size, sorted by
 * name when sorted) that is a copy of old, an element of prev's array
 * (pbase, pn): at the same index when the arrays line up, else found by
 * name. NULL when there is none, or when it was built again: a copy keeps
 * the very name pointer of what it copies, a build never has it. Every
 * element type begins with its struct rc_meta. */
static const void *copy_of(const void *old, const void *pbase, size_t pn, const void *base,
                           size_t n, size_t size, bool sorted)
{
    const char *o = old, *pb = pbase, *b = base;
    if (o < pb || o >= pb + pn * size || (size_t)(o - pb) % size != 0)
        return NULL;
    const char *name = ((const struct rc_meta *)(const void *)o)->name;
#define NAME_AT(k) (((const struct rc_meta *)(const void *)(b + (k)*size))->name)
    size_t i = (size_t)(o - pb) / size;
    if (i < n && NAME_AT(i) == name)
        return b + i * size;
    if (!sorted) {
        for (size_t k = 0; k < n; k++)
            if (NAME_AT(k) == name)
                return b + k * size;
        return NULL;
    }
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(NAME_AT(mid), name);
        if (c == 0)
            return NAME_AT(mid) == name ? b + mid * size : NULL;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
#undef NAME_AT
}

#define COPY_OF(L, field, old)                                                                     \
    ((const __typeof__(*(L)->m->field) *)copy_of((old), (L)->prev->field, (L)->prev->n_##field,    \
                                                 (L)->m->field, (L)->m->n_##field,                 \
                                                 sizeof(*(L)->m->field), true))

/* Re-points one reference of a copied listener; false when what it uses
 * is not a copy of what its running version used. */
#define REPOINT(L, field, ref) ((ref) == NULL || ((ref) = COPY_OF(L, field, (ref))) != NULL)

static bool repoint_certs(struct rc_load *L, const struct rc_certificate ***v, size_t n)
{
    if (n == 0)
        return true;
    const struct rc_certificate **nv = rc_arena_alloc(L->arena, n * sizeof(*nv));
    if (nv == NULL) {
        L->oom = true;
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if ((nv[i] = COPY_OF(L, certificates, (*v)[i])) == NULL)
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
static bool reuse_listener(struct rc_load *L, struct rc_doc *d, struct rc_listener *li,
                           const struct refs *r)
{
    if (L->pass != 1 || L->contain || !reuse_from(L, d) || r->instances.n_broken != 0 ||
        L->m->n_instances != L->prev->n_instances)
        return false; /* which instance a listener without one gets may change */
    struct rc_listener c = *(const struct rc_listener *)d->prev_src->res;
    const struct rc_tls_policy *pol = c.tls.policy;
    if (pol != NULL) {
        pol = copy_of(pol, L->prev->policies, L->prev->n_policies, L->m->policies, L->m->n_policies,
                      sizeof(*pol), false);
        if (pol == NULL)
            return false;
        c.tls.policy = pol;
    }
    if (!REPOINT(L, instances, c.instance) || !REPOINT(L, certificates, c.tls.certificate) ||
        !REPOINT(L, groups, c.default_group) ||
        !repoint_certs(L, &c.tls.extension_certificates, c.tls.n_extension_certificates) ||
        !repoint_certs(L, &c.tls.mutual.ca_certificates, c.tls.mutual.n_ca_certificates))
        return false;
    if (rc_arena_hold(L->m->arena, d->prev_src->origin) != 0) {
        L->oom = true;
        return false;
    }
    c.meta.loc.line += d->src_line - d->prev_src->line;
    *li = c;
    return true;
}

int rc_build_model(struct rc_load *L)
{
    struct rc_model *m = L->m;
    struct refs r;
    struct kind_docs services, listeners;
    if (collect(L, "Instance", &r.instances) || collect(L, "Certificate", &r.certs) ||
        collect(L, "TLSPolicy", &r.policies) || collect(L, "ServerGroup", &r.groups) ||
        collect(L, "CertificateService", &services) || collect(L, "Listener", &listeners))
        return -1;

    /* A document byte-identical to the source of a resource the running
     * model holds passed these checks when that resource was built (they
     * read the text alone and only report errors). */
    for (size_t i = 0; i < L->n_dv; i++)
        if (L->dv[i]->schema_ok && !L->dv[i]->lazy &&
            (L->dv[i]->prev_src == NULL || L->dv[i]->prev_src->res == NULL))
            rc_check_unsupported(L, L->dv[i]);

    bool implicit = r.instances.n == 0 && r.instances.n_broken == 0;
    m->instances = rc_arena_alloc(m->arena, (r.instances.n + 1) * sizeof(*m->instances));
    if (m->instances == NULL)
        return -1;
    if (implicit) {
        default_instance(&m->instances[0]);
        m->n_instances = 1;
    }
    for (size_t i = 0; i < r.instances.n; i++) {
        struct rc_doc *d = r.instances.v[i];
        struct rc_instance *in = &m->instances[m->n_instances++];
        d->reused = reuse_instance(L, d, in);
        if (!d->reused && d->lazy && rc_doc_parse(d) != 0)
            return -1;
        if (!d->reused && build_instance(L, d, in) != 0)
            return -1;
        d->built = in;
    }

    m->certificates = rc_arena_alloc(m->arena, (r.certs.n + 1) * sizeof(*m->certificates));
    if (m->certificates == NULL)
        return -1;
    for (size_t i = 0; i < r.certs.n; i++) {
        struct rc_doc *d = r.certs.v[i];
        struct rc_certificate *c = &m->certificates[m->n_certificates++];
        /* A lazy document is never a service certificate (load.c): it is
         * parsed only when it cannot be copied. */
        bool tried = d->lazy;
        d->reused = tried && reuse_certificate(L, d, c);
        if (!d->reused && d->lazy && rc_doc_parse(d) != 0)
            return -1;
        if (!d->reused) {
            yaml_node_t *svc =
                rc_at(d, yaml_document_get_root_node(&d->y), "spec.source.service.name");
            if (svc)
                resolve(L, d, svc, "spec.source.service.name", "CertificateService", &services);
            d->reused = !tried && reuse_certificate(L, d, c);
        }
        if (!d->reused && rc_build_certificate(L, d, c) < -1)
            return -1;
        d->built = c;
        if (L->pass == 1)
            d->pass1_cert = &m->certificates[m->n_certificates - 1];
    }

    size_t n_sys = rc_system_policy_count();
    m->policies = rc_arena_alloc(m->arena, (r.policies.n + n_sys) * sizeof(*m->policies));
    if (m->policies == NULL)
        return -1;
    for (size_t i = 0; i < r.policies.n; i++)
        if (rc_build_policy(L, r.policies.v[i], &m->policies[m->n_policies++]) < -1)
            return -1;
    for (size_t i = 0; i < n_sys; i++)
        if (rc_system_policy(L, i, &m->policies[m->n_policies++]) != 0)
            return -1;

    m->groups = rc_arena_alloc(m->arena, (r.groups.n + 1) * sizeof(*m->groups));
    if (m->groups == NULL)
        return -1;
    for (size_t i = 0; i < r.groups.n; i++) {
        struct rc_doc *d = r.groups.v[i];
        struct rc_server_group *g = &m->groups[m->n_groups++];
        d->reused = reuse_group(L, d, g);
        if (!d->reused && d->lazy && rc_doc_parse(d) != 0)
            return -1;
        if (!d->reused && build_group(L, d, g, &r.certs) != 0)
            return -1;
        d->built = g;
    }

    m->listeners = rc_arena_alloc(m->arena, (listeners.n + 1) * sizeof(*m->listeners));
    if (m->listeners == NULL)
        return -1;
    for (size_t i = 0; i < listeners.n; i++) {
        struct rc_doc *d = listeners.v[i];
        struct rc_listener *li = &m->listeners[m->n_listeners++];
        d->built = li;
        d->reused = reuse_listener(L, d, li, &r);
        if (!d->reused && d->lazy && rc_doc_parse(d) != 0)
            return -1;
        if (!d->reused && build_listener(L, d, li, &r) != 0)
            return -1;
    }
    check_ports(L, &listeners);
    return L->oom ? -1 : 0;
}
