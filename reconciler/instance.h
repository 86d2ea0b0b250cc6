/* Instance resources: building one from its document, the implicit
 * "default" instance, and copying an unchanged one (instance.c). Internal
 * to the reconciler; called by build.c only. */
#ifndef ALBD_RECONCILER_INSTANCE_H
#define ALBD_RECONCILER_INSTANCE_H

#include <stdbool.h>

#include "reconciler/doc.h"
#include "reconciler/model-t.h"

struct rc_load;

/* Fills in from an Instance document (parsed). Errors go to L->errs.
 * Returns 0 or -1 when out of memory. */
int rc_build_instance(struct rc_load *L, struct rc_doc *d, struct rc_instance *in);

/* Fills in with the instance listeners use when no Instance manifest
 * exists (static strings; nothing allocated). */
void rc_default_instance(struct rc_instance *in);

/* Copies d's running version into in when d is unchanged (rc_reuse_from);
 * false when it must be built. */
bool rc_reuse_instance(struct rc_load *L, struct rc_doc *d, struct rc_instance *in);

#endif
