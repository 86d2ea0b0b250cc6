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

#include "common/ptrset.h"
#include "reconciler/doc.h"
#include "reconciler/model-t.h"

struct rc_load;
struct rc_arena;
struct rc_sources;

/* Whether d's resource may be copied from the running model at all (it has
 * a previous source with a resource, this load has a running model, and
 * the arena the resource lives in is not being compacted: L->plan). */
bool rc_reuse_from(struct rc_load *L, const struct rc_doc *d);

/* Compaction. A copy keeps the data arena it was built in alive (its
 * origin), and an arena is freed only when nothing in it is used: a load
 * that built one small certificate next to a large listener keeps the
 * listener's old bytes for as long as that certificate is unchanged, and a
 * stream of such changes (one certificate renewed at a time) would grow
 * memory without bound. So each load weighs, for every origin the running
 * model's resources point into, the bytes they use there (rc_source.bytes)
 * against the arena's footprint; when the unused bytes of all of them
 * exceed RC_COMPACT_MIN_WASTE and a quarter of the used ones, resources
 * living in origins less than half used are built again (into this load's
 * arena, from their documents and the bytes the running model read) rather
 * than copied, and those origins are freed with the running model. The
 * unused memory stays below a quarter of the used (plus the minimum), and
 * a load builds again only what sits in sparse origins: each byte is
 * rebuilt at most once per time the waste grew by as much. */
#define RC_COMPACT_MIN_WASTE ((size_t)1 << 20)

struct rc_reuse_plan {
    struct rc_arena **evacuate; /* sorted by address; malloc'd */
    size_t n_evacuate;
    /* What the running model's origins take and what of that is used. */
    size_t footprint, used;
};

/* Fills plan from the running model's sources (may be NULL: nothing to
 * compact). Returns 0, or -1 when out of memory. */
int rc_reuse_plan(const struct rc_sources *prev, struct rc_reuse_plan *plan);
void rc_reuse_plan_cleanup(struct rc_reuse_plan *plan);

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

/* What rc_copy_check checks against: the new model m and the running one
 * prev (may be NULL). Certificates are not in an array of structs
 * (model-t.h): their addresses are gathered into a set for each model the
 * first time a check needs them, once for all the copies of a load. */
struct rc_copy_ctx {
    const struct rc_model *m, *prev;
    struct cm_ptrset certs, prev_certs; /* empty until needed */
    bool built, failed;                 /* failed: out of memory building them */
};
void rc_copy_ctx_init(struct rc_copy_ctx *x, const struct rc_model *m, const struct rc_model *prev);
void rc_copy_ctx_cleanup(struct rc_copy_ctx *x);

/* Whether c is one of x->m's certificates (the struct itself: shared with
 * prev, or built or copied by this load). False when out of memory. */
bool rc_copy_ctx_has_cert(struct rc_copy_ctx *x, const struct rc_certificate *c);

/* Checks a copied resource (obj, size bytes) against its table of reference
 * fields (n entries): every listed pointer (or, for an array, each of its
 * elements) is NULL or points to an element of x->m of its target (for
 * certificates: is one of x->m's); and no other pointer-aligned word of obj
 * points into any resource array of x->prev or of x->m, nor at a
 * certificate of either. The second part is what catches a reference
 * field that was added to the struct but not to its table (and so was
 * never re-pointed): it would still point into prev's arrays. Returns 0,
 * or -1 with the offending field's name or offset in why (why_size bytes;
 * "out of memory" when the sets could not be built). */
int rc_copy_check(const void *obj, size_t size, const struct rc_ref_field *table, size_t n,
                  struct rc_copy_ctx *x, char *why, size_t why_size);

#endif
