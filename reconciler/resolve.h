/* The documents of each kind in one build pass, and name resolution of the
 * references between resources: the unknown-name and invalid-target errors,
 * and the references a containment pass records (build.h, rc_missing).
 * A leaf of the build (calls field.c only). Internal to the reconciler. */
#ifndef ALBD_RECONCILER_RESOLVE_H
#define ALBD_RECONCILER_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reconciler/doc.h"

struct rc_rule;

struct rc_load;

/* The documents of one kind in this pass. */
struct rc_kind_docs {
    struct rc_doc **v; /* the schema-valid, uniquely named documents, by name */
    size_t n;
    /* Names of documents of this kind that are invalid: a reference to one
     * of them is not reported again as unknown. */
    const char **broken;
    size_t n_broken;
    /* A hash index of v by name (positions + 1, 0: empty slot; a power of
     * two of slots), built by rc_kind_collect for many documents: a
     * listener naming 10,000 certificates finds each in one probe instead
     * of a binary search. NULL: rc_kind_find searches v. */
    uint32_t *index;
    size_t index_cap;
};

/* The kinds other resources refer to, collected once per pass by build.c.
 * The i-th document of a kind builds the i-th element of the model's
 * array of that kind. */
struct rc_refs {
    struct rc_kind_docs instances, certs, policies, groups;
};

/* Fills out with the documents of kind among L->dv (malloc'd arrays: free
 * them with rc_kind_docs_cleanup, also after a failure), reporting
 * duplicate names (the first written one is the definition). Returns 0 or
 * -1 when out of memory. */
int rc_kind_collect(struct rc_load *L, const char *kind, struct rc_kind_docs *out);
/* Frees what rc_kind_collect allocated in k (malloc'd scratch of one build;
 * it may be called on a zeroed k). */
void rc_kind_docs_cleanup(struct rc_kind_docs *k);

/* Whether a document named name of this kind is invalid (this pass's, or
 * one with no last good version: L->broken). */
bool rc_kind_broken(const struct rc_kind_docs *k, const char *name);

/* The index of the document named name in k, or -1. */
long rc_kind_find(const struct rc_kind_docs *k, const char *name);

/* Resolves the reference at node v (a name; path is its manifest path) to
 * an index of k, or reports it (unknown name; in a containment pass also
 * an invalid target, recorded in L->missing). Returns the index or -1. */
long rc_resolve(struct rc_load *L, struct rc_doc *d, yaml_node_t *v, const char *path,
                const char *kind, const struct rc_kind_docs *k);

/* Reports a reference from d (at node v) to the kind/name that did not
 * resolve in a containment pass, and records it in L->missing (L->oom when
 * that fails). broken: the target exists but is invalid. */
void rc_missing_ref(struct rc_load *L, struct rc_doc *d, const yaml_node_t *v, const char *path,
                    const char *kind, const char *name, bool broken);

/* Records that a containment pass leaves rule index (ru) of listener d out
 * because it forwards to the invalid ServerGroup group (L->oom when that
 * fails). */
void rc_contain_rule(struct rc_load *L, struct rc_doc *d, const struct rc_rule *ru, size_t index,
                     const char *group);

#endif
