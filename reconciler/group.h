/* ServerGroup resources: building one from its document and copying an
 * unchanged one (group.c). Internal to the reconciler; called by build.c
 * only. */
#ifndef ALBD_RECONCILER_GROUP_H
#define ALBD_RECONCILER_GROUP_H

#include <stdbool.h>

#include "reconciler/doc.h"
#include "reconciler/model-t.h"
#include "reconciler/resolve.h"

struct rc_load;

/* Fills g from a ServerGroup document (parsed); certs: this pass's
 * Certificate documents, which spec.tls must name. Errors go to L->errs.
 * Returns 0 or -1 when out of memory. */
int rc_build_group(struct rc_load *L, struct rc_doc *d, struct rc_server_group *g,
                   const struct rc_kind_docs *certs);

/* Copies d's running version into g when d is unchanged and names no
 * certificate; false when it must be built (L->oom when out of memory). */
bool rc_reuse_group(struct rc_load *L, struct rc_doc *d, struct rc_server_group *g);

#endif
