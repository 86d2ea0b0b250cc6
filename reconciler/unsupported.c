/* Fields of the manifest contract that albd accepts but does not act on
 * yet, and that would be unsafe to ignore (traffic would go where the user
 * did not ask, or protection they asked for would be missing). One table so
 * that each later feature removes its own line. Fields that are harmless to
 * ignore (compression, ...) are parsed silently. */
#include <string.h>

#include "reconciler/build.h"
#include "reconciler/field.h"
#include "reconciler/unsupported.h"

struct unsupported {
    const char *kind;
    const char *path;   /* dotted path from the document root */
    const char *equals; /* scalar value that triggers it; NULL: the field being present */
    const char *msg;
};

static const struct unsupported table[] = {
    {"Listener", "spec.protocol", "QUIC", "QUIC listeners are not supported yet"},
    {"Listener", "spec.quic.upgrade", "true", "quic is not supported yet"},
};

void rc_check_unsupported(struct rc_load *L, struct rc_doc *d)
{
    yaml_node_t *root = rc_doc_root(d);
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        const struct unsupported *u = &table[i];
        if (strcmp(u->kind, d->kind) != 0)
            continue;
        yaml_node_t *n = rc_at(d, root, u->path);
        if (n == NULL)
            continue;
        if (u->equals) {
            struct rc_yval v;
            rc_y_classify(n, &v);
            bool hit = !strcmp(u->equals, "true")
                           ? v.type == RC_Y_BOOL && v.b
                           : !strcmp(rc_y_str(n) ? rc_y_str(n) : "", u->equals);
            if (!hit)
                continue;
        } else if (n->type == YAML_SEQUENCE_NODE &&
                   n->data.sequence.items.start == n->data.sequence.items.top) {
            continue; /* an empty list asks for nothing */
        }
        rc_doc_err(L, d, RC_ERROR, n, u->path, "%s", u->msg);
    }
}
