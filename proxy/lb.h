/* Server choice within a group: the schedulers (smooth weighted round
 * robin with slow start, weighted least connections, consistent hashing
 * on the client address or a query parameter), sticky sessions' choice of
 * server, and the failover order. Reads the snapshot's weights and the
 * backend registry's state; its own per-group state lives in the registry
 * (struct px_lb_state), keyed by the group's identity, scheduler,
 * membership and weights, so a reload that leaves a group alone keeps its
 * rotation and one that changes it starts afresh. Picks run on a worker,
 * lock-free: each worker writes only its own row of the rotation; the
 * hash ring and cookie values are built once per state and then only
 * read. */
#ifndef ALBD_PROXY_LB_H
#define ALBD_PROXY_LB_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/backend-t.h"
#include "proxy/lb-t.h"
#include "proxy/req-t.h"
#include "proxy/snapshot-t.h"

/* Points on the consistent-hash ring of a server of weight 100 (fewer in
 * proportion for a lower weight, at least one). */
#define PX_LB_RING_POINTS 160

/* The scheduler state for group g (g->model, g->servers filled in), with
 * one reference for the caller: the existing one when a group with the same
 * name, scheduler, stickiness, servers and weights has one, else a new one
 * (counters zero; the hash ring for Sch and Uch; the sticky cookie values).
 * A new state is where slow start begins for a server new to the group
 * (or whose weight was 0) when the group has slowStart: see
 * px_lb_slow_start. NULL when out of memory. Agent thread (takes
 * r->lock). */
struct px_lb_state *px_lb_state_get(struct px_registry *r, const struct px_group *g);

/* Drops a reference; the last one frees the state. Any thread;
 * NULL is a no-op. */
/* Another reference to st, which the caller already holds one of (a
 * snapshot reusing its predecessor's group, proxy/snapshot.c). */
struct px_lb_state *px_lb_state_ref(struct px_lb_state *st);
void px_lb_state_unref(struct px_lb_state *st);

/* The first server for a request on worker `worker` (< r->n_workers), key
 * (NULL: none) what the request brings: its sticky server when that one
 * is usable and of weight > 0; else, by g's scheduler, over the servers
 * of weight > 0 whose backend is usable (px_backend_usable): Wrr smooth
 * weighted round robin (weights ramped by slow start), Wlc the fewest
 * in-flight requests per weight over every worker (ties by Wrr), Sch and
 * Uch the first usable server clockwise from key->hash on the ring (Wrr
 * when the key has no hash). When no server is usable and the group fails
 * open, the same over every server of weight > 0. NULL when no server is
 * eligible. Call only from worker `worker`. */
struct px_server *px_lb_pick(const struct px_group *g, int worker, const struct px_lb_key *key);

/* Failover: the next server after `first` (the index px_lb_pick chose) in
 * the group's order, skipping weight 0 and unusable backends. *cursor
 * counts the steps taken (start at 0); returns NULL once every server was
 * offered, so a request fails over across the whole group, whatever its
 * size, and tries each server at most once. */
struct px_server *px_lb_next(const struct px_group *g, size_t first, size_t *cursor);

/* Fills key for request r to group g (NULL: an empty key): the hash of
 * r->client_addr (Sch) or of the value of the query parameter
 * uchQueryParameter (Uch; the first occurrence, as sent, not decoded),
 * and the server r's sticky cookie names (stickySession). Worker thread. */
void px_lb_key_from_req(struct px_lb_key *key, const struct px_group *g, const struct px_req *r);

/* The Insert cookie value of s, a server of g (PX_STICKY_VALUE_LEN
 * characters), or NULL when g has no Insert stickiness. */
const char *px_lb_cookie_of(const struct px_group *g, const struct px_server *s);

/* The server of g whose Insert cookie value is v (n bytes), or NULL. */
struct px_server *px_lb_by_cookie(const struct px_group *g, const char *v, size_t n);

/* The identity hash of a server that the Server stickiness table stores,
 * and the server of g with that identity (NULL: none). */
uint32_t px_lb_ident_of(const struct px_group *g, const struct px_server *s);
struct px_server *px_lb_by_ident(const struct px_group *g, uint32_t ident);

/* Slow start of s (a server of g) at now_ms (uv_hrtime() / 1e6): its
 * weight multiplied by the returned share in [1/1000, 1000/1000] as
 * thousandths; 1000 when g has no slowStart or s is not in it. The ramp
 * is linear over slowStart.durationSeconds from the backend's
 * slow_start clock, which starts when the server is new to the group
 * (and at least one usable server of the group is not in slow start),
 * when its weight goes from 0 to more, and when it becomes usable again
 * after a health failure; the ramp ends (the clock is cleared) at the
 * duration. */
int px_lb_slow_start(const struct px_group *g, const struct px_server *s, uint64_t now_ms);

#endif
