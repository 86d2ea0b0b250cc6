/* The admin HTTP endpoint (loopback by default): /healthz, /readyz, /status,
 * /metrics, /config; and the probe endpoint (--probe), which serves only
 * /healthz and /readyz. Served on the agent's loop, bounded: a request head
 * within 5 s and 8 KiB, at most 64 connections (more get 503 and are
 * closed), a Host that names this machine (421 otherwise). */
#ifndef ALBD_AGENT_ADMIN_H
#define ALBD_AGENT_ADMIN_H

#include "agent/agent-t.h"

/* Listens on addr ("127.0.0.1:9901", "[::1]:9901"); with probe_only, serves
 * /healthz and /readyz and answers 404 for everything else. Host values
 * allowed besides IP literals and localhost: a->opt.admin_hosts. Logs a
 * warning when a full endpoint is bound outside loopback. Returns 0 and the
 * endpoint in *out, or a negative uv error code. */
int ag_admin_start(struct ag_agent *a, const char *addr, bool probe_only, struct ag_admin **out);

/* Records what the last reconcile (a->last_status, a->running) says of
 * each resource for /status: its generation, a counter bumped when its
 * spec's digest changes, and when each of its Ready/Accepted/Programmed
 * conditions last changed status. Call after every reconcile; resources
 * no longer listed are forgotten. */
void ag_status_observe(struct ag_agent *a);

/* Frees what ag_status_observe keeps. */
void ag_status_forget(struct ag_agent *a);

/* Stops listening and closes open admin connections; frees in the close
 * callbacks. NULL is a no-op. */
void ag_admin_close(struct ag_admin *ad);

#endif
