/* Client connections: the data plane (proxy/conn.c, proxy/h1.c,
 * proxy/upstream.c). The worker (proxy/worker.c) calls these. */
#ifndef ALBD_PROXY_CONN_H
#define ALBD_PROXY_CONN_H

#include <sys/socket.h>

#include "proxy/worker-t.h"

/* Serves fd, a connection just accepted on bind key (proxy/listen.c) for
 * w->snap->listeners[listener], from peer (the address accept4 filled
 * in); fd is owned by the connection from here on, closed on any failure.
 * The connection takes a reference on w->snap. Failures are counted and
 * logged, never fatal. */
void px_conn_accept(struct px_worker *w, const char *key, size_t listener, int fd,
                    const struct sockaddr *peer, socklen_t peer_len);

/* Asks c to finish what it is doing and close: an idle keep-alive
 * connection closes now, one with a request in flight closes after its
 * response (HTTP/1.1 "Connection: close"). Idempotent. */
void px_conn_drain(struct px_conn *c);

/* The worker moved to a new snapshot (w->snap). An idle keep-alive
 * connection moves to it now if its bind key is still there, and closes now
 * if not; a busy one does the same after its current request. */
void px_conn_on_snapshot(struct px_conn *c);

/* Closes c at once (drain deadline passed). Idempotent; memory is freed in
 * the last close callback. */
void px_conn_close(struct px_conn *c);

/* The next connection in w->conns after c (NULL at the end). Lets the worker
 * walk the list without knowing struct px_conn. */
struct px_conn *px_conn_next(struct px_conn *c);

/* Sends the output every connection of w staged during this loop
 * iteration. The worker calls it from its prepare and check handles. */
void px_conn_flush_all(struct px_worker *w);

/* Runs the handshake steps that wait (a ClientHello each: the costly step,
 * key exchange and signature) for up to PX_CONN_HS_BUDGET_US, oldest
 * first, at least one. Called after the loop iteration's I/O callbacks,
 * so that requests and responses on established connections read in the
 * same iteration are not queued behind new connections' handshakes, and
 * a burst of new connections cannot hold them for longer than the budget
 * (HAProxy runs TLS handshakes in its "heavy" task class for the same
 * reason). What is left runs in the next iterations. Output they staged
 * is the caller's to send (px_conn_flush_all). */
void px_conn_run_handshakes(struct px_worker *w);
enum { PX_CONN_HS_BUDGET_US = 1000 };

/* The worker's share of the connection machinery: px_conn_worker_init sets
 * up its buffer pools (before its loop runs); px_conn_worker_close closes
 * the parking timer (with the worker's other handles, when it drains);
 * px_conn_worker_cleanup frees the cached buffers (after the loop closed,
 * every connection freed). */
void px_conn_worker_init(struct px_worker *w);
void px_conn_worker_close(struct px_worker *w);
void px_conn_worker_cleanup(struct px_worker *w);

#endif
