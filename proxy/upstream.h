/* Backend connections: connect with a timeout, reuse from the worker's pool,
 * read and write with backpressure, release back to the pool. Call only on
 * the owning worker's loop. */
#ifndef ALBD_PROXY_UPSTREAM_H
#define ALBD_PROXY_UPSTREAM_H

#include "proxy/snapshot-t.h"
#include "proxy/upstream-t.h"

/* Closes every idle pooled connection of w and makes later releases close
 * instead of pooling (the worker is stopping). */
void px_upstream_close_idle(struct px_worker *w);

/* Applies the backends' drain marks (proxy/drain.c) to w's connections:
 * closes the idle ones of every draining backend and arms a timer on each
 * active one that has a deadline (at which its owner sees UV_ECANCELED
 * through on_read). Worker w's loop, after it picked up a snapshot. */
void px_upstream_drain(struct px_worker *w);

/* Gets a connection to s for owner: an idle pooled one when allow_pooled
 * and one exists (*reused = true, usable at once; on_connect is not
 * called), else a new one (on_connect reports the outcome). Returns 0, or
 * a negative errno when no attempt could be started. */
int px_upstream_acquire(struct px_worker *w, const struct px_server *s, bool allow_pooled,
                        const struct px_upstream_cbs *cbs, void *owner, struct px_upstream **out,
                        bool *reused);

/* Queues bytes to the backend (copied). 0 or a negative uv error. */
int px_upstream_write(struct px_upstream *u, const uv_buf_t *bufs, unsigned n);

/* True while queued output is above the high-water mark (see on_writable). */
bool px_upstream_congested(const struct px_upstream *u);

/* Pauses / resumes delivery of backend bytes (client backpressure). */
void px_upstream_read(struct px_upstream *u, bool on);

/* Hands an active connection to another owner (an HTTP exchange that
 * became a tunnel): later callbacks go to cbs/owner. */
void px_upstream_set_owner(struct px_upstream *u, const struct px_upstream_cbs *cbs, void *owner);

/* Half-close toward the backend once the queued output is written
 * (tunnels: the client finished sending). Reading goes on. 0 or a negative
 * uv error; a failure of the shutdown itself comes to on_read as n < 0. */
int px_upstream_shutdown(struct px_upstream *u);

/* Gives u back: to its pool when keep (the response was complete and the
 * backend keeps the connection open), else closes it. The owner's
 * callbacks are never called again. */
void px_upstream_release(struct px_upstream *u, bool keep);

#endif
