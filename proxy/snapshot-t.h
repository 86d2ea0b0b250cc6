/* An immutable configuration of the proxy, built from one rc_model.
 *
 * Published by one atomic pointer store (proxy/runtime.c); workers take a
 * reference per connection. Nothing in it changes after publication except
 * the reference count and the per-worker scheduler state (each worker
 * touches only its own row, so no lock is needed). Freed when the last
 * reference drops, on whichever thread that happens. */
#ifndef ALBD_PROXY_SNAPSHOT_T_H
#define ALBD_PROXY_SNAPSHOT_T_H

#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include "reconciler/model-t.h"

/* One backend server, resolved. */
struct px_server {
    const struct rc_server *model;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    /* "address:port" ([v6]:port), the identity of the backend across
     * snapshots: upstream pools and, later, health state are keyed by it. */
    char key[64];
    int weight;
};

struct px_group {
    const struct rc_server_group *model;
    struct px_server *servers;
    size_t n_servers;
    /* Smooth weighted round robin state: n_workers rows of n_servers
     * counters. Row w is touched only by worker w. */
    int *wrr;
    int total_weight;
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
    const char *scheme; /* "http" or "https" (X-Forwarded-Proto) */
    char port_str[8];   /* the listener port as text (X-Forwarded-Port) */
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
    struct rc_model *model; /* one reference; model strings outlive the snapshot */
    struct px_listener *listeners;
    size_t n_listeners;
    struct px_group *groups; /* same order as model->groups */
    size_t n_groups;
    struct px_bind *binds;
    size_t n_binds;
};

#endif
