/* The certificate-service client: keeps every service certificate of the
 * running configuration fetched, fresh and cached (schemas/api/certsvc.md).
 *
 * Runs on the agent's loop: libcurl's multi-socket interface driven by
 * uv_poll (one per socket curl opens) and one uv_timer, so no request ever
 * blocks the loop or the workers; up to 64 transfers run at once (the rest
 * queue) over connections the multi handle reuses (HTTP/2 multiplexed when
 * the service speaks it, else keep-alive). libcurl is used here and
 * nowhere else in albd.
 *
 * The one seam to the reconciler is the cache folder: a validated reply is
 * written there atomically (CACHE/<service>/<id>/{cert.pem,key.pem,version},
 * folders 0700, files 0600, temporary file + rename), then on_change is
 * called so that the agent reconciles and the reconciler reads the new
 * files like certificate files. A failure never touches the cache, so the
 * certificate being served stays. */
#ifndef ALBD_AGENT_CERTSVC_H
#define ALBD_AGENT_CERTSVC_H

#include <jansson.h>
#include <stddef.h>
#include <uv.h>

#include "agent/certsvc_reply.h"
#include "reconciler/model-t.h"

struct ag_certsvc;

typedef void (*ag_certsvc_change_cb)(void *arg);

/* Starts a client on loop that caches into cache_dir (created 0700 when a
 * first certificate is written; the string must outlive the client) and
 * calls on_change(arg) on the loop after a new version is cached. Returns
 * 0 and *out, or -errno. Agent thread. */
int ag_certsvc_start(uv_loop_t *loop, const char *cache_dir, ag_certsvc_change_cb on_change,
                     void *arg, struct ag_certsvc **out);

/* Makes the set of certificates kept fresh that of m's service
 * certificates (m may be NULL: none): new ones are fetched now (or on
 * their schedule when cached), removed ones stop, and a changed service
 * setting applies to the next request. Copies what it keeps of m. Agent
 * thread. */
void ag_certsvc_sync(struct ag_certsvc *cs, const struct rc_model *m);

/* Fetches every certificate now (SIGHUP), whatever its schedule or
 * backoff; transfers in flight continue. Agent thread. */
void ag_certsvc_refresh(struct ag_certsvc *cs);

/* Stops every transfer and timer and frees cs once its handles closed
 * (the loop must run). NULL is a no-op. Agent thread. */
void ag_certsvc_close(struct ag_certsvc *cs);

/* One entry per certificate: {"service", "id", "state" (Fetched | Cached |
 * Pending | Failing), "version", "notAfter", "lastResult", "lastError",
 * "lastSuccess", "nextFetch", "failures"}; never a key. New reference. */
json_t *ag_certsvc_status(const struct ag_certsvc *cs);

/* Appends the Prometheus text of the client's metrics
 * (albd_certsvc_fetch_total{result}, albd_certsvc_certificates{state},
 * albd_certsvc_last_update_seconds) to *buf (malloc'd, *len bytes, NUL-
 * terminated); returns 0 or -ENOMEM. cs may be NULL. */
int ag_certsvc_metrics(const struct ag_certsvc *cs, char **buf, size_t *len);

/* Counts of certificates never fetched and not cached. */
size_t ag_certsvc_pending(const struct ag_certsvc *cs);

#endif
