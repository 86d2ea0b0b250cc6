/* Snapshots: the immutable, refcounted form of a model the workers serve
 * (listeners, server groups, SSL_CTXs; types in snapshot-t.h). Built on
 * the agent thread, published to the workers, freed with its last
 * reference. */
#ifndef ALBD_PROXY_SNAPSHOT_H
#define ALBD_PROXY_SNAPSHOT_H

#include "proxy/snapshot-t.h"

/* Builds a snapshot of model m for the workers of registry reg (backend
 * entries and scheduler states are looked up there by identity: a server
 * or group the running snapshot also has keeps its state). prev (may be NULL) is
 * the running snapshot: SSL_CTXs whose inputs are unchanged are reused from
 * it, or else from spare (may be NULL): a snapshot built but not published.
 * keys is the session-ticket key ring shared by every SSL_CTX (so that
 * tickets survive swaps). Returns 0 and a snapshot with one reference in *out, or -1 with a
 * message (never secret) in err. Call on the agent thread. */
struct px_tls_keys;
int px_snapshot_build(struct rc_model *m, const struct px_snapshot *prev,
                      const struct px_snapshot *spare, struct px_registry *reg, uint64_t generation,
                      struct px_tls_keys *keys, struct px_snapshot **out, char *err, size_t errlen,
                      const char **failed_listener);

/* How many snapshots exist (published, or still referenced by connections). */
int px_snapshot_alive_count(void);

/* Reference counting, safe from any thread. unref(NULL) is a no-op. */
struct px_snapshot *px_snapshot_ref(struct px_snapshot *s);
void px_snapshot_unref(struct px_snapshot *s);

/* The bind with this key, or NULL. */
const struct px_bind *px_snapshot_find_bind(const struct px_snapshot *s, const char *key);

/* The group of s named name, or NULL (s may be NULL). A snapshot's groups
 * are its model's, sorted by name: a binary search, then — for a group
 * built otherwise (tests) or absent — a scan, so that a miss costs what
 * the scan costs and never a wrong answer. */
const struct px_group *px_snapshot_group(const struct px_snapshot *s, const char *name);

#endif
