/* Choosing a backend for a request and failing over between servers, for
 * every protocol handler (see exchange-t.h). Call only on the owning
 * worker's loop. */
#ifndef ALBD_PROXY_EXCHANGE_H
#define ALBD_PROXY_EXCHANGE_H

#include "proxy/exchange-t.h"
#include "proxy/snapshot-t.h"

/* Prepares x for its owner (once; x may be zeroed memory). tag is a static
 * string. */
void px_exchange_init(struct px_exchange *x, struct px_worker *w, const char *tag,
                      const struct px_exchange_cbs *cbs, void *owner);

/* The group that serves a request on lis. Forwarding rules will replace
 * the default action here. */
struct px_group *px_exchange_choose_group(const struct px_listener *lis);

/* The next server of x->group to try (not tried yet for this request, at
 * most one attempt per server, whatever the group's size), or NULL when
 * none is left: the scheduler's pick first (proxy/lb.c, which also skips
 * backends a health check marked down), then the failover order. */
struct px_server *px_exchange_choose_server(struct px_exchange *x);

/* Starts failover state for a new request on lis: chooses its group
 * (x->group), forgets earlier attempts. Does not connect. */
void px_exchange_begin(struct px_exchange *x, const struct px_listener *lis);

/* Tries the next server: reuses a pooled connection (cbs->ready at once)
 * or connects (cbs->ready later); when no server is left calls cbs->fail
 * with 503, 504 or 502. */
void px_exchange_connect(struct px_exchange *x);

/* The backend connection died before any response byte (err: a negative
 * uv error), after the request head may have gone out. An idempotent
 * request (x->idempotent) whose body did not start (x->body_sent) is
 * retried: a pooled connection once fresh on the same server, else on the
 * next server. Any other request gets cbs->fail(502): a POST must not
 * reach a second server (a failed connect, which sent nothing, moves on
 * for every method without coming here). */
void px_exchange_lost(struct px_exchange *x, int err);

/* Gives the backend connection back (to its pool when keep), if any. */
void px_exchange_release(struct px_exchange *x, bool keep);

#endif
