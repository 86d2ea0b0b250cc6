/* A rule's cors action (the reference's Cors, alb-api.md 4.3), the same
 * for HTTP/1.1 and HTTP/2:
 *
 * - A preflight (OPTIONS with Origin and Access-Control-Request-Method)
 *   that matches the rule is answered by albd itself, never forwarded:
 *   204 with Vary: Origin and, when the Origin is allowed,
 *   Access-Control-Allow-Origin, -Allow-Methods, -Allow-Headers,
 *   -Max-Age and -Allow-Credentials as configured. An Origin that is not
 *   allowed gets the 204 without Access-Control-* fields (the browser
 *   then refuses the request).
 * - Any other request with an allowed Origin is forwarded, and a response
 *   filter between the backend and the client (after compression) gives
 *   the response Access-Control-Allow-Origin, -Allow-Credentials and
 *   -Expose-Headers (replacing any the backend sent) and Vary: Origin.
 *   A request without Origin, or with one not allowed, gets the
 *   backend's response unchanged.
 *
 * An Origin is allowed when allowOrigin holds "*" or the same origin
 * (case-insensitive). Allow-Origin echoes the request's Origin, except
 * "*" when allowOrigin holds "*" and allowCredentials is off (browsers
 * refuse "*" with credentials). Call on the owning worker's loop. */
#ifndef ALBD_PROXY_CORS_H
#define ALBD_PROXY_CORS_H

#include <stdbool.h>

#include "proxy/exchange-t.h"
#include "proxy/req-t.h"

struct rc_cors;

/* True when r is a CORS preflight: OPTIONS with Origin and
 * Access-Control-Request-Method fields. */
bool px_cors_is_preflight(const struct px_req *r);

/* Answers preflight r for cors co through sink (the protocol's; owner its
 * first argument). r->hdrs is reused for the response fields (read the
 * request's before). 0, or -1 when the sink refused. */
int px_cors_answer_preflight(struct px_req *r, const struct rc_cors *co, const struct px_sink *sink,
                             void *owner);

/* Puts the CORS filter of co in front of *sink (owner x->sink_owner),
 * when r carries an Origin co allows; otherwise leaves *sink and
 * x->sink_owner alone. Never fails. */
void px_cors_attach(struct px_exchange *x, const struct px_req *r, const struct rc_cors *co,
                    const struct px_sink **sink);

#endif
