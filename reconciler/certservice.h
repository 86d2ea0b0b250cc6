/* CertificateService resources: building one from its document
 * (certservice.c). Internal to the reconciler; called by build.c only. */
#ifndef ALBD_RECONCILER_CERTSERVICE_H
#define ALBD_RECONCILER_CERTSERVICE_H

#include "reconciler/doc.h"
#include "reconciler/model-t.h"

struct rc_load;

/* Fills s in from a CertificateService document (parsed): paths made
 * absolute against the manifest's folder, defaults filled in. Nothing is
 * read from the files (the token is a secret the agent reads per request).
 * Errors go to L->errs. Returns 0 or -1 when out of memory. */
int rc_build_cert_service(struct rc_load *L, struct rc_doc *d, struct rc_cert_service *s);

#endif
