/* Group-level stickiness of a forward rule (the reference's
 * ServerGroupStickySession; forward.stickySession): a client keeps the
 * group of the rule it was first sent to. The group travels in albd's
 * cookie albd-group-<rule name>, whose value is the group's name: a
 * request carrying it goes to that group when the rule still forwards to
 * it with a weight above 0; otherwise the weighted choice stands and the
 * forwarded response gets Set-Cookie: albd-group-<rule name>=<group>;
 * Max-Age=<timeoutSeconds>; Path=/; HttpOnly. Inside the group, the
 * group's own stickySession picks the server. Call on the owning worker's
 * loop. */
#ifndef ALBD_PROXY_GROUP_STICKY_H
#define ALBD_PROXY_GROUP_STICKY_H

#include <stdbool.h>

#include "proxy/exchange-t.h"
#include "proxy/req-t.h"

/* For request r matched by rule ru (forward, sticky): the group r's cookie
 * names (then *set is false), or NULL (the caller picks by weight; *set
 * true: the response must set the cookie). */
struct px_group *px_group_sticky_pick(const struct px_req *r, const struct rc_rule *ru, bool *set);

/* Puts the filter that adds the Set-Cookie for group g of rule ru in front
 * of *sink (owner x->sink_owner). Nothing when the cookie would not fit. */
void px_group_sticky_attach(struct px_exchange *x, const struct rc_rule *ru,
                            const struct px_group *g, const struct px_sink **sink);

#endif
