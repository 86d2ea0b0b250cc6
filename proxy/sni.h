/* Server name rules for certificates: which names a certificate may carry
 * and which host names it covers, exactly as the reference's "Wildcard
 * certificate rules" state them. Pure functions: no allocation, no locale,
 * safe from any thread. */
#ifndef ALBD_PROXY_SNI_H
#define ALBD_PROXY_SNI_H

#include <stdbool.h>
#include <stddef.h>

/* Longest host name we consider (RFC 1035: 253 characters without the
 * trailing dot). Longer names never match. */
#define PX_SNI_NAME_MAX 253

/* rc_wildcard_valid() (reconciler/names.h), which validation uses too.
 * True when pattern is a usable wildcard certificate name: exactly one '*',
 * as the first character of the leftmost label ("*.example.com",
 * "*test.example.com"), the rest of that label made of [0-9A-Za-z-], and at
 * least one non-empty label after it. "test*.example.com", "*.*.com",
 * "a.*.com", "*" and "*." are not. A name without '*' is not a wildcard and
 * returns false. */
bool px_sni_wildcard_valid(const char *pattern);

/* True when a certificate name (pattern: an exact name or a wildcard) covers
 * host (host_len bytes, not necessarily NUL-terminated). Case-insensitive;
 * one trailing dot on host is ignored. Exact names compare whole. A wildcard
 * matches one label level only; its '*' stands for one or more characters of
 * [0-9A-Za-z-]; a host whose leftmost label is an IDNA A-label ("xn--...")
 * matches only when '*' is the whole leftmost label of the pattern. An
 * invalid wildcard pattern matches nothing. */
bool px_sni_match_n(const char *pattern, const char *host, size_t host_len);

/* px_sni_match_n() for a NUL-terminated host. */
bool px_sni_match(const char *pattern, const char *host);

/* Writes host's canonical form (lowercase, one trailing dot dropped) to out
 * (outsz bytes, NUL-terminated) and returns its length, or -1 when host is
 * empty, longer than PX_SNI_NAME_MAX, has an empty label or a byte outside
 * [0-9A-Za-z._-] (such a name can never select a certificate). */
int px_sni_normalize(const char *host, size_t host_len, char *out, size_t outsz);

#endif
