/* What albd checks in an HTTP/1.1 request head beyond what llhttp (strict)
 * checks: the raw-byte scan that runs before llhttp sees the bytes, the
 * Transfer-Encoding rule and the checks of the complete head. Pure: no I/O, no allocation. */
#ifndef ALBD_PROXY_H1_HEAD_H
#define ALBD_PROXY_H1_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "proxy/headers.h"

/* What albd checks in the raw bytes of a request head before llhttp sees
 * them (see px_h1_scan_head). Zeroed before each request head. */
struct px_h1_scan {
    bool done;    /* the head's empty line was seen */
    bool cr;      /* the previous byte was CR */
    bool prev_sp; /* request line: the previous byte was SP */
    unsigned sp;  /* request line: SP seen */
    uint32_t line, col;
    uint8_t cl_name; /* header line: bytes of "content-length" matched (0xff: other name) */
    bool cl_value;   /* in the value of a Content-Length field */
};

/* Bytes of a request head that llhttp (even strict) lets through but a
 * proxy must refuse, because a backend may read them differently: a bare
 * CR or LF, obs-fold or whitespace before a header name, control bytes,
 * and a request line that is not exactly "method SP target SP version".
 * Scans data up to the end of the head (empty lines before the request
 * line are skipped, as RFC 9112 2.2 allows). 0 or -1. It also stops after
 * an HTAB in a Content-Length value, setting *stop to its offset (else
 * *stop is len): that OWS is valid (RFC 9110 5.6.3) but llhttp's strict
 * mode takes only SP after the digits, so the caller gives it SP. */
int px_h1_scan_head(struct px_h1_scan *s, const char *data, size_t len, size_t *stop);

/* Whether field x is named lit (lowercase), case-insensitively. */
static inline bool px_h1_hdr_is(const struct px_hdr *x, const char *lit)
{
    size_t l = strlen(lit);
    return x->name_len == l && strncasecmp(x->name, lit, l) == 0;
}

/* The length of v[0..n) without trailing OWS (llhttp strips leading OWS). */
static inline size_t px_h1_trim_ows(const char *v, size_t n)
{
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    return n;
}

/* Transfer-Encoding: albd takes exactly "chunked". A list that ends in
 * chunked after other codings is valid HTTP that albd cannot pass on
 * (501); anything else is malformed or ambiguous (400). */
int px_h1_te_status(const char *v, size_t vl);

/* What px_h1_check_request decides about a request. */
struct px_h1_req_info {
    bool ws;                 /* a WebSocket upgrade albd passes on */
    bool expect_continue;    /* the client waits for "100 Continue" */
    struct px_target target; /* where the target's parts lie (px_target_parse) */
};

/* Request checks beyond llhttp's (which already refuses Content-Length
 * with Transfer-Encoding, repeated or malformed Content-Length, and a
 * Transfer-Encoding whose last coding is not chunked), over the fields
 * h[0..n) and the target of an HTTP/1.<minor> request: one valid Host (for
 * 1.1), the Transfer-Encoding rule (never from 1.0), Expect only
 * "100-continue" (417), and the target rule (px_target_parse, absolute-form
 * allowed; options: the method is OPTIONS). get_no_body: a GET without a
 * body, the only request that may upgrade. Returns 0 or the status to
 * answer; fills *out on 0. */
int px_h1_check_request(const struct px_hdr *h, size_t n, const char *target, size_t target_len,
                        int minor, bool options, bool get_no_body, struct px_h1_req_info *out);

#endif
