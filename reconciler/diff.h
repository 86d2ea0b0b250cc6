/* Diff of two exported configurations (reconciler/export.h shape). Pure:
 * JSON in, struct rc_diff out. */
#ifndef ALBD_RECONCILER_DIFF_H
#define ALBD_RECONCILER_DIFF_H

#include <stdbool.h>
#include <jansson.h>

#include "reconciler/diff-t.h"

void rc_diff_init(struct rc_diff *d);

/* Frees every change and field (and drops their JSON references), then
 * re-initialises d. Safe on a zeroed or already cleaned-up diff. */
void rc_diff_cleanup(struct rc_diff *d);

/* Computes the changes from running to desired into out (which must be
 * initialised and is cleaned up first). running may be NULL: planning
 * against nothing makes every desired resource a create. Neither input is
 * modified or kept; out holds its own references to the values it shows.
 *
 * Within a resource, objects are compared key by key; arrays whose
 * elements have an identity are matched by it, so reordering them is not a
 * change: servers by address:port, rules and serverGroups by name; scalar
 * sets (addresses, dnsNames, tlsVersions, codes, extensionCertificates,
 * caCertificates, trusted, and rule condition values) are compared as
 * sorted sets and shown whole. Other arrays are compared by position.
 * The top-level "generation" and "manifestDigest" are ignored: only
 * resources are compared.
 *
 * Returns 0, or -1 with out->error set when an input is not an exported
 * configuration (not an object, wrong apiVersion, no "resources" object,
 * a kind or resource that is not an object) or memory runs out; out is then
 * empty. */
int rc_diff_compute(const json_t *running, const json_t *desired, struct rc_diff *out);

/* True when the diff has at least one change (plan's exit code 2). */
bool rc_diff_has_changes(const struct rc_diff *d);

/* Text for an action: "create", "update", "delete". */
const char *rc_diff_action_name(enum rc_diff_action a);

#endif
