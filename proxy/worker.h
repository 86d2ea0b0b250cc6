/* Worker threads: one event loop each, serving the newest snapshot's
 * listeners (types in worker-t.h). Started and stopped by the runtime
 * (proxy/runtime.c). */
#ifndef ALBD_PROXY_WORKER_H
#define ALBD_PROXY_WORKER_H

#include "proxy/worker-t.h"

/* Initialises worker w (id, loop, wake handle, pools) and starts its thread.
 * Returns 0 or -errno. */
int px_worker_start(struct px_worker *w, struct px_runtime *rt, int id);

/* Wakes w to pick up the newest snapshot or to begin stopping. Any thread. */
void px_worker_wake(struct px_worker *w);

/* Moves w to the newest published snapshot now (it is also woken for it).
 * w's loop only. */
void px_worker_pick_up(struct px_worker *w);

/* Joins w's thread (after a stop) and frees its loop resources. */
void px_worker_join(struct px_worker *w);

#endif
