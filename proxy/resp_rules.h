/* Response rules (direction: Response; the reference's alb-api.md 4.1-4.3),
 * a response filter the same for HTTP/1.1 and HTTP/2. A listener's
 * response rules are tried by priority on each forwarded response; the
 * first whose request conditions matched the request (as forwarded: after
 * a rewrite) and whose responseStatusCode and responseHeader conditions
 * match the response head applies: fixedResponse replaces the response
 * (status, Content-Type, body; the backend's body is read and dropped), or
 * removeHeaders then insertHeaders edit its head (an inserted field
 * replaces any of its name). No match: the response passes unchanged.
 * 1xx heads always pass. Answers albd makes itself (redirects, fixed
 * responses, preflights, errors) are not forwarded responses and are not
 * filtered. Call on the owning worker's loop. */
#ifndef ALBD_PROXY_RESP_RULES_H
#define ALBD_PROXY_RESP_RULES_H

#include <stdbool.h>
#include <stdint.h>

#include "proxy/exchange-t.h"
#include "proxy/req-t.h"

/* Whether response rule ru's response conditions match a head of status
 * with fields h[0..n). */
bool px_resp_rule_matches(const struct rc_rule *ru, int status, const struct px_hdr *h, size_t n);

/* Puts the filter for l's response rules in front of *sink (owner
 * x->sink_owner) when cand (bit i: resp_rules[i]'s request conditions
 * matched) is not 0; otherwise changes nothing. head_req: the request was
 * HEAD. */
void px_resp_rules_attach(struct px_exchange *x, const struct rc_listener *l, uint64_t cand,
                          bool head_req, const struct px_sink **sink);

#endif
