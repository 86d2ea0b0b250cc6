/* The backend registry: state about each backend server that outlives
 * snapshots (idle connection pools per worker, in-flight and connection
 * counts, health verdict, slow-start clock) and the per-group scheduler
 * states of proxy/lb.c. Entries are keyed by identity, not by snapshot, so
 * a reload that keeps a server keeps its entry (same pointer, same counts);
 * an entry nothing references any more is freed. */
#ifndef ALBD_PROXY_BACKEND_T_H
#define ALBD_PROXY_BACKEND_T_H

#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

struct px_upstream;
struct px_lb_state;
struct px_dns;
struct px_sticky;

#define PX_CACHE_LINE 64

/* The identity of a backend server: two servers with equal identities
 * share one registry entry (and so its pools). */
struct px_backend_id {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    /* "address:port" ([v6]:port): the readable identity, used in logs and
     * as the registry's lookup key. */
    char key[64];
    /* "" for plain HTTP; for HTTPS groups (proxy/upstream_tls.h) a digest
     * of the group's TLS settings and the name verified, so that a TLS
     * pool is never used by a plain group, nor by a group that trusts
     * other CAs, sends another client certificate or checks another name. */
    char tls[17];
};

/* Health verdict of a backend (written by the prober of proxy/health.c,
 * and set to DOWN by passive ejection in proxy/exchange.c; read lock-free
 * by server choice). A backend no probe has judged yet is
 * PX_HEALTH_UNKNOWN, which counts as usable, so that a new group is never
 * empty at start-up. */
enum px_health {
    PX_HEALTH_UNKNOWN = 0,
    PX_HEALTH_UP,
    PX_HEALTH_DOWN,
};

/* The idle connections of one backend on one worker; touched only by that
 * worker (proxy/upstream.c). */
struct px_pool {
    struct px_upstream *idle; /* most recently released first */
    unsigned n_idle;
    SSL_SESSION *tls_session; /* HTTPS groups: the last session, offered on connect */
    struct px_upstream *busy; /* connecting or serving a request (draining closes them) */
};

/* px_backend.drain_at when the server no longer serves any group and
 * connectionDrain is off: its connections finish with their clients. */
#define PX_DRAIN_NO_DEADLINE UINT64_MAX

struct px_backend {
    /* Read on every pick, written rarely: the identity, the pools, and
     * the health verdict and slow-start clock a health checker writes. */
    struct px_registry *reg;
    struct px_backend_id id;
    struct px_pool *pools;           /* reg->n_workers entries, [w] only by worker w */
    atomic_int health;               /* enum px_health */
    atomic_uint_fast64_t slow_start; /* ms (uv_hrtime()/1e6) the backend came up; 0: none */
    /* Draining (proxy/drain.c): 0 while some group sends it requests; else
     * when (ms, uv_hrtime()/1e6) its remaining connections are cut, or
     * PX_DRAIN_NO_DEADLINE. */
    atomic_uint_fast64_t drain_at;
    struct px_backend *next; /* hash chain in reg->buckets, under reg->lock */

    /* Written by every worker as connections and requests come and go: on
     * their own cache line, so that picks do not miss on them. inflight:
     * upstream connections serving a request now (connecting, or owned by
     * an exchange or a tunnel), over every worker, what a least-connections
     * scheduler compares; connections: open ones, idle included. */
    alignas(PX_CACHE_LINE) atomic_int inflight;
    atomic_int connections;
    /* Passive ejection (proxy/health.c): connect failures and resets in a
     * row seen by exchanges on any worker (cleared by a response byte),
     * and how many of them mark the backend DOWN before the next probe
     * (the prober sets it: the unhealthy threshold; 0 = never, when no
     * health check covers the backend). */
    atomic_int passive_failures;
    atomic_int eject_after;
    /* References: one per snapshot server that names it, one per open
     * upstream connection (idle ones included). Freed when it drops to 0. */
    atomic_int refs;
};

/* The registry itself: one per runtime, shared by every worker. The lock
 * guards the lists; it is taken when a snapshot is built, when an entry
 * dies, and when a worker stops, never to pick a server or a connection. */
#define PX_REGISTRY_BUCKETS 1024
#define PX_LB_BUCKETS 4096
struct px_registry {
    uv_mutex_t lock;
    int n_workers;
    size_t n_backends;
    struct px_backend *buckets[PX_REGISTRY_BUCKETS];
    /* proxy/lb.c: the load-balancing states, hashed by key and by group
     * name (chains, newest first), and how many there are. */
    struct px_lb_state *lb_by_key[PX_LB_BUCKETS], *lb_by_name[PX_LB_BUCKETS];
    size_t n_lb_states;
    /* Addresses of host-name servers (proxy/dns.c), read by snapshot
     * builds; agent thread only, NULL when names are not resolved. */
    struct px_dns *dns;
    struct px_sticky *sticky;      /* proxy/sticky.c: cookie secret, Server table */
};

#endif
