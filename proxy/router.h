/* The route step's index: a listener's forwarding rules compiled once per
 * snapshot (kept across reloads while the listener is a copy) into
 *   exact hosts     -> a hash of the lowercased host,
 *   wildcard hosts  -> a hash of the literal tail after the last wildcard,
 *                      looked up at the few tail lengths that exist,
 *   (no host) paths -> a hash of exact paths and one of the literal prefix
 *                      before the first wildcard (looked up the same way:
 *                      the prefix tree's equivalent),
 *   the rest        -> a list in priority order,
 * so that a request looks at the rules that could match it, not at all of
 * them. Each candidate is then checked on every condition; the one with
 * the smallest priority wins (the reference's rule: first match by
 * priority, no specificity sorting), else the listener's default action.
 *
 * What a request is matched on (struct px_match_req, px_router_view):
 *   host   the Host / :authority without its port and a trailing '.',
 *          lowercased; patterns are lowercased too (case-insensitive);
 *   path   the normalised path (px_router_normalise): percent-encoded
 *          unreserved characters decoded, other escapes kept (hex in upper
 *          case), "." and ".." segments removed (".." stops at the root),
 *          "//" merged to "/"; never the query. Case-sensitive.
 *          An encoded '/', '\' or NUL (%2F %5C %00) is refused (400) on a
 *          listener with rules: whether it separates segments depends on
 *          the backend, so no rule can be sure what it names.
 *   query  key=value pairs split on '&', each percent-decoded, compared
 *          case-insensitively with wildcards;
 *   header name case-insensitive, value (OWS trimmed) case-sensitive with
 *          wildcards; any field of that name may match;
 *   cookie every name=value of every Cookie field, case-insensitive with
 *          wildcards;
 *   method one of the seven the reference names;
 *   sourceIp the retrieved client IP (px_req.client_addr) in a CIDR.
 * Wildcards: '*' any string (also '.' and '/'), '?' one character. No
 * regex: the manifest has no way to say one (the reference leaves its
 * encoding unconfirmed), so redirect captures ${1}..${3} are refused too.
 *
 * Thread-safety: a built router is shared by reference count (any
 * thread); its index never changes after px_router_new, and the only state
 * that does is the trafficLimit counters (atomics, px_router_admit). */
#ifndef ALBD_PROXY_ROUTER_H
#define ALBD_PROXY_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#include "common/ip.h"
#include "proxy/headers.h"
#include "reconciler/model-t.h"

struct px_router;
struct px_snapshot;

/* A request as the router sees it (every pointer borrowed). */
struct px_match_req {
    const char *host; /* lowercased, no port; "" when the request names none */
    size_t host_len;
    const char *path; /* normalised */
    size_t path_len;
    const char *query; /* raw, after '?' (NULL: none) */
    size_t query_len;
    unsigned method; /* an RC_METHOD_* bit, 0 for another method */
    const struct px_hdr *hdrs;
    size_t n_hdrs;
    const struct cm_ip *client;
};

/* Compiles l's rules into a new router (one reference). NULL when out of
 * memory or when l has no rules. */
struct px_router *px_router_new(const struct rc_listener *l);

/* The router of prev's listener of the same name when l is a copy of it
 * (the reconciler copied an unchanged listener: same digest, the very
 * same rule strings), with a new reference; else NULL. */
struct px_router *px_router_reuse(const struct rc_listener *l, const struct px_snapshot *prev);

struct px_router *px_router_ref(struct px_router *rt);
void px_router_unref(struct px_router *rt);

/* The index into l->rules of the first rule (by priority) that q matches,
 * or -1. rt was built from l, or from a listener l is a copy of. */
long px_router_match(const struct px_router *rt, const struct rc_listener *l,
                     const struct px_match_req *q);

/* The same answer by checking every rule in order: what the index must
 * agree with (unit tests), and the definition of a match. */
long px_router_match_linear(const struct rc_listener *l, const struct px_match_req *q);

/* Whether rule ru matches q on every condition. cidrs: ru's source
 * ranges parsed (NULL: parse them on the way). */
bool px_rule_matches(const struct rc_rule *ru, const struct cm_cidr *cidrs,
                     const struct px_match_req *q);

/* Glob match of s against pattern p ('*' any string, '?' one byte);
 * ASCII case-insensitive when icase. */
bool px_glob(const char *p, size_t pl, const char *s, size_t sl, bool icase);

/* Normalises the path part of a request target (in, len bytes, no query)
 * into out (room for len + 1 bytes) as described above; *out_len gets its
 * length (an empty path becomes "/"). Returns 0, or -1 for a malformed
 * escape or an encoded '/', '\' or NUL (answer 400). */
int px_router_normalise(const char *in, size_t len, char *out, size_t *out_len);

/* The host a request is matched on: host (an authority, len bytes) without
 * its port, brackets kept for IPv6, a trailing '.' dropped, lowercased
 * into out (size bytes). Returns its length, or 0 when it does not fit. */
size_t px_router_host(const char *host, size_t len, char *out, size_t size);

/* The RC_METHOD_* bit of a method token, 0 for any other method. */
unsigned px_router_method(const char *method);

/* Counts a request from client ip against rule i's trafficLimit (rt built
 * from a listener whose rule i has one). True when it is admitted. Lock-free
 * (compare-and-swap on one word per counter), from any worker thread:
 * exact for qps over fixed one-second windows of CLOCK_MONOTONIC_COARSE
 * (so up to twice qps may pass across a window boundary); perIpQps counts
 * in PX_LIMIT_IP_SLOTS slots per rule chosen by a hash of the address,
 * each holding one address (a 16-bit tag) at a time: two busy addresses
 * sharing a slot reset each other's count (more may pass, never fewer),
 * and two whose tags also collide share one budget. The counters live in
 * the router, so they last across reloads that keep it, and start again
 * when the listener changes. A request refused per IP is not counted
 * against qps. */
bool px_router_admit(const struct px_router *rt, size_t i, const struct cm_ip *ip);

#define PX_LIMIT_IP_SLOTS 4096

/* Bytes the router of rt holds (the memory-per-rule measurement). */
size_t px_router_bytes(const struct px_router *rt);

#endif
