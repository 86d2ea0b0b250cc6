/* What a protocol handler (h1, later h2) may do with its client connection.
 * Call only from callbacks of c's worker loop. */
#ifndef ALBD_PROXY_CONN_IO_H
#define ALBD_PROXY_CONN_IO_H

#include <stdbool.h>
#include <stdint.h>

#include "proxy/conn-t.h"
#include "proxy/conn.h" /* px_conn_close */

/* Sends bytes to the client (copied; encrypted for TLS). Returns 0 or a
 * negative errno; on failure the caller closes c. */
int px_conn_write(struct px_conn *c, const uv_buf_t *bufs, unsigned n);

/* True when the client's queued output passed PX_OUTQ_HIGH and has not yet
 * fallen below PX_OUTQ_LOW (the handler's on_writable then runs): stop
 * reading the producer meanwhile. */
bool px_conn_congested(const struct px_conn *c);

/* Whether the handler wants input. Turning it on offers the bytes left over
 * from the last on_data at once, then resumes reading. */
void px_conn_want_input(struct px_conn *c, bool want);

/* Arms the connection timer for ms milliseconds (0 stops it); the
 * handler's on_timeout runs when it fires. Cheap enough to call twice per
 * request: a later deadline only moves a number, and the uv timer, when it
 * fires early, re-arms for what is left (no timer-heap work per request). */
void px_conn_timer(struct px_conn *c, uint64_t ms);

/* Graceful close: no more input is consumed, queued output (and a TLS
 * close_notify) is flushed, the write side is shut down, then c closes
 * after the client's EOF or a short linger. Idempotent. */
void px_conn_finish(struct px_conn *c);

/* Half-close (tunnels): queued output and, for TLS, a close_notify are
 * flushed, then the write side is shut down; input keeps flowing to the
 * handler. Later writes fail; px_conn_finish then closes c as soon as the
 * shutdown has completed. Idempotent. */
void px_conn_shutdown_write(struct px_conn *c);

/* Closes c at once with a TCP reset (SO_LINGER 0), dropping unsent output:
 * for a response cut short whose framing cannot say so (close-delimited),
 * a reset is the only way the client can tell it from a complete one.
 * Idempotent, like px_conn_close (conn.h). */
void px_conn_abort(struct px_conn *c);

/* Moves c to the worker's newest snapshot if it differs. Returns 0 (c->lis
 * is current) or -ENOENT when the newest snapshot no longer has c's
 * listening address: c keeps its old snapshot and must close after the
 * current response. Call only between requests. */
int px_conn_snapshot_refresh(struct px_conn *c);

/* True when the newest snapshot no longer has c's listening address. */
bool px_conn_listener_gone(const struct px_conn *c);

/* The handler went idle (nothing in flight, its idle() callback says so):
 * PX_CONN_PARK_MS from now, unless bytes arrive first, c is parked (TLS
 * record buffers and the handler's scratch released, px_proto.park).
 * Cheap and idempotent; arriving bytes end the idle time. */
void px_conn_idle(struct px_conn *c);

#endif
