/* JSON Schema validation of manifest documents. The schemas are the files
 * in schemas/, compiled into the binary (cmake/embed_schemas.cmake).
 *
 * The validator runs over the libyaml node tree (so every error has the
 * node's line and column) and supports the keywords the schemas use:
 * type, enum, const, minimum, maximum, exclusiveMinimum, exclusiveMaximum,
 * minLength, maxLength, pattern (POSIX ERE), properties,
 * additionalProperties (bool or schema), propertyNames, required,
 * minProperties, maxProperties, items, minItems, maxItems, uniqueItems,
 * allOf, anyOf, oneOf, $ref ("#/$defs/x" and "Other.json#/$defs/x") and
 * the boolean schemas true/false. Annotations ($schema, $id, title,
 * description, default, examples, ...) are ignored. */
#ifndef ALBD_RECONCILER_SCHEMA_H
#define ALBD_RECONCILER_SCHEMA_H

#include <jansson.h>
#include <stddef.h>
#include <yaml.h>

#include "reconciler/err-t.h"

struct rc_doc;

/* One embedded schema: name is the file's base name ("Listener"). The table
 * rc_schema_texts ends with a {NULL, NULL} entry. */
struct rc_schema_text {
    const char *name;
    const char *json;
};
extern const struct rc_schema_text rc_schema_texts[];

/* The manifest kinds, NULL-terminated; each has schemas/<kind>.json. */
extern const char *const rc_kinds[];

/* The parsed schema named name ("Listener", "Document"), or NULL when there
 * is none or the embedded texts do not parse. Parsed once on first use,
 * thread-safe; the result lives for the whole process (do not decref). */
const json_t *rc_schema_get(const char *name);

/* Validates doc's root node: against schemas/<kind>.json when the document
 * names a known kind, else against schemas/Document.json (the envelope).
 * Sets doc->kind, doc->name and doc->schema_ok. Returns the number of
 * errors appended to errs. */
size_t rc_schema_validate_doc(struct rc_doc *doc, struct rc_errs *errs);

/* Validates node against schema; "$ref"s without a file part resolve inside
 * root. path is the node's field path ("" for a document root). kind and
 * name (may be NULL) are copied into each error. Returns the number of
 * errors appended. */
size_t rc_schema_validate(const json_t *root, const json_t *schema, const struct rc_doc *doc,
                          yaml_node_t *node, const char *path, const char *kind, const char *name,
                          struct rc_errs *errs);

#endif
