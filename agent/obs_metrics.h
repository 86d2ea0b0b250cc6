/* The observability part of /metrics: build and process facts, the access
 * log's counters, reconcile timestamps, and per-listener and per-upstream
 * series merged from the workers' counters. Kept apart from admin.c's own
 * series; admin.c appends this text. */
#ifndef ALBD_AGENT_OBS_METRICS_H
#define ALBD_AGENT_OBS_METRICS_H

#include "agent/agent-t.h"

/* The Prometheus text exposition (version 0.0.4) of these series:
 * malloc'd, NULL when out of memory. Agent thread. */
char *ag_obs_metrics(struct ag_agent *a);

#endif
