/* What /status remembers about each resource across reloads: its
 * observedGeneration (counted up whenever the digest that stands for its
 * spec changes) and, per condition type, the status last seen and since
 * when (the condition's lastTransitionTime).
 *
 * One small record per resource (~160 bytes with its "Kind/name" key) in
 * an open-addressing table: 10,000 certificates cost about 1.7 MiB. The
 * JSON tree this replaces held 23 MiB for them (about 65 jansson
 * allocations per resource), a third of a 10,000-certificate albd's
 * memory, and it was rebuilt on every reload.
 *
 * Used by the agent thread only. */
#ifndef ALBD_AGENT_STATUS_TRACK_H
#define ALBD_AGENT_STATUS_TRACK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* The condition types /status reports. */
enum ag_cond_type {
    AG_COND_ACCEPTED,
    AG_COND_PROGRAMMED,
    AG_COND_READY,
    AG_COND_DEGRADED, /* server groups, stamped when /status is read */
    AG_COND_N
};

struct ag_track;
struct ag_track_entry;

/* The type named type ("Accepted", ...), or AG_COND_N for another name. */
enum ag_cond_type ag_cond_type_of(const char *type);

/* An empty table with room for n records without growing; NULL when out
 * of memory. */
struct ag_track *ag_track_new(size_t n);

/* Frees t and the records it still holds; NULL is allowed. */
void ag_track_free(struct ag_track *t);

/* The number of records in t. */
size_t ag_track_count(const struct ag_track *t);

/* The record of key ("Kind/name") in t (NULL allowed), or NULL. */
struct ag_track_entry *ag_track_get(const struct ag_track *t, const char *key);

/* The record of key in t after this reconcile, whose resource's digest
 * (64 hex digits) is digest: t's own when t has one already (a key listed
 * twice), else from's (moved out of from, which may be NULL: from then no
 * longer has it), else a new one at generation 1 with no condition. The
 * generation goes up by one when the digest differs from the one the
 * record holds. NULL when out of memory (t and from unchanged). */
struct ag_track_entry *ag_track_carry(struct ag_track *t, struct ag_track *from, const char *key,
                                      const char *digest);

/* e's generation (1 for a resource first seen). */
uint64_t ag_track_generation(const struct ag_track_entry *e);

/* Records that condition type of e has status ("True", "False",
 * "Unknown") now: a status new to e or different from the last one
 * starts at now; the same status keeps its time. Returns since when the
 * condition has had that status (its lastTransitionTime); now for
 * AG_COND_N. */
time_t ag_track_condition(struct ag_track_entry *e, enum ag_cond_type type, const char *status,
                          time_t now);

#endif
