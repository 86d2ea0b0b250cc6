/* Sticky sessions (a ServerGroup's stickySession): the cookie that pins a
 * client to a server, read from requests and written or observed on
 * responses.
 *
 * Insert: albd sets SERVERID=<value> (Max-Age cookieTimeoutSeconds, Path=/,
 * HttpOnly) on every response from a backend, so the lifetime counts from
 * the client's last response. The value is the first 12 bytes of
 * HMAC-SHA256 over the server's "address:port" under a random secret made
 * when albd starts (hex, PX_STICKY_VALUE_LEN characters): it does not
 * reveal the address, is the same on every worker and across reloads, and
 * changes when albd restarts (each client is then pinned afresh once).
 *
 * Server: the backend sets its own cookie (stickySession.cookie); albd
 * remembers which server set which value in a fixed-size table
 * (PX_STICKY_TABLE_ENTRIES, 4-way sets, a new value evicts an old one of
 * its set), shared by the workers without locks, and sends a request
 * that carries a remembered value to that server. The table lives as long
 * as the process.
 *
 * Either way a cookie naming a server that is gone, weight 0 or unusable
 * is ignored: the scheduler chooses (and the response pins the client to
 * the new server). */
#ifndef ALBD_PROXY_STICKY_H
#define ALBD_PROXY_STICKY_H

#include <stdbool.h>
#include <stdint.h>

#include "proxy/backend_h1.h"
#include "proxy/exchange-t.h"
#include "proxy/headers.h"
#include "proxy/req-t.h"
#include "proxy/snapshot-t.h"

#define PX_STICKY_INSERT_COOKIE "SERVERID"
#define PX_STICKY_VALUE_LEN 24
#define PX_STICKY_TABLE_ENTRIES 65536

struct px_sticky;

/* The registry's sticky state: a fresh random secret and an empty Server
 * table. NULL when out of memory or without randomness. Any thread. */
struct px_sticky *px_sticky_new(void);

/* Frees s (wiping the secret). NULL is a no-op. */
void px_sticky_free(struct px_sticky *s);

/* The Insert cookie value of the server whose identity is key. */
void px_sticky_value(const struct px_sticky *s, const char *key, char out[PX_STICKY_VALUE_LEN + 1]);

/* The Server table: remembers that the backend cookie value v (n bytes)
 * of group `group` was set by the server of identity ident; recall finds
 * it (false: not remembered or evicted). Lock-free; any thread. */
void px_sticky_remember(struct px_sticky *s, const char *group, const char *v, size_t n,
                        uint32_t ident);
bool px_sticky_recall(const struct px_sticky *s, const char *group, const char *v, size_t n,
                      uint32_t *ident);

/* The value of the cookie named name in the Cookie fields of h (n
 * fields), first occurrence; false when absent or empty. */
bool px_sticky_cookie(const struct px_hdr *h, size_t n, const char *name, const char **v,
                      size_t *vlen);

/* The server of g (stickySession enabled) that r's cookie names, or NULL. */
struct px_server *px_sticky_server(const struct px_group *g, const struct px_req *r);

/* Prepares the response of exchange x (x->group, x->server set when the
 * head arrives) parsed by bp: for a group with stickySession, a hook that
 * adds the Insert cookie to, or reads the Server cookie from, the final
 * response head before it reaches the sink. Call after px_bresp_init. */
void px_sticky_watch(struct px_exchange *x, struct px_bresp *bp);

#endif
