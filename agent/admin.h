/* The admin HTTP endpoint (loopback by default): /healthz, /readyz, /status,
 * /metrics, /config. Served on the agent's loop. */
#ifndef ALBD_AGENT_ADMIN_H
#define ALBD_AGENT_ADMIN_H

#include "agent/agent-t.h"

/* Listens on addr ("127.0.0.1:9901", "[::1]:9901"). Returns 0 and the
 * endpoint in *out, or a negative uv error code. */
int ag_admin_start(struct ag_agent *a, const char *addr, struct ag_admin **out);

/* Stops listening and closes open admin connections; frees in the close
 * callbacks. NULL is a no-op. */
void ag_admin_close(struct ag_admin *ad);

#endif
