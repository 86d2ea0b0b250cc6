/* A byte tunnel between a client and a backend connection: after an HTTP/1.1
 * Upgrade (WebSocket) today, an HTTP/2 extended CONNECT stream later. Bytes
 * are copied both ways with backpressure; a FIN from one side shuts down the
 * write side toward the other (half-close); the tunnel ends when both
 * directions have finished or on the first error. The backend connection is
 * never pooled afterwards. Call only on the owning worker's loop. */
#ifndef ALBD_PROXY_TUNNEL_H
#define ALBD_PROXY_TUNNEL_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/upstream-t.h"

struct px_tunnel;

/* The client side of a tunnel, implemented by its owner (h1 now; an h2
 * stream later). ctx is the owner's. */
struct px_tunnel_client {
    /* Sends backend bytes to the client (copied). 0 or a negative errno. */
    int (*write)(void *ctx, const char *data, size_t len);
    /* True while the client's output is above its high-water mark: the
     * tunnel stops reading the backend until px_tunnel_client_writable. */
    bool (*congested)(void *ctx);
    /* Pauses (false) or resumes (true) delivery of client bytes to
     * px_tunnel_client_data (the backend's output is congested). */
    void (*want_input)(void *ctx, bool on);
    /* The backend finished sending: half-close toward the client. */
    void (*shutdown)(void *ctx);
    /* Bytes moved one way or the other: the idle clock restarts. */
    void (*activity)(void *ctx);
    /* The tunnel is over: err 0 when both directions finished cleanly, else
     * a negative errno. The owner closes the client side and frees the
     * tunnel (possibly from inside this call); the tunnel does not touch
     * itself after calling it. */
    void (*done)(void *ctx, int err);
};

/* Takes over u (an active backend connection; its callbacks now go to the
 * tunnel) and starts reading it. NULL on allocation failure (u untouched). */
struct px_tunnel *px_tunnel_new(struct px_upstream *u, const struct px_tunnel_client *client,
                                void *ctx);

/* Client bytes for the backend. Returns how many were taken (all of them,
 * or 0 once the tunnel is finishing); may call client->want_input(false)
 * or client->done. */
size_t px_tunnel_client_data(struct px_tunnel *t, const char *data, size_t len);

/* The client finished sending: the backend's write side is shut down. */
void px_tunnel_client_eof(struct px_tunnel *t);

/* The client's output fell below its low-water mark: read the backend. */
void px_tunnel_client_writable(struct px_tunnel *t);

/* Closes the backend connection (never pooled) and frees t. NULL is a
 * no-op. No callback runs afterwards. */
void px_tunnel_free(struct px_tunnel *t);

#endif
