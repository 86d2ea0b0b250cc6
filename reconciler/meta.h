/* A resource's envelope: its struct rc_meta (kind, name, location, labels)
 * and the digest that tells whether it changed. A leaf of the build (calls
 * field.c only). Internal to the reconciler. */
#ifndef ALBD_RECONCILER_META_H
#define ALBD_RECONCILER_META_H

#include <stddef.h>

#include "reconciler/doc.h"
#include "reconciler/model-t.h"

struct rc_load;

/* Fills meta from d's envelope (kind, name, loc, labels; strings in
 * L->arena) and digest from the canonical spec followed by extra and
 * extra2 (each may be NULL/0). Returns 0 or -1 when out of memory. */
int rc_fill_meta(struct rc_load *L, struct rc_doc *d, struct rc_meta *meta, const void *extra,
                 size_t extra_len, const void *extra2, size_t extra2_len);

/* Hex SHA-256 of data into out[65] (NUL-terminated). */
void rc_sha256_hex(const void *data, size_t len, char out[65]);

#endif
