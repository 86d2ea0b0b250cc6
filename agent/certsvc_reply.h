/* The certificate service's reply to GET /v1/certificates/{id}
 * (schemas/api/certsvc.md): parsed with jansson and checked with libcrypto
 * before anything is cached. Pure: no I/O, no logging, any thread. */
#ifndef ALBD_AGENT_CERTSVC_REPLY_H
#define ALBD_AGENT_CERTSVC_REPLY_H

#include <stddef.h>
#include <time.h>

/* Why a reply was refused (also the result label of
 * albd_certsvc_fetch_total, ag_certsvc_result_name). */
enum ag_certsvc_result {
    AG_CS_UPDATED,       /* a new version, cached */
    AG_CS_UNCHANGED,     /* 304, or 200 with the version held */
    AG_CS_TIMEOUT,       /* timeoutSeconds passed (slow or silent service) */
    AG_CS_CONNECT,       /* connection refused, no route, DNS */
    AG_CS_TLS,           /* handshake or verification of the service failed */
    AG_CS_CONNECTION,    /* the service closed the connection mid-reply */
    AG_CS_UNAUTHORIZED,  /* 401 */
    AG_CS_FORBIDDEN,     /* 403 */
    AG_CS_NOT_FOUND,     /* 404 */
    AG_CS_SERVER_ERROR,  /* 5xx */
    AG_CS_BAD_STATUS,    /* any other status */
    AG_CS_TOO_LARGE,     /* the reply passed AG_CERTSVC_MAX_REPLY */
    AG_CS_MALFORMED,     /* not JSON, or not the shape of the API */
    AG_CS_WRONG_ID,      /* id differs from the one asked for */
    AG_CS_BAD_PEM,       /* certificate or key does not parse */
    AG_CS_KEY_MISMATCH,  /* the key does not match the leaf */
    AG_CS_EXPIRED,       /* the leaf's notAfter has passed */
    AG_CS_NOT_YET_VALID, /* the leaf's notBefore is in the future */
    AG_CS_CACHE,         /* the cache could not be written */
    AG_CS_INTERNAL,      /* out of memory, curl setup */
    AG_CS_N_RESULTS
};

/* The largest reply body accepted (the API's limit). */
#define AG_CERTSVC_MAX_REPLY (1u << 20)

/* A checked reply. key_pem is SECRET: never logged; ag_cert_reply_cleanup
 * wipes it. */
struct ag_cert_reply {
    char *version; /* 1-128 printable ASCII, no '"' */
    char *cert_pem;
    size_t cert_len;
    char *key_pem;
    size_t key_len;
    time_t not_before, not_after; /* of the leaf */
};

/* Parses body (len bytes, not NUL-terminated) as the reply for certificate
 * id at time now and checks it: the shape, the ID, that the certificate and
 * key parse and match, and the leaf's validity window. Returns AG_CS_UPDATED
 * with *out filled (the caller cleans it up), or the reason it was refused
 * with a message in err (never any PEM or key byte) and *out zeroed. Wipes
 * its own copies of the key. */
enum ag_certsvc_result ag_cert_reply_parse(const char *body, size_t len, const char *id, time_t now,
                                           struct ag_cert_reply *out, char *err, size_t errlen);

/* Frees what r holds, wiping the key first; r is zeroed. */
void ag_cert_reply_cleanup(struct ag_cert_reply *r);

/* "updated", "unchanged", "timeout", ... (the metric label). */
const char *ag_certsvc_result_name(enum ag_certsvc_result r);

#endif
