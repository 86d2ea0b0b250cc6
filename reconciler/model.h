/* What holders of a model may do with it (model.c): keep it alive and look
 * resources up by name. The model's types are model-t.h; together they are
 * all of the reconciler that proxy/ uses. */
#ifndef ALBD_RECONCILER_MODEL_H
#define ALBD_RECONCILER_MODEL_H

#include "reconciler/model-t.h"

/* Reference counting, safe from any thread. unref(NULL) is a no-op; the
 * last unref frees the model and its arena. */
struct rc_model *rc_model_ref(struct rc_model *m);
void rc_model_unref(struct rc_model *m);

/* Lookups by name (binary search of the sorted arrays); NULL when absent. */
const struct rc_tls_policy *rc_model_policy(const struct rc_model *m, const char *name);
const struct rc_server_group *rc_model_group(const struct rc_model *m, const char *name);
const struct rc_certificate *rc_model_certificate(const struct rc_model *m, const char *name);

/* The bytes m takes: its arena (arrays) and every data arena it keeps
 * alive, its own and those of the earlier loads its copies point into
 * (reuse.h, compaction). 0 for NULL. */
size_t rc_model_footprint(const struct rc_model *m);

#endif
