/* An immutable configuration of the proxy, built from one rc_model.
 *
 * Published by one atomic pointer store (proxy/runtime.c); workers take a
 * reference per connection. Nothing in it changes after publication except
 * the reference count: state that changes while serving (pools, counts,
 * health, scheduler rotation) lives in the backend registry
 * (proxy/backend-t.h), which the snapshot only points into. Freed when the
 * last reference drops, on whichever thread that happens. */
#ifndef ALBD_PROXY_SNAPSHOT_T_H
#define ALBD_PROXY_SNAPSHOT_T_H

#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "reconciler/model-t.h"

struct px_alog_sink;
struct px_backend;
struct px_lb_state;
struct px_proto_choice;
struct px_registry;
struct px_router;

/* One backend server, resolved. */
struct px_server {
    const struct rc_server *model;
    /* Its registry entry (one reference): address, pools, counts, health.
     * The same entry for the same identity in every snapshot. */
    struct px_backend *backend;
    const char *key; /* backend->id.key: "address:port" ([v6]:port) */
    int weight;
    bool by_name; /* one of the addresses of a host name (model->address) */
    /* HTTPS groups: the group's client context (not owned) and the name
     * verified in the server's certificate (and sent as SNI unless an IP
     * literal): tls.serverName, else the server's address as written.
     * NULL for plain HTTP. */
    SSL_CTX *tls_ctx;
    const char *tls_name;
    int obs_slot; /* its metrics series (proxy/obs.h), "group/key" */
};

struct px_group {
    const struct rc_server_group *model;
    struct px_server *servers;
    size_t n_servers;
    /* Scheduler state in the registry (one reference; proxy/lb.c). */
    struct px_lb_state *lb;
    int total_weight;
    /* HTTPS groups: the client SSL_CTX (one reference, reused by a later
     * snapshot whose group has the same tls_digest); NULL for HTTP. */
    SSL_CTX *tls_ctx;
    char tls_digest[65];
    int obs_slot; /* its metrics series (proxy/obs.h) */
};

/* One listener (a Listener resource): its settings, bound on every address
 * of its instance (see px_bind). */
struct px_listener {
    const struct rc_listener *model;
    struct px_group *default_group;
    SSL_CTX *ssl_ctx; /* HTTPS: one reference owned by the snapshot; NULL for HTTP */
    /* SHA-256 over everything the SSL_CTX is made of (listener TLS
     * settings, certificate and policy digests): equal → reuse the SSL_CTX. */
    char tls_digest[65];
    /* Picks the protocol handler of each connection (HTTP/1.1 only, or
     * ALPN between HTTP/2 and HTTP/1.1): chosen here, so the transport
     * does not know the protocols. */
    const struct px_proto_choice *protocols;
    const char *scheme; /* "http" or "https" (X-Forwarded-Proto) */
    char port_str[8];   /* the listener port as text (X-Forwarded-Port) */
    /* Its forwarding rules compiled (proxy/router.c; one reference, shared
     * with the previous snapshot while the listener is unchanged); NULL
     * without rules. */
    struct px_router *router;
    /* The snapshot's groups and the model's, in the same order: a rule's
     * group (a model pointer) is groups[g - model_groups]. */
    struct px_group *groups;
    const struct rc_server_group *model_groups;
    /* spec.accessLog's destination (one reference), NULL when the
     * listener does not log (proxy/alog.h). */
    struct px_alog_sink *alog;
    int obs_slot; /* its metrics series (proxy/obs.h) */
};

/* One listening address of a listener. key identifies the socket across
 * snapshots: an unchanged key keeps its socket through a swap. */
struct px_bind {
    char key[96];    /* "HTTPS/[::]:8443" */
    size_t listener; /* index into px_snapshot.listeners */
    /* Which generation of sockets serves this key (set by the runtime
     * before publishing): a worker whose handle has another id replaces it. */
    uint64_t sock_id;
    struct sockaddr_storage addr;
    socklen_t addrlen;
};

struct px_snapshot {
    atomic_int refs;
    uint64_t generation;
    int n_workers;
    struct rc_model *model;       /* one reference; model strings outlive the snapshot */
    struct px_registry *registry; /* not owned: outlives every snapshot */
    struct px_listener *listeners;
    size_t n_listeners;
    struct px_group *groups; /* same order as model->groups */
    size_t n_groups;
    /* Groups taken whole from the previous snapshot (unchanged; snapshot.c). */
    size_t groups_reused;
    struct px_bind *binds;
    size_t n_binds;
};

#endif
