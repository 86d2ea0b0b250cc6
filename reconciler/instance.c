/* Instance resources (instance.h). */
#include <stdio.h>
#include <string.h>

#include "reconciler/arena.h"
#include "reconciler/build.h"
#include "reconciler/field.h"
#include "reconciler/instance.h"
#include "reconciler/meta.h"
#include "reconciler/reuse.h"
#include "reconciler/source.h"

int rc_build_instance(struct rc_load *L, struct rc_doc *d, struct rc_instance *in)
{
    yaml_node_t *spec = rc_at(d, rc_doc_root(d), "spec");
    if (rc_fill_meta(L, d, &in->meta, NULL, 0, NULL, 0) != 0)
        return -1;
    in->id = rc_arena_strdup(L->arena, rc_field_str(d, spec, "id", d->name));
    const char *ed = rc_field_str(d, spec, "edition", "Standard");
    in->edition = !strcmp(ed, "Basic") ? RC_EDITION_BASIC
                  : !strcmp(ed, "WAF") ? RC_EDITION_WAF
                                       : RC_EDITION_STANDARD;
    in->max_timeout_s = rc_field_int(d, spec, "maxTimeoutSeconds", RC_MAX_TIMEOUT_DEFAULT_S);
    yaml_node_t *addrs = rc_at(d, spec, "addresses");
    if (addrs && addrs->type == YAML_SEQUENCE_NODE) {
        size_t n = (size_t)(addrs->data.sequence.items.top - addrs->data.sequence.items.start);
        in->addresses = rc_arena_alloc(L->arena, n * sizeof(*in->addresses));
        if (in->addresses == NULL)
            return -1;
        for (size_t i = 0; i < n; i++) {
            yaml_node_t *a = yaml_document_get_node(d->y, addrs->data.sequence.items.start[i]);
            const char *s = rc_y_str(a);
            if (!rc_is_ip(s)) {
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
void rc_default_instance(struct rc_instance *in)
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

bool rc_reuse_instance(struct rc_load *L, struct rc_doc *d, struct rc_instance *in)
{
    if (!rc_reuse_from(L, d) || rc_arena_hold(L->m->arena, d->prev_src->origin) != 0)
        return false;
    *in = *(const struct rc_instance *)d->prev_src->res;
    in->meta.loc.line += d->src_line - d->prev_src->line;
    return true;
}
