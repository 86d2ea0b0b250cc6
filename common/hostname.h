/* Host-name rules, in one place for every folder: which names a
 * certificate may carry (validation, reconciler/cert.c) and which host
 * names a certificate name covers (SNI and Host matching, proxy/tls_ctx.c),
 * exactly as the reference's "Wildcard certificate rules" state them. One
 * copy, so that what validation accepts and what the proxy matches cannot
 * drift apart. Pure: no allocation, no locale, safe from any thread. */
#ifndef ALBD_COMMON_HOSTNAME_H
#define ALBD_COMMON_HOSTNAME_H

#include <stdbool.h>
#include <stddef.h>

/* Longest host name (RFC 1035: 253 characters without the trailing dot).
 * Longer names are never valid and never match. */
#define CM_HOSTNAME_MAX 253

/* True when pattern is a legal wildcard certificate name per the
 * reference's "Wildcard certificate rules": exactly one '*', as the first
 * character of the leftmost label ("*.example.com", "*test.example.com"),
 * the rest of that label made of [0-9A-Za-z-], followed by at least one
 * non-empty label without '*'. "test*.example.com", "*.*.com", "a.*.com",
 * "*", "*." and "*.example..com" are not. A name without '*' returns
 * false (it is not a wildcard); NULL returns false. */
bool cm_hostname_wildcard_valid(const char *pattern);

/* True when a certificate name (pattern: an exact name or a wildcard) covers
 * host (host_len bytes, not necessarily NUL-terminated). Case-insensitive;
 * one trailing dot on host is ignored. Exact names compare whole. A wildcard
 * matches one label level only; its '*' stands for one or more characters of
 * [0-9A-Za-z-]; a host whose leftmost label is an IDNA A-label ("xn--...")
 * matches only when '*' is the whole leftmost label of the pattern. An
 * invalid wildcard pattern matches nothing. */
bool cm_hostname_match_n(const char *pattern, const char *host, size_t host_len);

/* cm_hostname_match_n() for a NUL-terminated host. */
bool cm_hostname_match(const char *pattern, const char *host);

/* Writes host's canonical form (lowercase, one trailing dot dropped) to out
 * (outsz bytes, NUL-terminated) and returns its length, or -1 when host is
 * empty, longer than CM_HOSTNAME_MAX, has an empty label or a byte outside
 * [0-9A-Za-z._-] (such a name can never select a certificate). */
int cm_hostname_normalize(const char *host, size_t host_len, char *out, size_t outsz);

#endif
