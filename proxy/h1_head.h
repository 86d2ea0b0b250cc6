/* What albd checks in the bytes of an HTTP/1.1 request head beyond what
 * llhttp (strict) checks: the raw-byte scan that runs before llhttp sees
 * them, and the Transfer-Encoding rule. Pure: no I/O, no allocation. */
#ifndef ALBD_PROXY_H1_HEAD_H
#define ALBD_PROXY_H1_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* Transfer-Encoding: albd takes exactly "chunked". A list that ends in
 * chunked after other codings is valid HTTP that albd cannot pass on
 * (501); anything else is malformed or ambiguous (400). */
int px_h1_te_status(const char *v, size_t vl);

#endif
