/* The request pipeline, the same for every client protocol: a struct
 * px_req (req-t.h) goes through route → action → request transforms →
 * exchange (proxy/exchange.c: server choice, pooled backend connection,
 * failover) and the response comes back through the response filters to
 * the protocol's sink. Also the per-connection client facts and the
 * per-request limits both protocols apply. Call only on the owning
 * worker's loop. */
#ifndef ALBD_PROXY_REQ_H
#define ALBD_PROXY_REQ_H

#include <stdint.h>

#include "proxy/buf.h"
#include "proxy/conn-t.h"
#include "proxy/exchange-t.h"
#include "proxy/req-t.h"

/* Fills cl from connection c (address, port, TLS facts); allocates
 * nothing. */
void px_client_init(struct px_client *cl, struct px_conn *c);

/* Frees what px_client_cert_load allocated. */
void px_client_cleanup(struct px_client *cl);

/* Reads the client certificate once per connection when listener l sends
 * X-Forwarded-Clientcert-* (and the connection is TLS). 0 or -ENOMEM. */
int px_client_cert_load(struct px_client *cl, const struct rc_listener *l);

/* Sets r->client_addr and r->client_ip: the retrieved client IP. The
 * connection's peer, or under the listener's clientSourceIps the address
 * px_clientip_from_xff finds in r's X-Forwarded-For fields
 * (proxy/clientip.h). */
void px_req_client_ip(struct px_req *r);

/* The route step: the action for r — the first of its listener's
 * forwarding rules (by priority) that r matches (proxy/router.c), else
 * the listener's default action. Returns 0, 400 (a path no rule can be
 * sure about: router.h) or 500 (no memory). */
int px_route(const struct px_req *r, struct px_action *out);

/* The response-filter step: sets *out to the sink the backend response
 * goes through for request r with action a on exchange x, ending in the
 * protocol's sink, and x->sink_owner to the owner to pass it (x->owner
 * when no filter runs). The filters: compression (proxy/compress.h),
 * then in front of it the rule's cors (proxy/cors.h). 0, or 500 (no
 * memory). */
int px_filters_attach(const struct px_req *r, struct px_exchange *x, const struct px_action *a,
                      const struct px_sink *sink, const struct px_sink **out);

/* What px_req_start returns when albd answered the request itself (a
 * redirect or fixed response, already written through the protocol's
 * sink): the protocol finishes the request as after a backend response. */
#define PX_REQ_ANSWERED 1

/* Runs the pipeline for r: the domain-fronting check, route, action; for
 * a forward, the exchange's retry rule (x->idempotent from the method), the request transforms
 * (client-certificate and forwarding headers) into the backend head in hout (tgt: scratch for a
 * composed target), and the exchange on x (px_exchange_begin, then px_exchange_connect, whose
 * callbacks may run before this returns). *sink: where the backend response goes
 * (px_filters_attach), called with owner x->sink_owner. Returns 0 (the exchange runs: touch nothing
 * of x's owner after this returns without checking its state), PX_REQ_ANSWERED (albd answered
 * through proto_sink, owner x->owner: a redirect or fixed response), or a status the protocol
 * answers with: 400 (a path rules cannot judge), 421 (domain fronting), 431 (head too large), 500
 * (no memory). */
int px_req_start(struct px_req *r, struct px_exchange *x, struct px_buf *hout, struct px_buf *tgt,
                 const struct px_sink *proto_sink, const struct px_sink **sink);

/* True for a method that may be sent again after a lost backend
 * connection (idempotent, RFC 9110 9.2.2): GET HEAD OPTIONS PUT DELETE. */
bool px_method_idempotent(const char *method);

/* Counts a response sent to a client by status class (metrics). */
void px_req_count_response(struct px_worker *w, int status);

/* Request body limits (struct px_body_meter, req-t.h). */
/* Starts a new request's meter. */
void px_body_meter_reset(struct px_body_meter *m);

/* Restarts the rate window: albd itself held the body back meanwhile (a
 * slow backend is not a slow client). */
void px_body_meter_restart(struct px_body_meter *m);

/* Counts len more body bytes at now (ms): 0, 413 (over the limit) or 408
 * (slower than the minimum rate over a full window). */
int px_body_meter_add(struct px_body_meter *m, const struct rc_listener *l, uint64_t now,
                      size_t len);

#endif
