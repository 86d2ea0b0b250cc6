/* Copies of unchanged resources: whether a document may be copied from the
 * running model instead of built, where the copy of a running resource
 * lives in the new model, and the check that a copy points into the new
 * model only. A leaf of the build. Internal to the reconciler.
 *
 * A document byte-identical to the source of a resource of the running
 * model (d->prev_src) builds the same resource again when what else it
 * depends on is the same, so it is copied instead (the struct; its strings
 * and arrays stay in the arena they were built in, which the new model
 * holds). That is what makes a reload cost grow with the change: with
 * 10,000 certificates and 10,000 groups, building them again is most of a
 * load. Only kinds whose build depends on the text alone, or on what is
 * checked by their reuse function, are copied; the prev resource was built
 * without an error (a model holds no failed build) and the only warning a
 * build can give (expiry) is re-checked at L->now. A resource that refers
 * to others (a listener) is copied only when what it refers to was copied
 * too, its references re-pointed into the new model's arrays and then
 * checked by rc_copy_check. */
#ifndef ALBD_RECONCILER_REUSE_H
#define ALBD_RECONCILER_REUSE_H

#include <stdbool.h>
#include <stddef.h>

#include "reconciler/doc.h"
#include "reconciler/model-t.h"

struct rc_load;

/* Whether d's resource may be copied from the running model at all (it has
 * a previous source with a resource, and this load has a running model). */
bool rc_reuse_from(struct rc_load *L, const struct rc_doc *d);

/* The element of this model's array (base, n elements of size, sorted by
 * name when sorted) that is a copy of old, an element of prev's array
 * (pbase, pn): at the same index when the arrays line up, else found by
 * name. NULL when there is none, or when it was built again: a copy keeps
 * the very name pointer of what it copies, a build never has it. Every
 * element type begins with its struct rc_meta. */
const void *rc_copy_of(const void *old, const void *pbase, size_t pn, const void *base, size_t n,
                       size_t size, bool sorted);

/* The model array a reference field points into. */
enum rc_ref_target {
    RC_REF_INSTANCE,
    RC_REF_CERTIFICATE,
    RC_REF_POLICY,
    RC_REF_GROUP,
};

/* One reference field of a resource struct that may be copied. */
struct rc_ref_field {
    const char *name;    /* the field, for the message: "tls.certificate" */
    size_t offset;       /* offsetof() the pointer */
    size_t count_offset; /* RC_REF_ONE: a single pointer; else offsetof() the
                          * size_t count of the array of pointers at offset */
    enum rc_ref_target target;
};
#define RC_REF_ONE ((size_t)-1)

/* Checks a copied resource (obj, size bytes) against its table of reference
 * fields (n entries): every listed pointer (or, for an array, each of its
 * elements) is NULL or points to an element of m's array of its target;
 * and no other pointer-aligned word of obj points into any resource array
 * of prev or of m. The second part is what catches a reference field that
 * was added to the struct but not to its table (and so was never
 * re-pointed): it would still point into prev's arrays. Returns 0, or -1
 * with the offending field's name or offset in why (why_size bytes). */
int rc_copy_check(const void *obj, size_t size, const struct rc_ref_field *table, size_t n,
                  const struct rc_model *m, const struct rc_model *prev, char *why,
                  size_t why_size);

#endif
