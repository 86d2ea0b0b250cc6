/* What TLS means for a request on an HTTPS listener, shared by the HTTP/1.x
 * and HTTP/2 handlers: the X-Forwarded-Clientcert-* headers (carry the
 * client-certificate result to the backend; a client can never inject
 * them) and the domain-fronting check (421 Misdirected Request). Pure
 * apart from reading the connection's SSL: no I/O, no allocation. */
#ifndef ALBD_PROXY_TLS_HEADERS_H
#define ALBD_PROXY_TLS_HEADERS_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

#include "proxy/headers.h"
#include "proxy/tls_ctx-t.h"
#include "reconciler/model-t.h"

/* Most client-certificate headers a request gets (subject, issuer,
 * fingerprint, verify result). */
#define PX_TLS_HDR_MAX 4

/* True when name (len bytes) is a client-certificate header a client must
 * not send: one of the reference's four default names, or a name l
 * configures under headers.clientCert (l may be NULL). Case-insensitive,
 * with '_' equal to '-' (px_header_name_eq). */
bool px_tls_header_reserved(const struct rc_listener *l, const char *name, size_t len);

/* Removes every reserved header (px_tls_header_reserved) from h[0..n) in
 * place, keeping the order of the others; returns the new count. Call on
 * every request of every listener, whether or not it sends the headers. */
size_t px_tls_headers_strip(const struct rc_listener *l, struct px_hdr *h, size_t n);

/* True when l sends at least one client-certificate header. */
bool px_tls_headers_enabled(const struct rc_listener *l);

/* Fills out[0..PX_TLS_HDR_MAX) with the headers l enables, under the names
 * l gives them, with values pointing into cc (which must outlive their
 * use); returns how many. Without a client certificate (cc->present false)
 * only the verify header is sent, with "NONE": the other three would be
 * empty. */
size_t px_tls_headers_fill(const struct rc_listener *l, const struct px_client_cert *cc,
                           struct px_hdr *out);

/* True when requests on l must name a host covered by the certificate the
 * client's SNI selected: HTTPS listeners with mutual TLS or tls.strictSni. */
bool px_tls_host_check_needed(const struct rc_listener *l);

/* The domain-fronting check of one request, for a listener where
 * px_tls_host_check_needed(l): returns 0 when every Host header (h[0..n))
 * and the authority of an absolute-form target ("https://host/...",
 * target_len bytes; NULL or origin-form: none) are covered by the
 * certificate ssl selected, else 421. A request that names no host at all
 * is not covered (421). HTTP/2 passes :authority as a header named
 * "host". */
int px_tls_check_request(SSL *ssl, const char *target, size_t target_len, const struct px_hdr *h,
                         size_t n);

#endif
