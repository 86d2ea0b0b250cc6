/* Listener resources: building one from its document, copying an
 * unchanged one, and the port clashes between the listeners of one
 * instance (listener.c). Internal to the reconciler; called by build.c
 * only. Forwarding rules will be built by their own file (rules.c),
 * called from rc_build_listener: see rc_listener_refs in listener.c for
 * what a rule's references must do on a copied listener. */
#ifndef ALBD_RECONCILER_LISTENER_H
#define ALBD_RECONCILER_LISTENER_H

#include <stdbool.h>
#include <stddef.h>

#include "reconciler/doc.h"
#include "reconciler/model-t.h"
#include "reconciler/resolve.h"
#include "reconciler/reuse.h"

struct rc_load;

/* Fills li from a Listener document (parsed), resolving its references
 * (r: this pass's documents by kind; the instance, certificate, policy and
 * group arrays of L->m are built). Errors go to L->errs. Returns 0 or -1
 * when out of memory. */
int rc_build_listener(struct rc_load *L, struct rc_doc *d, struct rc_listener *li,
                      const struct rc_refs *r);

/* Copies d's running version into li when d is unchanged and everything it
 * refers to is a copy of what its running version referred to; its
 * references are re-pointed into L->m's arrays and checked (rc_copy_check
 * with rc_listener_refs). First build pass only. False when it must be
 * built (L->oom when out of memory). */
bool rc_reuse_listener(struct rc_load *L, struct rc_doc *d, struct rc_listener *li,
                       const struct rc_refs *r);

/* Reports ports used twice within one instance (ld: the listener
 * documents, in the order of L->m->listeners). */
void rc_check_ports(struct rc_load *L, struct rc_kind_docs *ld);

/* The reference fields of struct rc_listener (rc_copy_check's table). */
extern const struct rc_ref_field rc_listener_refs[];
extern const size_t rc_listener_n_refs;

/* True when name (any case) is one of the reference's reserved request
 * headers: no client-certificate header may be renamed to it, no rule may
 * insert or remove it. */
bool rc_header_reserved(const char *name);

/* sizeof(struct rc_listener) on LP64 when rc_listener_refs was last
 * checked against the struct: a static assertion in listener.c fails the
 * build when the struct changes without this being updated. */
#define RC_LISTENER_REVIEWED_SIZE 416

#endif
