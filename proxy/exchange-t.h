/* One forwarding exchange: the choice of a server group and of a server in
 * it, the backend connection (fresh or pooled) and failover between the
 * servers. Embedded by HTTP/1.x per connection and HTTP/2 per stream. */
#ifndef ALBD_PROXY_EXCHANGE_T_H
#define ALBD_PROXY_EXCHANGE_T_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "proxy/lb-t.h"
#include "proxy/alog-t.h"
#include "proxy/cors-t.h"
#include "proxy/group_sticky-t.h"
#include "proxy/resp_rules-t.h"
#include "proxy/upstream-t.h"
#include "proxy/worker-t.h"

struct px_group;
struct px_server;
struct px_cz;

#define PX_EXCHANGE_REQID_SIZE 129 /* PX_REQID_SIZE (proxy/reqid.h) */

/* What the protocol handler does with an exchange. Callbacks run on the
 * worker loop; owner is the pointer given to px_exchange_init. */
struct px_exchange_cbs {
    /* A backend connection is usable (x->u; pooled or just connected):
     * send the request head. */
    void (*ready)(void *owner);
    /* No backend can take the request: answer with status (503: no server
     * at all, 504: the last attempt timed out, 502: otherwise). x->u is
     * NULL. */
    void (*fail)(void *owner, int status);
    /* Backend bytes and backpressure, as in struct px_upstream_cbs. */
    void (*on_read)(void *owner, const char *data, ssize_t n);
    void (*on_writable)(void *owner);
    /* Optional: runs after a connection attempt's outcome was handled
     * (whatever ready / fail / the next attempt did). */
    void (*connect_done)(void *owner);
};

struct px_exchange {
    const struct px_exchange_cbs *cbs;
    void *owner;
    struct px_worker *w;
    const char *tag; /* "h1", "h2": the prefix of log lines */

    /* Set by the protocol handler for each request. */
    bool idempotent; /* GET HEAD OPTIONS PUT DELETE: may be sent again after a lost connection */
    bool body_sent;  /* body bytes went to a backend: no retry */

    struct px_group *group;
    struct px_server *server; /* the one being tried / used */
    struct px_upstream *u;    /* NULL while none */
    bool ready;               /* u is connected and the head may go */
    bool u_reused;            /* u came from the pool */
    bool retried_fresh;
    bool last_timeout; /* the last connect attempt timed out */
    unsigned attempts;
    /* Failover order (proxy/lb.c): the first server's index and how many
     * steps past it were offered; no limit on the group's size. */
    size_t first;
    size_t cursor;

    /* The response filters (px_filters_attach, proxy/req.c): the owner to
     * pass the sink px_req_start returned (owner itself when no filter
     * runs), and the compression filter's state (proxy/compress.c; kept
     * for the next request, freed by px_compress_release). */
    void *sink_owner;
    struct px_cz *cz;
    struct px_cors_f cors; /* the CORS filter's (proxy/cors.c) */
    struct px_rrf rrf;     /* the response-rule filter's (proxy/resp_rules.c) */
    struct px_gsf gsf;     /* group stickiness's Set-Cookie (proxy/group_sticky.c) */
    /* What the request brings to the scheduler (hash, sticky server):
     * px_lb_key_from_req, after px_exchange_begin. */
    struct px_lb_key lb_key;
    /* The Set-Cookie value of an Insert sticky session (proxy/sticky.c):
     * lives until the response head went to the sink. */
    char set_cookie[96];
    /* The request's X-Request-Id (proxy/reqid.h), "" when the listener
     * sends none. */
    char req_id[PX_EXCHANGE_REQID_SIZE];
    /* The access-log record of the request (proxy/alog.h). */
    struct px_alog_rec log;
};

#endif
