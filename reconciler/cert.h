/* Certificate resources: building one from its document (reading and
 * parsing its PEM, checking the key and the validity) and copying an
 * unchanged one (cert.c). Internal to the reconciler; called by build.c
 * only. */
#ifndef ALBD_RECONCILER_CERT_H
#define ALBD_RECONCILER_CERT_H

#include <stdbool.h>

#include "reconciler/doc.h"
#include "reconciler/err-t.h"
#include "reconciler/load.h"
#include "reconciler/model-t.h"

struct rc_load;

/* Fills c from a Certificate document: reads the PEM and, when no earlier
 * parse of the same bytes has the facts, queues c on L->cert_batch for
 * rc_finish_certificates(), which parses, checks key match and validity;
 * otherwise checks validity now. Returns 0, -1 after appending errors, or
 * -2 when out of memory (or L->cert_batch is full). */
int rc_build_certificate(struct rc_load *L, struct rc_doc *d, struct rc_certificate *c);

/* Parses the certificates queued on L->cert_batch together (the store of
 * parsed certificates, certstore.h: on every core, or nothing when the
 * process parsed the same bytes before), fills their facts and runs their
 * checks, in queue order. Call once every certificate of the pass is
 * built, before anything reads their facts. Returns 0, or -1 when out of
 * memory. */
int rc_finish_certificates(struct rc_load *L);

/* Whether c, valid at L->now, is far enough from its expiry that building
 * it would report nothing about its validity. */
bool rc_cert_time_quiet(const struct rc_load *L, const struct rc_certificate *c);

/* d's running version when d is unchanged, its files still hold the same
 * bytes and it is valid now: that very struct, shared (model-t.h), or,
 * when the copy must differ (it moved in its file, a service certificate)
 * or was such a copy already, a copy in the pass's data arena, also set
 * in *own (else NULL). NULL when it must be built (L->oom when out of
 * memory). A copy near expiry reports the warning its build would, now
 * or, when L->defer_expiry, once rc_report_late_expiry is called. */
const struct rc_certificate *rc_reuse_certificate(struct rc_load *L, struct rc_doc *d,
                                                  struct rc_certificate **own);

/* Reports the expiry warnings L->defer_expiry held back, to errs, and
 * forgets them. */
void rc_report_late_expiry(struct rc_load *L, struct rc_errs *errs);

/* Moves them to *out instead (rc_load_opts.late_expiry): their
 * certificates live as long as pass 1's model. */
void rc_hand_late_expiry(struct rc_load *L, struct rc_late_expiries *out);

/* Whether e is the warning that a certificate expires soon: the one
 * diagnostic rc_reuse_certificate() reports again for a copy, so it does
 * not keep its manifest file from being reused (contain.c). */
bool rc_cert_is_expiry_warning(const struct rc_err *e);

#endif
