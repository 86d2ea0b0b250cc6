/* TLSPolicy resources: custom policies from documents and the system
 * policies albd ships (policy.c). Internal to the reconciler; called by
 * build.c only. */
#ifndef ALBD_RECONCILER_POLICY_H
#define ALBD_RECONCILER_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "reconciler/doc.h"
#include "reconciler/model-t.h"

struct rc_load;

/* Fills p from a TLSPolicy document. Returns 0, -1 after appending errors,
 * or -2 when out of memory. */
int rc_build_policy(struct rc_load *L, struct rc_doc *d, struct rc_tls_policy *p);

/* The number of system policies and the i-th one, built into p. Returns 0
 * or -1 when out of memory. */
size_t rc_system_policy_count(void);
int rc_system_policy(struct rc_load *L, size_t i, struct rc_tls_policy *p);
/* Whether name is a system policy's name. */
bool rc_is_system_policy(const char *name);

#endif
