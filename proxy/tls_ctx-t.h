/* Types of proxy/tls_ctx.h. */
#ifndef ALBD_PROXY_TLS_CTX_T_H
#define ALBD_PROXY_TLS_CTX_T_H

#include <stdbool.h>

/* What the X-Forwarded-Clientcert-* headers carry for one connection. All
 * strings are NUL-terminated printable ASCII (the DNs are RFC 2253 with
 * non-ASCII and control bytes escaped), so they can go into a header as
 * they are. */
struct px_client_cert {
    bool present;          /* the client sent a certificate */
    char subject_dn[1024]; /* X-Forwarded-Clientcert-subjectdn */
    char issuer_dn[1024];  /* X-Forwarded-Clientcert-issuerdn */
    char fingerprint[65];  /* -fingerprint: SHA-256 of the DER, lowercase hex */
    /* -clientverify: "SUCCESS", "FAILED:<reason>" or "NONE" (no certificate). */
    char verify[128];
};

#endif
