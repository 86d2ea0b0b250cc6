/* The query string of an admin request (RFC 3986 query, HTML form
 * encoding): parameters separated by '&', "name=value", '%XX' escapes and
 * '+' for a space in both name and value. Pure; thread-safe. */
#ifndef ALBD_AGENT_QUERY_H
#define ALBD_AGENT_QUERY_H

#include <stddef.h>

/* Longest decoded value returned, bytes (all occurrences joined). */
#define AG_QUERY_VALUE_MAX 4096

/* Finds every parameter called name in query (the text after '?', without
 * a fragment; NULL or "" has none), percent-decodes each value and joins
 * them with sep (several "l=" parameters are ANDed as one selector joined
 * by ','). A parameter without '=' has the empty value.
 *
 * Returns 1 with a malloc'd NUL-terminated string in *out (caller frees),
 * 0 with *out NULL when name does not occur, or -1 with *out NULL and a
 * message in err: a malformed escape ("%4", "%zz"), an escaped NUL byte,
 * a joined value longer than AG_QUERY_VALUE_MAX, or out of memory. */
int ag_query_get(const char *query, const char *name, char sep, char **out, char *err,
                 size_t errlen);

#endif
