/* JSON Schema validation of manifest documents. The schemas are the files
 * in schemas/, compiled into the binary (cmake/embed_schemas.cmake). */
#ifndef ALBD_RECONCILER_SCHEMA_H
#define ALBD_RECONCILER_SCHEMA_H

#include <stddef.h>

/* One embedded schema: name is the file's base name ("Listener"). The table
 * rc_schema_texts ends with a {NULL, NULL} entry. */
struct rc_schema_text {
    const char *name;
    const char *json;
};
extern const struct rc_schema_text rc_schema_texts[];

#endif
