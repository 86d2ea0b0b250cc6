/* Agent events an operator acts on, as log lines (common/log.h: JSON or
 * text): what a reconcile changed, and certificates close to expiry (once
 * per certificate per day, not at every reconcile). Agent thread. */
#ifndef ALBD_AGENT_EVENTS_H
#define ALBD_AGENT_EVENTS_H

#include <stdbool.h>
#include <time.h>

#include "reconciler/err-t.h"
#include "reconciler/model-t.h"

/* Certificates expiring within this many days are warned about. */
#define AG_CERT_WARN_DAYS 30

/* Logs one info line naming what changed from old (NULL: nothing ran
 * before) to new: created, updated (with the changed fields) and deleted
 * resources, at most a few dozen named. */
void ag_events_changes(const struct rc_model *old, const struct rc_model *new);

/* Warns about each certificate of m that expires within
 * AG_CERT_WARN_DAYS of now (or has expired), unless it was warned about
 * less than a day ago (by fingerprint: a renewed certificate is new). */
void ag_events_cert_expiry(const struct rc_model *m, time_t now);

/* True for the reconciler's warning that a certificate expires soon
 * (reconciler/cert.c), which ag_events_cert_expiry repeats once a day
 * instead of at every reconcile. */
bool ag_events_is_expiry_warning(const struct rc_err *e);

/* Frees the memory of which certificates were warned about (at exit). */
void ag_events_cleanup(void);

#endif
