/* Label selectors, as kubectl writes them (the reference's tags are our
 * metadata.labels): `albd plan -l SELECTOR` and the admin endpoint's
 * `/status?l=SELECTOR` and `/config?l=SELECTOR` keep only the resources
 * whose labels match.
 *
 * Grammar (whitespace allowed around every token):
 *
 *   selector    := "" | requirement ("," requirement)*      comma = AND
 *   requirement := key                       label key present
 *                | "!" key                   label key absent
 *                | key ("=" | "==") value    present and equal
 *                | key "!=" value            absent, or present and different
 *                | key "in" "(" values ")"   present and one of values
 *                | key "notin" "(" values ")"  absent, or none of values
 *   values      := value ("," value)*
 *
 * A key or value is a run of characters other than whitespace and
 * `,=!()`; a value after "=", "==" or "!=" may be empty (it then matches an
 * empty label value). Labels whose key or value holds one of those
 * characters cannot be selected. The empty selector matches everything.
 * Pure: no I/O, no globals; thread-safe. */
#ifndef ALBD_RECONCILER_SELECTOR_H
#define ALBD_RECONCILER_SELECTOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "reconciler/model-t.h"

/* Longest selector text accepted, bytes. */
#define RC_SELECTOR_MAX 4096

struct rc_selector;

/* Returns the value of label key in the label set ctx, or NULL when it has
 * no such label. */
typedef const char *(*rc_label_get_fn)(const void *ctx, const char *key);

/* Parses text (NUL-terminated, at most RC_SELECTOR_MAX bytes). Returns 0
 * and a new selector in *out (rc_selector_free()), or -1 with *out NULL and
 * a message in err saying what is wrong and at which 1-based column
 * ("column 5: expected a value list \"(...)\" after \"in\""), or "out of
 * memory". */
int rc_selector_parse(const char *text, struct rc_selector **out, char *err, size_t errlen);

/* Frees s (NULL is fine). */
void rc_selector_free(struct rc_selector *s);

/* The number of requirements in s (0: matches everything). */
size_t rc_selector_size(const struct rc_selector *s);

/* True when the label set reached through get(ctx, key) satisfies every
 * requirement of s. */
bool rc_selector_matches(const struct rc_selector *s, rc_label_get_fn get, const void *ctx);

/* rc_selector_matches() over a JSON object of string labels ({"team":
 * "web"}); NULL or a non-object is the empty label set; a non-string
 * value counts as absent. */
bool rc_selector_matches_json(const struct rc_selector *s, const json_t *labels);

/* rc_selector_matches() over a model resource's labels. */
bool rc_selector_matches_meta(const struct rc_selector *s, const struct rc_meta *meta);

/* True when resource kind/name of the export ex (rc_export_model()
 * shape) exists there and its labels match s. */
bool rc_selector_selects(const struct rc_selector *s, const json_t *ex, const char *kind,
                         const char *name);

/* Removes from exports a and b (rc_export_model() shape; either may be
 * NULL) every resource that matches s in neither of them: a resource kept
 * is kept in both, so that a plan over the filtered pair still shows a
 * change of labels into or out of the selection as an update. Kind keys
 * stay, possibly empty. Returns 0, or -1 when out of memory (a and b are
 * then partly filtered). */
int rc_selector_filter_exports(const struct rc_selector *s, json_t *a, json_t *b);

#endif
