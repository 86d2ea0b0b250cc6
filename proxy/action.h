/* The action step for what a route chose (proxy/action.c): the group of a
 * weighted forward, and the answers albd gives itself — redirects and
 * fixed responses — written through the protocol's response sink, so
 * that HTTP/1.1 and HTTP/2 (and any later protocol) answer them the same
 * way. Call on the owning worker's loop. */
#ifndef ALBD_PROXY_ACTION_H
#define ALBD_PROXY_ACTION_H

#include <stddef.h>

#include "proxy/req-t.h"

/* The group a forward action sends this request to: one of its groups
 * chosen at random in proportion to the weights (a per-thread generator,
 * no shared state); NULL when every weight is 0 (answered 503). */
struct px_group *px_action_pick_group(const struct px_listener *lis, const struct rc_action *a);

/* Writes the Location of redirect a for request r into out (size bytes):
 * protocol://host[:port]path[?query], the ${...} variables replaced
 * (${protocol} the listener's scheme, ${host} the request's host without
 * port, ${port} the listener port, ${path} and ${query} as the client sent
 * them); the port is left out when it is the protocol's default. Returns
 * its length, or -1 when it does not fit. */
long px_action_location(const struct px_req *r, const struct rc_action *a, char *out, size_t size);

/* Answers r with a->answer (a redirect or fixed response; NULL: the
 * trafficLimit refusal, a->limited_status with ALB-QPS-Limited: Limited)
 * through sink
 * (the protocol's; owner: its first argument): head, body unless HEAD,
 * end. r->hdrs is reused for the response fields. Returns 0, or -1 when
 * the sink refused (the protocol has closed or reset) or out of memory. */
int px_action_answer(struct px_req *r, const struct px_action *a, const struct px_sink *sink,
                     void *owner);

/* Applies rule ru's request extras to r before the backend head is built:
 * rewrite (r->path, r->query, r->authority and the Host field get the
 * rewritten values; the client's URL is unchanged), then removeHeaders,
 * then insertHeaders (each replacing any field of its name; a
 * ReferenceHeader absent from the request inserts nothing). *scratch gets
 * a buffer the new values live in (free it once the head is built; NULL
 * when none). Returns 0, 431 (no room for another field) or 500 (no
 * memory). */
int px_action_request_extras(struct px_req *r, const struct rc_rule *ru, char **scratch);

#endif
