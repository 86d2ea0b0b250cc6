/* Reading the fields of one schema-valid manifest document, and reporting
 * an error at one of its nodes: what every resource builder (instance.c,
 * group.c, listener.c, cert.c, policy.c, unsupported.c) reads documents
 * with. A leaf of the build: it calls nothing but the YAML and error
 * modules. Internal to the reconciler. */
#ifndef ALBD_RECONCILER_FIELD_H
#define ALBD_RECONCILER_FIELD_H

#include <stdbool.h>
#include <stdint.h>
#include <yaml.h>

#include "reconciler/doc.h"
#include "reconciler/err.h"

struct rc_load;

/* The node at a dotted path below n ("spec.tls.policy"), or NULL. */
yaml_node_t *rc_at(struct rc_doc *d, yaml_node_t *n, const char *dotted);

/* Appends an error at node n (or the document root when n is NULL) to
 * L->errs, located at n and naming d's kind and name. */
void rc_doc_err(struct rc_load *L, struct rc_doc *d, enum rc_severity sev, const yaml_node_t *n,
                const char *path, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Typed reads of the field at the dotted path below n; def when the field
 * is absent or not of that type (the schema checked the types). */
bool rc_field_bool(struct rc_doc *d, yaml_node_t *n, const char *path, bool def);
int rc_field_int(struct rc_doc *d, yaml_node_t *n, const char *path, int def);
/* For sizes beyond int (schema-bounded, so a double holds them exactly). */
uint64_t rc_field_u64(struct rc_doc *d, yaml_node_t *n, const char *path, uint64_t def);
/* The scalar's text (points into d's YAML document), or def. */
const char *rc_field_str(struct rc_doc *d, yaml_node_t *n, const char *path, const char *def);

/* Whether s is an IPv4 or IPv6 address literal. */
bool rc_is_ip(const char *s);

#endif
