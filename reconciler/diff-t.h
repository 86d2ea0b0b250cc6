/* What `albd plan` shows: the changes that turn the running configuration
 * into the desired one, resource by resource, field by field. */
#ifndef ALBD_RECONCILER_DIFF_T_H
#define ALBD_RECONCILER_DIFF_T_H

#include <stddef.h>
#include <jansson.h>

enum rc_diff_action {
    RC_DIFF_CREATE, /* only in desired */
    RC_DIFF_UPDATE, /* in both, some field differs */
    RC_DIFF_DELETE, /* only in running */
};

/* One changed leaf. path is relative to the resource ("spec.port",
 * "labels.team", "spec.servers[10.0.0.1:80].weight", "spec.rules[0].name").
 * old / new are references owned by the field; NULL means absent on that
 * side (never JSON null, which the export does not produce). For a created
 * resource every leaf appears with old NULL (arrays of scalars are leaves
 * there); for a deleted one with new NULL. In an update, scalar sets are
 * shown whole and sorted, elements of identity arrays are named by their
 * identity in [], those of other arrays by position; what appears or
 * disappears as a whole (a key, a server) is one field with its value. */
struct rc_diff_field {
    char *path;
    json_t *old;
    json_t *new;
};

struct rc_diff_change {
    enum rc_diff_action action;
    char *kind;
    char *name;
    struct rc_diff_field *fields;
    size_t n_fields;
};

/* The result of rc_diff_compute(). Zero-initialise it or rc_diff_init().
 * changes are in kind order (Instance, Certificate, CertificateService,
 * TLSPolicy, ServerGroup, Listener, then any other kind alphabetically),
 * then by name (strcmp); fields are sorted by their walk order, which is
 * key order (strcmp) within each object: the same inputs always give the
 * same diff. */
struct rc_diff {
    struct rc_diff_change *changes;
    size_t n_changes, cap;
    size_t n_create, n_update, n_delete;
    /* Why rc_diff_compute() failed ("" on success); never holds secrets. */
    char error[256];
};

#endif
