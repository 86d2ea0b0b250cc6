/* The response-rule filter's state (proxy/resp_rules.c), embedded in each
 * exchange. Types only. */
#ifndef ALBD_PROXY_RESP_RULES_T_H
#define ALBD_PROXY_RESP_RULES_T_H

#include <stdbool.h>
#include <stdint.h>

struct px_sink;
struct rc_listener;

struct px_rrf {
    const struct px_sink *next;
    void *next_owner;
    const struct rc_listener *l; /* resp_rules: the snapshot outlives the exchange */
    uint64_t cand;               /* bit i: resp_rules[i]'s request conditions matched */
    bool head_req;               /* the request was HEAD: a fixed response sends no body */
    bool replaced;               /* a fixedResponse went instead: drop the backend's */
};

#endif
