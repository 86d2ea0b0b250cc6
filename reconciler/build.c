/* The build driver (build.h): collects the documents of each kind, then
 * builds or copies each kind's resources in dependency order (instances,
 * certificates, policies, groups, listeners) through the file that owns
 * the kind, and checks what spans listeners (ports). */
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

#include "reconciler/arena.h"
#include "reconciler/build.h"
#include "reconciler/cert.h"
#include "reconciler/certservice.h"
#include "reconciler/field.h"
#include "reconciler/group.h"
#include "reconciler/instance.h"
#include "reconciler/listener.h"
#include "reconciler/policy.h"
#include "reconciler/resolve.h"
#include "reconciler/reuse.h"
#include "reconciler/source.h"
#include "reconciler/unsupported.h"

int rc_doc_own_file(struct rc_load *L, struct rc_doc *d)
{
    if (d->file_pass == L->pass)
        return 0;
    if (L->own_file_pass != L->pass || L->own_file_src != d->file_src) {
        const char *copy = rc_arena_strdup(L->arena, d->file_src);
        if (copy == NULL)
            return -1;
        L->own_file_src = d->file_src;
        L->own_file = copy;
        L->own_file_pass = L->pass;
    }
    d->file = L->own_file;
    d->file_pass = L->pass;
    return 0;
}

/* The certificates, copied or built; those built are parsed together at
 * the end (rc_finish_certificates). First each document's running version
 * is taken where it can be (shared, or copied: rc_reuse_certificate), then
 * the structs of those to build are allocated together, in one piece of
 * the pass's data arena: 10,000 certificates at start take one 4 MiB
 * block rather than 400 bytes in each of the blocks their strings fill,
 * between the load's scratch, whose freeing would leave their pages half
 * used. Returns 0 or -1 when out of memory. */
static int build_certificates(struct rc_load *L, struct rc_kind_docs *certs,
                              struct rc_kind_docs *services)
{
    struct rc_model *m = L->m;
    m->certificates = rc_arena_alloc(m->arena, (certs->n + 1) * sizeof(*m->certificates));
    /* The queue and the per-document results are scratch: malloc'd, not in
     * the model's arena. */
    struct rc_cert_batch batch = {.v = malloc((certs->n + 1) * sizeof(*batch.v)), .cap = certs->n};
    struct taken {
        const struct rc_certificate *c; /* shared or copied; NULL: to build */
        struct rc_certificate *own;     /* this load's copy */
        long si;                        /* its CertificateService, or -1 */
    } *t = malloc((certs->n + 1) * sizeof(*t));
    int rc = -1;
    if (m->certificates == NULL || batch.v == NULL || t == NULL)
        goto done;
    L->cert_batch = &batch;
    size_t n_build = 0;
    for (size_t i = 0; i < certs->n; i++) {
        struct rc_doc *d = certs->v[i];
        t[i] = (struct taken){NULL, NULL, -1};
        /* A lazy document is never a service certificate (load.c): it is
         * parsed only when it cannot be copied. */
        bool tried = d->lazy;
        if (tried)
            t[i].c = rc_reuse_certificate(L, d, &t[i].own);
        if (t[i].c == NULL && d->lazy && rc_doc_parse(d) != 0)
            goto done;
        if (t[i].c == NULL) {
            yaml_node_t *svc = rc_at(d, rc_doc_root(d), "spec.source.service.name");
            if (svc)
                t[i].si = rc_resolve(L, d, svc, "spec.source.service.name", "CertificateService",
                                     services);
            if (!tried)
                t[i].c = rc_reuse_certificate(L, d, &t[i].own);
        }
        if (L->oom)
            goto done;
        n_build += t[i].c == NULL;
    }
    struct rc_certificate *slab =
        n_build ? rc_arena_alloc(L->arena, n_build * sizeof(*slab)) : NULL;
    if (n_build && slab == NULL)
        goto done;
    for (size_t i = 0; i < certs->n; i++) {
        struct rc_doc *d = certs->v[i];
        const struct rc_certificate *c = t[i].c;
        struct rc_certificate *own = t[i].own;
        d->reused = c != NULL;
        /* Its struct and what rc_finish_certificates adds for the parse's
         * facts are the build's bytes. */
        size_t u0 = rc_arena_used(L->arena);
        if (c == NULL) {
            own = slab++;
            if (rc_doc_own_file(L, d) != 0 || rc_build_certificate(L, d, own) < -1)
                goto done;
            c = own;
        }
        d->built_bytes = rc_arena_used(L->arena) - u0 + (d->reused ? 0 : sizeof(*own));
        /* Built or copied, a service certificate points to this load's
         * service (services are built by every load; such a copy is never
         * shared: rc_reuse_certificate). */
        if (own && own->source == RC_CERT_SOURCE_SERVICE && t[i].si >= 0 &&
            (size_t)t[i].si < m->n_cert_services)
            own->service = &m->cert_services[t[i].si];
        m->certificates[m->n_certificates++] = c;
        d->built = c;
        if (L->pass == 1)
            d->pass1_cert = c;
    }
    rc = rc_finish_certificates(L) != 0 ? -1 : 0;
done:
    L->cert_batch = NULL;
    free(batch.v);
    free(t);
    return rc;
}

static int build_model(struct rc_load *L, struct rc_refs r, struct rc_kind_docs services,
                       struct rc_kind_docs listeners);

int rc_build_model(struct rc_load *L)
{
    struct rc_refs r = {0};
    struct rc_kind_docs services = {0}, listeners = {0};
    int rc = -1;
    if (rc_kind_collect(L, "Instance", &r.instances) == 0 &&
        rc_kind_collect(L, "Certificate", &r.certs) == 0 &&
        rc_kind_collect(L, "TLSPolicy", &r.policies) == 0 &&
        rc_kind_collect(L, "ServerGroup", &r.groups) == 0 &&
        rc_kind_collect(L, "CertificateService", &services) == 0 &&
        rc_kind_collect(L, "Listener", &listeners) == 0)
        rc = build_model(L, r, services, listeners);
    rc_kind_docs_cleanup(&r.instances);
    rc_kind_docs_cleanup(&r.certs);
    rc_kind_docs_cleanup(&r.policies);
    rc_kind_docs_cleanup(&r.groups);
    rc_kind_docs_cleanup(&services);
    rc_kind_docs_cleanup(&listeners);
    return rc;
}

static int build_model(struct rc_load *L, struct rc_refs r, struct rc_kind_docs services,
                       struct rc_kind_docs listeners)
{
    struct rc_model *m = L->m;

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
        rc_default_instance(&m->instances[0]);
        m->n_instances = 1;
    }
    for (size_t i = 0; i < r.instances.n; i++) {
        struct rc_doc *d = r.instances.v[i];
        struct rc_instance *in = &m->instances[m->n_instances++];
        d->reused = rc_reuse_instance(L, d, in);
        if (!d->reused && d->lazy && rc_doc_parse(d) != 0)
            return -1;
        size_t u0 = rc_arena_used(L->arena);
        if (!d->reused && (rc_doc_own_file(L, d) != 0 || rc_build_instance(L, d, in) != 0))
            return -1;
        d->built_bytes = rc_arena_used(L->arena) - u0;
        d->built = in;
    }

    /* Before certificates: a service certificate points to its service. */
    m->cert_services = rc_arena_alloc(m->arena, (services.n + 1) * sizeof(*m->cert_services));
    if (m->cert_services == NULL)
        return -1;
    for (size_t i = 0; i < services.n; i++) {
        struct rc_doc *d = services.v[i];
        struct rc_cert_service *s = &m->cert_services[m->n_cert_services++];
        if (d->lazy && rc_doc_parse(d) != 0)
            return -1;
        size_t u0 = rc_arena_used(L->arena);
        if (rc_doc_own_file(L, d) != 0 || rc_build_cert_service(L, d, s) != 0)
            return -1;
        d->built_bytes = rc_arena_used(L->arena) - u0;
        d->built = s;
    }

    if (build_certificates(L, &r.certs, &services) != 0)
        return -1;

    size_t n_sys = rc_system_policy_count();
    m->policies = rc_arena_alloc(m->arena, (r.policies.n + n_sys) * sizeof(*m->policies));
    if (m->policies == NULL)
        return -1;
    for (size_t i = 0; i < r.policies.n; i++) {
        size_t u0 = rc_arena_used(L->arena);
        if (rc_doc_own_file(L, r.policies.v[i]) != 0 ||
            rc_build_policy(L, r.policies.v[i], &m->policies[m->n_policies++]) < -1)
            return -1;
        r.policies.v[i]->built_bytes = rc_arena_used(L->arena) - u0;
    }
    for (size_t i = 0; i < n_sys; i++)
        if (rc_system_policy(L, i, &m->policies[m->n_policies++]) != 0)
            return -1;

    m->groups = rc_arena_alloc(m->arena, (r.groups.n + 1) * sizeof(*m->groups));
    if (m->groups == NULL)
        return -1;
    for (size_t i = 0; i < r.groups.n; i++) {
        struct rc_doc *d = r.groups.v[i];
        struct rc_server_group *g = &m->groups[m->n_groups++];
        d->reused = rc_reuse_group(L, d, g);
        if (!d->reused && d->lazy && rc_doc_parse(d) != 0)
            return -1;
        size_t u0 = rc_arena_used(L->arena);
        if (!d->reused && (rc_doc_own_file(L, d) != 0 || rc_build_group(L, d, g, &r.certs) != 0))
            return -1;
        d->built_bytes = rc_arena_used(L->arena) - u0;
        d->built = g;
    }

    m->listeners = rc_arena_alloc(m->arena, (listeners.n + 1) * sizeof(*m->listeners));
    if (m->listeners == NULL)
        return -1;
    struct rc_copy_ctx cx;
    rc_copy_ctx_init(&cx, m, L->prev);
    L->copy_ctx = &cx;
    int rc = 0;
    for (size_t i = 0; i < listeners.n && rc == 0; i++) {
        struct rc_doc *d = listeners.v[i];
        struct rc_listener *li = &m->listeners[m->n_listeners++];
        d->built = li;
        d->reused = rc_reuse_listener(L, d, li, &r);
        if (!d->reused && d->lazy && rc_doc_parse(d) != 0) {
            rc = -1;
            break;
        }
        size_t u0 = rc_arena_used(L->arena);
        if (!d->reused && (rc_doc_own_file(L, d) != 0 || rc_build_listener(L, d, li, &r) != 0))
            rc = -1;
        d->built_bytes = d->reused ? 0 : rc_arena_used(L->arena) - u0;
    }
    L->copy_ctx = NULL;
    rc_copy_ctx_cleanup(&cx);
    if (rc != 0)
        return -1;
    rc_check_ports(L, &listeners);
    return L->oom ? -1 : 0;
}
