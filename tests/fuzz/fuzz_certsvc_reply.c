/* Fuzz target: a certificate-service reply body through
 * ag_cert_reply_parse (agent/certsvc_reply.c), as the agent parses what
 * the service sends: JSON (jansson), the shape, the ID "www", then the PEM
 * certificate and key (libcrypto) and the validity window at a fixed time.
 *
 * Asserts: no crash, no sanitizer report, no leak; a refusal has a reason
 * that holds no PEM and leaves nothing in the reply; an acceptance has a
 * version, a certificate and a key of the lengths it says. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/certsvc_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ag_cert_reply r;
    char err[256] = "";
    /* 2030-01-01: inside the validity of the seed corpus's certificate
     * (2026-12 to 2036-12). */
    enum ag_certsvc_result res = ag_cert_reply_parse((const char *)data, size, "www",
                                                     (time_t)1893456000, &r, err, sizeof err);
    if (res == AG_CS_UPDATED) {
        if (!r.version || !r.cert_pem || !r.key_pem || strlen(r.cert_pem) != r.cert_len ||
            strlen(r.key_pem) != r.key_len)
            abort();
    } else {
        if (err[0] == '\0' || strstr(err, "BEGIN") || r.version || r.cert_pem || r.key_pem)
            abort();
        if (strlen(ag_certsvc_result_name(res)) == 0)
            abort();
    }
    ag_cert_reply_cleanup(&r);
    return 0;
}
