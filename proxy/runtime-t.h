/* The runtime shared by the agent thread and the workers. */
#ifndef ALBD_PROXY_RUNTIME_T_H
#define ALBD_PROXY_RUNTIME_T_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "proxy/worker-t.h"

struct px_dns;
struct px_prober;

/* The listening sockets of one bind key, one per worker, created by the
 * agent thread (so a bind error is known before publishing) and taken by
 * each worker with uv_tcp_open. fds[i] is -1 once worker i took it. */
struct rt_socks {
    char key[96];
    uint64_t sock_id;
    int *fds;
    struct rt_socks *next;
};

struct px_runtime {
    int n_workers;
    int cpus; /* in the affinity mask at start; fewer than n_workers: the
               * workers take turns (px_worker.take_turns) */
    struct px_worker *workers;
    /* Guards `published` against a worker's load+ref racing the agent's
     * unref of the previous snapshot, and the socket table. Taken only on
     * reconfiguration, never on the request path. */
    uv_mutex_t lock;
    struct px_snapshot *published; /* one reference, owned by the runtime */
    /* The last snapshot built but not published because a port would not
     * bind (one reference, or NULL). The agent then applies without that
     * listener, and tries it again at every reconcile: its SSL_CTX (2,500
     * certificates take seconds to load) is taken from here instead of
     * being built again. Dropped once all of them serve. */
    struct px_snapshot *spare;
    struct rt_socks *socks;
    uint64_t next_sock_id;
    uint64_t generation;
    /* Backend entries and scheduler states shared by every snapshot
     * (proxy/backend.c); freed at stop, once nothing references it. */
    struct px_registry *registry;
    /* Host-name servers' resolutions (proxy/dns.c), on the agent loop;
     * NULL until px_runtime_start_dns. Also reg->dns. */
    struct px_dns *dns;
    struct px_prober *prober;     /* the prober (proxy/health.c): one per process */
    struct px_tls_keys *tls_keys; /* shared by every SSL_CTX, so tickets survive swaps */
    bool ticket_keys_from_files;
    bool share_ports; /* --share-ports: skip the check of sharecheck.h */
    atomic_bool stopping;
    unsigned
        drain_ms; /* written before workers read it: at start, and at stop before waking them */
};

#endif
