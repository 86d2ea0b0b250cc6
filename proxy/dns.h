/* Host-name servers: the resolutions of the server addresses that are
 * names, kept on the agent thread, off the request path (see dns.c). */
#ifndef ALBD_PROXY_DNS_H
#define ALBD_PROXY_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <time.h>
#include <uv.h>

#include "reconciler/model-t.h"

/* A name is resolved again every PX_DNS_REFRESH_MS after a success; after
 * a failure sooner: PX_DNS_RETRY_MIN_MS, doubling at each further failure
 * up to PX_DNS_REFRESH_MS. */
#define PX_DNS_REFRESH_MS 30000
#define PX_DNS_RETRY_MIN_MS 1000
/* At most this many addresses of one name become servers. */
#define PX_DNS_MAX_ADDRS 32

struct px_dns;

/* A resolver on loop (the agent's). changed(arg) is called on that loop
 * when the addresses of a name in use changed (the caller publishes a
 * snapshot built with the new ones). NULL when out of memory. */
struct px_dns *px_dns_new(uv_loop_t *loop, void (*changed)(void *arg), void *arg);

/* Starts resolving every server host name of m not known yet (known names
 * keep their addresses and schedule). Call before building a snapshot of
 * m; a new name has no addresses until its first answer arrives. */
void px_dns_want(struct px_dns *d, const struct rc_model *m);

/* Forgets the names m does not use (call once m is published). */
void px_dns_prune(struct px_dns *d, const struct rc_model *m);

/* The addresses name resolved to (port 0, sorted, no duplicates): their
 * count, and the array in *out (valid until the next call on this
 * resolver's loop). 0 when unknown, not resolved yet, or not resolving.
 * d may be NULL (then 0). */
size_t px_dns_addrs(const struct px_dns *d, const char *name, const struct sockaddr_storage **out);

/* What /status shows about one name. */
struct px_dns_state {
    bool known;    /* the resolver tracks this name */
    bool resolved; /* it has addresses now */
    size_t n_addrs;
    char addrs[PX_DNS_MAX_ADDRS][48]; /* text, no port */
    char error[128];                  /* the last attempt's failure, "" if it succeeded */
    time_t last_ok;                   /* wall time of the last success, 0 = never */
    time_t last_attempt;              /* wall time of the last answer, 0 = none yet */
};
void px_dns_state(const struct px_dns *d, const char *name, struct px_dns_state *out);

/* Stops every timer and lookup (the loop can then end). Idempotent. */
void px_dns_close(struct px_dns *d);

/* Frees d once its loop has run the close callbacks (uv_run returned).
 * NULL is a no-op. */
void px_dns_free(struct px_dns *d);

/* Tests: sets name's addresses as if it had just resolved to them (n = 0:
 * failed with UV_EAI_NONAME), without a lookup. 0 or -ENOMEM. */
int px_dns_set(struct px_dns *d, const char *name, const struct sockaddr_storage *addrs, size_t n);

#endif
