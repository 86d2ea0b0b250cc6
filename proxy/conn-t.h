/* A client connection: transport (plain TCP or TLS over memory BIOs) plus
 * the protocol handler chosen after the handshake (h1 now, h2 later).
 * Shared by proxy/conn.c and the protocol handlers; nothing else looks
 * inside. */
#ifndef ALBD_PROXY_CONN_T_H
#define ALBD_PROXY_CONN_T_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <uv.h>

#include "proxy/outq.h"
#include "proxy/worker-t.h"

struct px_conn;
struct px_tls_io;

/* Bytes read from the socket at a time (and TLS plaintext at a time). */
#define PX_CONN_RBUF (16 * 1024)
/* Output written during one loop iteration is gathered here and sent once
 * at its end (one TLS record, one write syscall) instead of per call. */
#define PX_CONN_STAGE (16 * 1024)
/* The read, staging and decrypt buffers are all this size and come from
 * the worker's pool (px_worker.conn_bufs) only while bytes are in them. */
#define PX_CONN_BUF (16 * 1024)
/* A connection idle this long is parked: its TLS record buffers and its
 * handler's scratch are released (proxy/conn.c, px_proto.park). Not at
 * once: a keep-alive client's next request usually follows within
 * milliseconds, and parking costs a few frees and mallocs. */
#define PX_CONN_PARK_MS 500
/* TLS input buffered while the handler does not want input: reading
 * continues (no epoll change per request) up to this much. */
#define PX_CONN_TLS_IN_MAX (64 * 1024)

/* A protocol handler. Every callback runs on the worker's loop; a callback
 * that closes c (px_conn_close) must not touch c afterwards, and the
 * caller checks c->closing. */
struct px_proto {
    const char *name;
    /* Called once after the transport is up; 0 or -errno (c is closed). */
    int (*start)(struct px_conn *c);
    /* Plaintext from the client. Returns how many bytes were consumed; fewer
     * than len when the handler paused its input (the rest is offered again
     * after px_conn_want_input(c, true)). */
    size_t (*on_data)(struct px_conn *c, const char *data, size_t len);
    /* The client finished sending (TCP FIN or TLS close_notify). */
    void (*on_eof)(struct px_conn *c);
    /* Queued client output fell below PX_OUTQ_LOW after being above it. */
    void (*on_writable)(struct px_conn *c);
    /* The timer armed with px_conn_timer fired. */
    void (*on_timeout)(struct px_conn *c);
    /* px_conn_drain was called: close when idle, else after the response. */
    void (*drain)(struct px_conn *c);
    /* The worker moved to a new snapshot: when idle, move to it now (or
     * close if the listener is gone); when busy, after the response. */
    void (*on_snapshot)(struct px_conn *c);
    /* Whether nothing is in flight (between requests, no stream open, no
     * output pending): the connection may be parked. NULL: never parked. */
    bool (*idle)(struct px_conn *c);
    /* Parking: release every buffer and scratch the handler keeps for its
     * next request (taken again when it comes). Called only while idle()
     * is true; NULL: nothing to release. */
    void (*park)(struct px_conn *c);
    /* c is closing: release upstream connections now, free state in
     * free (called from the last close callback). */
    void (*on_close)(struct px_conn *c);
    void (*free)(struct px_conn *c);
};

/* How a listener picks the protocol handler of a connection once its
 * transport is up (proxy/protos.c; named by px_listener.protocols when the
 * snapshot is built). alpn is the protocol TLS negotiated (NULL, 0 for plain
 * TCP or none); never returns NULL. */
struct px_proto_choice {
    const char *name;
    const struct px_proto *(*choose)(const unsigned char *alpn, unsigned alpn_len);
};

enum px_conn_state {
    PX_CONN_HANDSHAKE, /* TLS handshake in progress */
    PX_CONN_OPEN,      /* a protocol handler runs */
    PX_CONN_FINISHING, /* flushing the last bytes, then shutdown and linger */
    PX_CONN_CLOSING,   /* handles closing; freed in the last close callback */
};

struct px_conn {
    struct px_conn *prev, *next; /* w->conns */
    struct px_worker *w;
    struct px_snapshot *snap;      /* one reference */
    const struct px_listener *lis; /* in snap */
    char bind_key[96];
    enum px_conn_state state;
    bool closing;      /* px_conn_close was called */
    bool draining;     /* px_conn_drain was called */
    bool want_input;   /* the handler accepts input */
    bool reading;      /* uv_read_start is active */
    bool eof;          /* the client sent EOF */
    bool eof_deferred; /* ... while paused: tell the handler once it consumed what came before */
    bool in_pump;      /* input_pump is on the stack */
    bool pump_again;   /* input_pump must loop once more */
    bool out_high;     /* output went over PX_OUTQ_HIGH; on_writable pending */
    bool tls_seen;     /* the first bytes looked like TLS */
    bool wr_shut;      /* px_conn_shutdown_write was called: no more output */
    bool wr_done;      /* ... and its shutdown completed */
    bool flush_queued; /* on w->flush_head, stage to send at the end of the iteration */
    struct px_conn *flush_next;
    /* The handshake's first step (the ClientHello) waits on w->hs_head
     * for the iteration's other work (conn.c: hs_defer); hs_begun once it
     * ran, later steps run as their bytes arrive. */
    bool hs_queued;
    bool hs_begun;
    struct px_conn *hs_prev, *hs_next;
    int open_handles;

    uv_tcp_t tcp;
    uv_timer_t timer;
    uint64_t deadline; /* loop time (ms) px_conn_timer asked for; 0: none */
    uint64_t timer_at; /* loop time the uv timer is armed for, while active */
    uv_shutdown_t shutdown_req;
    struct px_outq out;
    struct px_tls_io *tls; /* NULL for plain HTTP */

    const struct px_proto *proto;
    void *ps; /* the handler's state */

    /* Plaintext received and not yet consumed by the handler: points into
     * rbuf (plain) or plain (TLS). */
    const char *in;
    size_t in_len;
    /* PX_CONN_BUF-byte buffers from w->conn_bufs, NULL while not in use:
     * rbuf while a read is in progress (plain HTTP: until its bytes are
     * consumed), plain (TLS) while decrypted input waits, stage while
     * output waits for the end of the loop iteration. */
    char *plain;
    char *rbuf;
    char *stage;
    size_t stage_len;

    /* Idle tracking (px_conn_idle): linked on w->idle_head/idle_tail since
     * idle_since (uv_now); parked once the handler and TLS let go of their
     * buffers. */
    struct px_conn *idle_prev, *idle_next;
    uint64_t idle_since;
    bool idle_linked;
    bool parked;

    char client_ip[64];
    char client_port[8];
};

#endif
