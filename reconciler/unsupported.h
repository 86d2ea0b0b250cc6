/* The one table of manifest fields the contract accepts but albd does not
 * implement yet and that would be unsafe to ignore (unsupported.c).
 * Internal to the reconciler; called by build.c only. */
#ifndef ALBD_RECONCILER_UNSUPPORTED_H
#define ALBD_RECONCILER_UNSUPPORTED_H

#include "reconciler/doc.h"

struct rc_load;

/* Reports (to L->errs) the fields of d, a parsed document, that are in the
 * table. */
void rc_check_unsupported(struct rc_load *L, struct rc_doc *d);

#endif
