/* Certificate name rules the reconciler checks and the proxy matches by
 * (proxy/sni.c calls these, so validation and matching cannot drift apart).
 * Pure: no allocation, no locale. */
#ifndef ALBD_RECONCILER_NAMES_H
#define ALBD_RECONCILER_NAMES_H

#include <stdbool.h>

/* Longest host name (RFC 1035: 253 characters without the trailing dot). */
#define RC_NAME_MAX 253

/* True when pattern is a legal wildcard certificate name per the
 * reference's "Wildcard certificate rules": exactly one '*', as the first
 * character of the leftmost label ("*.example.com", "*test.example.com"),
 * the rest of that label made of [0-9A-Za-z-], followed by at least one
 * non-empty label without '*'. "test*.example.com", "*.*.com", "a.*.com",
 * "*", "*." and "*.example..com" are not. A name without '*' returns
 * false (it is not a wildcard). */
bool rc_wildcard_valid(const char *pattern);

#endif
