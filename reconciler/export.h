/* The model as canonical JSON: what the admin endpoint's /config serves and
 * what `albd plan --state FILE | --against URL` reads back and diffs.
 *
 * Shape (field names as MANIFESTS.md, every default filled in, references
 * by metadata.name, system TLS policies omitted because they are implied):
 *
 *   {"apiVersion": "albd/v1", "generation": 0, "manifestDigest": "<hex>",
 *    "resources": {
 *      "Instance":    {"<name>": {"labels": {...}, "annotations": {...},
 *                                   "namespace": "<ns>", "spec": {...}}},
 *      "Certificate": {...}, "TLSPolicy": {...}, "ServerGroup": {...},
 *      "Listener":    {...}}}
 *
 * A Certificate's spec holds only public facts (type, source, subject,
 * issuer, dnsNames, notBefore/notAfter in RFC 3339 UTC, sha256Fingerprint,
 * chainSha256, keyType, keyBits): never a private key, nor anything derived
 * from one; an inline certificate is shown by fingerprint, not by its PEM.
 *
 * Every kind key is present, even when it holds no resource, and every
 * resource has "labels" (possibly {}) so that two exports compare field by
 * field; "annotations" (metadata.annotations) and "namespace"
 * (metadata.namespace) appear only when the manifest sets them (a non-empty
 * map, a string), so that the /config of an albd that predates them
 * compares equal to the same manifests. Dump with JSON_SORT_KEYS for byte-stable output. */
#ifndef ALBD_RECONCILER_EXPORT_H
#define ALBD_RECONCILER_EXPORT_H

#include <jansson.h>

#include "reconciler/model-t.h"

/* The apiVersion written into, and expected from, an exported document. */
#define RC_EXPORT_API_VERSION "albd/v1"

/* Builds the canonical JSON of m. Returns a new reference (caller
 * json_decref()s it), or NULL when out of memory. "generation" is 0: the
 * model does not know its generation, so the agent overwrites it with
 * json_object_set_new() before serving /config. m is only read; safe to call
 * from any thread holding a reference to m. */
json_t *rc_export_model(const struct rc_model *m);

/* rc_export_model() of a (*ea; NULL when a is NULL) and of b (*eb), less
 * the certificates and server groups that export the same in both (same
 * name, digest, labels, annotations, namespace; for certificates also
 * files, pending state, root) and the listeners one model copied from the
 * other (reuse.h): rc_diff_compute() of the two finds the same
 * changes as of the whole exports, at the cost of the resources that
 * changed (one renewed certificate among 10,000, or one weight among
 * 10,000 groups, does not export 20,000). For change events, not for /config. Returns 0 (new
 * references, caller json_decref()s them), or -1 when out of memory (both
 * NULL). */
int rc_export_pair(const struct rc_model *a, const struct rc_model *b, json_t **ea, json_t **eb);

/* rc_export_model() dumped as indented JSON with sorted keys and a trailing
 * newline: the bytes /config serves. Returns a malloc'd string (caller
 * free()s it) or NULL when out of memory. */
char *rc_export_model_text(const struct rc_model *m);

#endif
