/* Loaded manifest documents and the YAML node helpers that the schema
 * validator and the model builder share. Internal to the reconciler. */
#ifndef ALBD_RECONCILER_DOC_H
#define ALBD_RECONCILER_DOC_H

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

#include "reconciler/err-t.h"

/* One YAML document of one manifest file. */
struct rc_doc {
    const char *file; /* the path as walked (owned by the load) */
    const char *dir;  /* absolute folder of the file: relative paths start here */
    yaml_document_t y;
    const char *kind; /* a known kind (static string) or NULL */
    const char *name; /* metadata.name when it is a string, else NULL */
    bool schema_ok;   /* no schema error: the model builder may trust its shape */
};

/* YAML 1.2 core-schema types of a node; quoted scalars are always strings. */
enum rc_ytype { RC_Y_NULL, RC_Y_BOOL, RC_Y_INT, RC_Y_FLOAT, RC_Y_STR, RC_Y_MAP, RC_Y_SEQ };

struct rc_yval {
    enum rc_ytype type;
    bool b;      /* RC_Y_BOOL */
    long long i; /* RC_Y_INT (saturated when out of range) */
    double d;    /* RC_Y_INT and RC_Y_FLOAT */
};

/* Classifies node n (never NULL). */
void rc_y_classify(const yaml_node_t *n, struct rc_yval *out);

/* The JSON Schema name of a node's type ("integer", "string", ...). */
const char *rc_y_type_name(const yaml_node_t *n);

/* The text of a scalar node, NULL for other nodes. */
const char *rc_y_str(const yaml_node_t *n);

/* The value of key in mapping map, or NULL (also when map is not a mapping). */
yaml_node_t *rc_y_get(yaml_document_t *d, const yaml_node_t *map, const char *key);

/* The key node of key in mapping map (to locate "unknown field" errors). */
yaml_node_t *rc_y_get_key(yaml_document_t *d, const yaml_node_t *map, const char *key);

/* The node's start as a 1-based location in doc's file. */
struct rc_loc rc_y_loc(const struct rc_doc *doc, const yaml_node_t *n);

/* A canonical text of the subtree at n: mapping keys sorted, scalars by their
 * resolved type, so equal content gives equal bytes whatever the layout.
 * Returns a malloc'd NUL-terminated string (length in *len) or NULL when out
 * of memory. */
char *rc_y_canonical(yaml_document_t *d, const yaml_node_t *n, size_t *len);

#endif
