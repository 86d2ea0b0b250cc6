/* trafficMirror: a copy of a forwarded request goes to the rule's mirror
 * group, its response is read and discarded. The copy lives on its own on
 * the worker's loop: the client's exchange never waits for it and a
 * mirror failure never reaches the client. */
#ifndef ALBD_PROXY_MIRROR_H
#define ALBD_PROXY_MIRROR_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/req-t.h"
#include "proxy/worker-t.h"

/* Copies in flight per worker; a copy over it is dropped (counted). */
#define PX_MIRROR_MAX_INFLIGHT 256
/* A copy that has not finished this long after it started is cut. */
#define PX_MIRROR_TIMEOUT_MS (5000 + 10000) /* the connect timeout + 10 s */

/* True when r may be mirrored: it has no body (bodies are not mirrored). */
bool px_mirror_eligible(const struct px_req *r);

/* Sends a copy of the backend request head (head, len: the bytes the
 * primary backend gets, after the rule's rewrites and header operations)
 * to a server of r's rule's mirror group (rule->mirror_group of listener
 * r->lis), chosen by the group's scheduler. Returns at once; the outcome
 * is only counted in w->stats (mirror_sent / _dropped / _failed). w NULL
 * (unit tests without a worker): nothing happens. */
void px_mirror_send(struct px_worker *w, const struct px_req *r, const struct rc_rule *rule,
                    const char *head, size_t len);

/* Cuts every copy in flight on w (the worker is stopping); their memory
 * is freed once their handles closed. */
void px_mirror_abort_all(struct px_worker *w);

#endif
