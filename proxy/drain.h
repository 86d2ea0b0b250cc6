/* Connection draining: a server that no group of the published snapshot
 * sends requests to any more (removed, or weight 0) finishes the requests
 * it has; with its group's connectionDrain enabled, whatever connections
 * it still has (requests in flight, WebSocket tunnels) are cut at
 * connectionDrain.timeoutSeconds (0: at once); without, they live until
 * they end on their own (the client or the server closes). Either way its
 * idle pooled connections close at once and no connection to it is pooled
 * again. A server that serves again (added back, weight above 0) stops
 * draining. */
#ifndef ALBD_PROXY_DRAIN_H
#define ALBD_PROXY_DRAIN_H

#include "proxy/snapshot-t.h"

/* Marks the backends of before that now (the snapshot that replaces it)
 * does not send requests to (drain_at: the deadline, from the drain
 * settings of now's group of the same name, else of before's), and
 * clears the mark of every backend now serves. Agent thread, when now is
 * published; the workers apply the marks (px_upstream_drain) when they
 * pick now up. before may be NULL. */
void px_drain_mark(const struct px_snapshot *now, const struct px_snapshot *before);

#endif
