/* Retrieving the client IP from X-Forwarded-For (the listener's
 * xForwardedFor.clientSourceIps; alb-https-listener.txt "Retrieve Client
 * IP"). Pure: no allocation, no I/O, safe from any thread.
 *
 * Every X-Forwarded-For field of the request counts, in order, as one
 * comma-separated list (RFC 9110 5.3); empty elements are ignored (RFC
 * 9110 5.6.1). An element is an address as cm_ip_parse takes it, with
 * optional whitespace around it; albd also takes "a.b.c.d:port",
 * "[v6]" and "[v6]:port" (what some proxies write) as the address alone.
 * Anything else (a name, "unknown", an obfuscated identifier, a zone
 * "fe80::1%eth0", a bad port) is unparsable.
 *
 * - Leftmost (the trusted list holds 0.0.0.0/0): the first element; when
 *   it is unparsable, the peer.
 * - Otherwise the walk goes right to left and takes the first address not
 *   in the trusted list. An unparsable element stops the walk: the peer is
 *   used (nothing left of it can be attributed). When every element is
 *   trusted, the leftmost one is taken (the farthest known hop). The walk
 *   looks at PX_XFF_MAX_HOPS elements at most: a longer all-trusted chain
 *   gives the peer.
 * - No X-Forwarded-For field, or none with an element: the peer. */
#ifndef ALBD_PROXY_CLIENTIP_H
#define ALBD_PROXY_CLIENTIP_H

#include <stdbool.h>
#include <stddef.h>

#include "common/ip.h"
#include "proxy/headers.h"

/* Most elements the right-to-left walk looks at. */
#define PX_XFF_MAX_HOPS 64

/* Parses one X-Forwarded-For element s[0..len) (whitespace already
 * trimmed) as described above. True with *out set. */
bool px_clientip_element(const char *s, size_t len, struct cm_ip *out);

/* Applies the rules above to the X-Forwarded-For fields of h[0..n) with
 * the trusted ranges trusted[0..n_trusted) (leftmost: the list holds
 * 0.0.0.0/0). True with *out set to the retrieved address; false when the
 * peer's address is the client's. */
bool px_clientip_from_xff(const struct px_hdr *h, size_t n, const struct cm_cidr *trusted,
                          size_t n_trusted, bool leftmost, struct cm_ip *out);

#endif
