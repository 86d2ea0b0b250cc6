/* The backend registry (see backend-t.h). Lookups and the registry's life
 * run on the agent thread; references may be dropped on any thread. */
#ifndef ALBD_PROXY_BACKEND_H
#define ALBD_PROXY_BACKEND_H

#include <stdbool.h>

#include "proxy/backend-t.h"

/* A registry for n_workers workers (per-worker pools). NULL when out of
 * memory. */
struct px_registry *px_registry_new(int n_workers);

/* Frees r. Every entry must be gone (all snapshots and upstream
 * connections released); returns -EBUSY (and frees nothing) otherwise. */
int px_registry_free(struct px_registry *r);

/* How many backend entries are alive (tests, metrics). */
size_t px_registry_backend_count(struct px_registry *r);

/* Fills id from an IP literal and a port; 0 or -EINVAL. */
int px_backend_id_init(struct px_backend_id *id, const char *ip, int port);

/* The entry for id, with one more reference for the caller: the existing
 * one when an entry with this identity lives (counts, pools and health
 * kept), else a new one. NULL when out of memory. Any thread. */
struct px_backend *px_backend_get(struct px_registry *r, const struct px_backend_id *id);

/* Reference counting for entries the caller already holds; unref frees the
 * entry (and removes it from its registry) when the last reference drops.
 * Any thread. unref(NULL) is a no-op. */
struct px_backend *px_backend_ref(struct px_backend *b);
void px_backend_unref(struct px_backend *b);

/* Whether server choice may send to b: false only for a DOWN verdict. */
static inline bool px_backend_usable(const struct px_backend *b)
{
    return atomic_load_explicit(&b->health, memory_order_relaxed) != PX_HEALTH_DOWN;
}

/* Calls fn(b, arg) for every live entry, with the registry's lock held: fn
 * must not take or drop registry references (closing a connection whose
 * memory is freed later in a close callback is fine). */
void px_registry_each(struct px_registry *r, void (*fn)(struct px_backend *b, void *arg),
                      void *arg);

#endif
