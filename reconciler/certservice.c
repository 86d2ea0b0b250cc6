/* CertificateService resources (certservice.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconciler/arena.h"
#include "reconciler/build.h"
#include "reconciler/certservice.h"
#include "reconciler/field.h"
#include "reconciler/meta.h"

/* An absolute copy of path p (relative paths resolve against the
 * manifest's folder), in the model's arena; NULL when p is NULL. */
static const char *abs_path(struct rc_load *L, struct rc_doc *d, const char *p, bool *oom)
{
    if (p == NULL)
        return NULL;
    if (p[0] == '/')
        return rc_arena_strdup(L->arena, p);
    size_t n = strlen(d->dir) + 1 + strlen(p) + 1;
    char *out = rc_arena_alloc(L->arena, n);
    if (out == NULL) {
        *oom = true;
        return NULL;
    }
    snprintf(out, n, "%s/%s", d->dir, p);
    return out;
}

int rc_build_cert_service(struct rc_load *L, struct rc_doc *d, struct rc_cert_service *s)
{
    yaml_node_t *spec = rc_at(d, rc_doc_root(d), "spec");
    if (rc_fill_meta(L, d, &s->meta, NULL, 0, NULL, 0) != 0)
        return -1;
    bool oom = false;
    const char *ep = rc_field_str(d, spec, "endpoint", "");
    size_t n = strlen(ep);
    while (n > 0 && ep[n - 1] == '/')
        n--; /* the API's paths start with '/' */
    s->endpoint = rc_arena_strndup(L->arena, ep, n);
    s->ca_file = abs_path(L, d, rc_field_str(d, spec, "caFile", NULL), &oom);
    s->token_file = abs_path(L, d, rc_field_str(d, spec, "tokenFile", NULL), &oom);
    s->client_cert =
        abs_path(L, d, rc_field_str(d, spec, "clientCertificate.certificate", NULL), &oom);
    s->client_key =
        abs_path(L, d, rc_field_str(d, spec, "clientCertificate.privateKey", NULL), &oom);
    s->refresh_s = rc_field_int(d, spec, "refreshIntervalSeconds", 300);
    s->timeout_s = rc_field_int(d, spec, "timeoutSeconds", 10);
    if (s->timeout_s >= s->refresh_s) {
        yaml_node_t *t = rc_at(d, spec, "timeoutSeconds");
        rc_doc_err(L, d, RC_ERROR, t ? t : spec, "spec.timeoutSeconds",
                   "timeoutSeconds (%d) must be shorter than refreshIntervalSeconds (%d)",
                   s->timeout_s, s->refresh_s);
    }
    return s->endpoint == NULL || oom ? -1 : 0;
}
