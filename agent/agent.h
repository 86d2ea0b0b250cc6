/* `albd run`: the agent thread's lifetime (workers, watcher, reconcile
 * loop, admin endpoint, signals) and one reconcile on demand. */
#ifndef ALBD_AGENT_AGENT_H
#define ALBD_AGENT_AGENT_H

#include "agent/agent-t.h"

/* Runs `albd run`: starts the workers, reconciles once, then serves until
 * SIGTERM/SIGINT (SIGHUP reconciles again). Returns the exit status. */
int ag_run(const struct ag_options *opt);

/* Loads the manifests and applies them if valid; keeps the running
 * configuration on any failure. Returns 0 when the new configuration
 * serves. Agent thread. */
int ag_reconcile(struct ag_agent *a);

#endif
