/* Forwarding rules of a Listener (spec.rules) and its defaultAction's
 * redirect or fixed response: parsed and checked against the reference's
 * ranges and per-rule caps (rules.c), and re-pointed when an unchanged
 * listener is copied. Called by listener.c only. Internal to the
 * reconciler. */
#ifndef ALBD_RECONCILER_RULES_H
#define ALBD_RECONCILER_RULES_H

#include <stdbool.h>

#include "reconciler/doc.h"
#include "reconciler/model-t.h"
#include "reconciler/resolve.h"

struct rc_load;

/* Per-rule caps of the reference (alb-api.md 4.1 / 7.3): conditions,
 * actions and wildcard entries, Basic and Standard/WAF editions. */
#define RC_RULE_CONDS_BASIC 5
#define RC_RULE_CONDS_STD 10
#define RC_RULE_ACTIONS_BASIC 3
#define RC_RULE_ACTIONS_STD 5
#define RC_RULE_WILDCARDS_BASIC 5
#define RC_RULE_WILDCARDS_STD 10

/* Fills li->rules (sorted by priority) and li->default_action from spec,
 * after li->protocol, li->instance and li->default_group are set. Errors
 * (file:line:col, spec.rules[i].<field>) go to L->errs. Returns 0 or -1
 * when out of memory. */
int rc_build_rules(struct rc_load *L, struct rc_doc *d, yaml_node_t *spec, struct rc_listener *li,
                   const struct rc_refs *r);

/* Re-points the forward groups of c's rules (a copy of a running listener)
 * into L->m's groups: a new rules array in L->m's arena, the strings
 * shared. False when a group is not a copy of what the running rule used
 * (the listener is then built instead) or out of memory (L->oom). */
bool rc_rules_reuse(struct rc_load *L, struct rc_listener *c);

#endif
