/* Connections to backend servers and the per-worker pools of idle ones. */
#ifndef ALBD_PROXY_UPSTREAM_T_H
#define ALBD_PROXY_UPSTREAM_T_H

#include <stdbool.h>
#include <sys/types.h>
#include <uv.h>

#include "proxy/outq.h"
#include "proxy/worker-t.h"

/* Fixed backend connect timeout (the reference's value, not configurable). */
#define PX_UPSTREAM_CONNECT_MS 5000
/* How long an idle pooled connection is kept, and how many per server. */
#define PX_UPSTREAM_IDLE_MS 30000
#define PX_UPSTREAM_IDLE_MAX 512
/* What one read of a backend connection takes at most: a 64 KiB body and
 * its head in one system call. The buffer is the worker's (px_worker.
 * up_rbuf), shared by all its backend connections: read callbacks consume
 * the bytes before they return. */
#define PX_UPSTREAM_RBUF (128 * 1024)
/* Plaintext buffer of a TLS backend connection. */
#define PX_UPSTREAM_PLAIN (16 * 1024)

struct px_upstream;
struct px_backend;
struct px_tls_io;

/* The user of an upstream connection. Callbacks run on the worker loop. */
struct px_upstream_cbs {
    /* The connection attempt finished: status 0, or a negative uv error
     * (UV_ETIMEDOUT after PX_UPSTREAM_CONNECT_MS). After an error the
     * upstream is already closing: forget it. */
    void (*on_connect)(void *owner, struct px_upstream *u, int status);
    /* Bytes from the backend (n > 0), or n < 0: UV_EOF or an error (a write
     * error is reported here too). The bytes are valid during the call. */
    void (*on_read)(void *owner, struct px_upstream *u, const char *data, ssize_t n);
    /* Queued output fell below PX_OUTQ_LOW after passing PX_OUTQ_HIGH. */
    void (*on_writable)(void *owner, struct px_upstream *u);
};

enum px_upstream_state {
    PX_UP_CONNECTING,
    PX_UP_ACTIVE, /* owned by a client exchange */
    PX_UP_IDLE,   /* in its pool */
    PX_UP_CLOSING,
};

struct px_upstream {
    uv_tcp_t tcp;
    uv_timer_t timer; /* connect timeout, then idle timeout while pooled */
    uv_connect_t connect_req;
    uv_shutdown_t shutdown_req; /* px_upstream_shutdown */
    struct px_outq out;
    enum px_upstream_state state;
    struct px_worker *w;
    /* Its server's registry entry (one reference): the idle pool is
     * backend->pools[w->id]. */
    struct px_backend *backend;
    /* In that pool's idle list while PX_UP_IDLE, its busy list while
     * connecting or active. */
    struct px_upstream *idle_prev, *idle_next;
    bool drain_armed; /* timer runs to the backend's drain deadline */
    /* uv_now() when it last went to its pool. The idle timer is not
     * stopped when the connection is taken nor restarted when it comes
     * back while it runs: when it fires early it re-arms for the rest. */
    uint64_t idle_since;
    const struct px_upstream_cbs *cbs;
    void *owner;
    bool reading;
    bool out_high;
    bool shut; /* px_upstream_shutdown was called: never pooled */
    /* Bytes read since the exchange began or ack_now last sent an ACK. */
    uint32_t unacked;
    int open_handles;
    /* HTTPS groups: the TLS session over the socket (set up at acquire,
     * handshake after the TCP connect, still PX_UP_CONNECTING until it
     * finishes) and the buffer plaintext is decrypted into. NULL: plain. */
    struct px_tls_io *tls;
    char *plain;
};

#endif
