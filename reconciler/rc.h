/* The reconciler's entry points: manifests in, validated model out. Pure:
 * no sockets, no event loop, no logging; errors come back as values. */
#ifndef ALBD_RECONCILER_RC_H
#define ALBD_RECONCILER_RC_H

#include "reconciler/err.h"
#include "reconciler/model-t.h"
#include "reconciler/model.h" /* rc_model_ref/unref and the lookups */

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

#endif
