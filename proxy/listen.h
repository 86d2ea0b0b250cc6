/* Listening sockets: opening them (TCP for HTTP/HTTPS, UDP for QUIC later),
 * one per worker with SO_REUSEPORT so the kernel spreads connections, and
 * the worker's listening handles that accept on them. */
#ifndef ALBD_PROXY_LISTEN_H
#define ALBD_PROXY_LISTEN_H

#include <sys/socket.h>

#include "proxy/snapshot-t.h"
#include "proxy/worker-t.h"

/* Backlog of every TCP listening socket. */
#define PX_LISTEN_BACKLOG 511

/* One socket of type SOCK_STREAM (bound and listening) or SOCK_DGRAM
 * (bound) on addr, non-blocking, close-on-exec, with SO_REUSEADDR and
 * SO_REUSEPORT (and IPV6_V6ONLY for IPv6, so "::" and "0.0.0.0" are two
 * sockets). Returns the fd or -errno (-EADDRINUSE: the port is taken by a
 * socket without SO_REUSEPORT, or by another user). Any thread. */
int px_listen_socket(int type, const struct sockaddr *addr, socklen_t addrlen);

/* n sockets as px_listen_socket, one per worker, into fds[0..n-1]. Returns
 * 0, or -errno with every fd closed and set to -1. */
int px_listen_sockets(int type, const struct sockaddr *addr, socklen_t addrlen, int *fds, int n);

/* Worker side: serves bind b on w with fd (a listening TCP socket from
 * px_listen_sockets, now owned by the handle), accepting into
 * px_conn_accept. Failures are logged and fd closed. Worker loop only. */
void px_listen_start(struct px_worker *w, const struct px_bind *b, int fd);

/* Stops accepting on wl and closes it (memory freed in the close
 * callback); unlinks it from w->listens. Worker loop only. */
void px_listen_close(struct px_worker *w, struct px_wlisten *wl);

/* Balancing (see proxy/listen.c): a worker that accepts while it serves
 * clearly more connections than another hands the socket to that one.
 * px_listen_handoff_init sets up w's inbox and its wake-up handle on w's
 * loop before the worker thread starts (0 or a uv error);
 * px_listen_handoff_stop, on w's loop when it drains, refuses further
 * hand-overs and closes those not yet opened (then close
 * w->handoff_wake); uv_mutex_destroy(&w->handoff_lock) once every worker
 * is joined. */
int px_listen_handoff_init(struct px_worker *w);
void px_listen_handoff_stop(struct px_worker *w);

/* w's handle for a bind key, or NULL. */
struct px_wlisten *px_listen_find(struct px_worker *w, const char *key);

#endif
