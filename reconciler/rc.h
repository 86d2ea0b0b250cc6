/* The reconciler's entry points: manifests in, validated model out. Pure:
 * no sockets, no event loop, no logging; errors come back as values. */
#ifndef ALBD_RECONCILER_RC_H
#define ALBD_RECONCILER_RC_H

#include "reconciler/err.h"
#include "reconciler/model-t.h"

/* Loads every *.yaml / *.yml file below dir (recursively, following the
 * Kubernetes ConfigMap "..data" link layout, skipping hidden entries other
 * than that), parses all documents, validates them against the schemas and
 * the semantic rules, and builds the model.
 *
 * Returns 0 and sets *out (one reference, caller unrefs) when there is no
 * RC_ERROR entry; warnings may still be appended to errs. Returns -1 and
 * leaves *out NULL when at least one RC_ERROR was appended. now is the time
 * used for certificate validity checks. */
int rc_load_dir(const char *dir, time_t now, struct rc_model **out, struct rc_errs *errs);

/* Reference counting, safe from any thread. unref(NULL) is a no-op. */
struct rc_model *rc_model_ref(struct rc_model *m);
void rc_model_unref(struct rc_model *m);

/* Lookups by name; NULL when absent. */
const struct rc_tls_policy *rc_model_policy(const struct rc_model *m, const char *name);
const struct rc_server_group *rc_model_group(const struct rc_model *m, const char *name);
const struct rc_certificate *rc_model_certificate(const struct rc_model *m, const char *name);

#endif
