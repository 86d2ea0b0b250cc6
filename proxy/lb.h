/* Server choice within a group: the scheduler (smooth weighted round
 * robin today) and the failover order. Reads the snapshot's weights and the
 * backend registry's state; its own per-group state lives in the registry
 * (struct px_lb_state), keyed by the group's identity, membership and
 * weights, so a reload that leaves a group alone keeps its rotation and one
 * that changes it starts afresh. Picks run on a worker, lock-free: each
 * worker touches only its own row of the state. */
#ifndef ALBD_PROXY_LB_H
#define ALBD_PROXY_LB_H

#include <stddef.h>

#include "proxy/backend-t.h"
#include "proxy/snapshot-t.h"

/* The scheduler state for group g (g->model, g->servers filled in), with
 * one reference for the caller: the existing one when a group with the same
 * name, scheduler, servers and weights has one, else a new one (all
 * counters zero). NULL when out of memory. Agent thread (takes r->lock). */
struct px_lb_state *px_lb_state_get(struct px_registry *r, const struct px_group *g);

/* Drops a reference; the last one frees the state. Any thread;
 * NULL is a no-op. */
void px_lb_state_unref(struct px_lb_state *st);

/* The first server for a request on worker `worker` (< r->n_workers):
 * smooth weighted round robin over the servers of weight > 0 whose backend
 * is usable (health; when none is and the group fails open, over all of
 * weight > 0). Returns NULL when no server is eligible. Call only from
 * worker `worker`. Other schedulers (least connections, hashing) branch
 * here on g->model->scheduler. */
struct px_server *px_lb_pick(const struct px_group *g, int worker);

/* Failover: the next server after `first` (the index px_lb_pick chose) in
 * the group's order, skipping weight 0 and unusable backends. *cursor
 * counts the steps taken (start at 0); returns NULL once every server was
 * offered, so a request fails over across the whole group, whatever its
 * size, and tries each server at most once. */
struct px_server *px_lb_next(const struct px_group *g, size_t first, size_t *cursor);

#endif
