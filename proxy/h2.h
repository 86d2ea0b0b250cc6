/* HTTP/2 protocol handler for client connections on HTTPS listeners that
 * negotiated "h2" by ALPN (nghttp2). Every stream is forwarded to a backend
 * of the listener's server group as its own HTTP/1.1 exchange over a pooled
 * upstream connection (one per in-flight stream), with X-Forwarded-* as for
 * HTTP/1.1, bodies streamed with HTTP/2 flow control in both directions. */
#ifndef ALBD_PROXY_H2_H
#define ALBD_PROXY_H2_H

#include "proxy/conn-t.h"

/* SETTINGS_MAX_CONCURRENT_STREAMS albd advertises. */
#define PX_H2_MAX_STREAMS 128
/* SETTINGS_MAX_HEADER_LIST_SIZE: a larger request header block is
 * answered with 431 (its fields are not kept). */
#define PX_H2_MAX_HEADER_LIST (64 * 1024)
/* Request-body flow control window per stream (SETTINGS_INITIAL_WINDOW_SIZE):
 * the most request body albd holds for a stream whose backend is not ready
 * or not reading. */
#define PX_H2_STREAM_WINDOW (256 * 1024)
/* Rapid reset: more streams than this ended in error by one client within
 * PX_H2_RST_WINDOW_MS (its own RST_STREAM frames, and streams albd resets
 * or cuts off for what the client sent: protocol and flow-control errors, a
 * body over the limit or too slow) end the connection with GOAWAY
 * ENHANCE_YOUR_CALM. */
#define PX_H2_RST_MAX 200
#define PX_H2_RST_WINDOW_MS 10000

extern const struct px_proto px_h2_proto;

struct px_worker;

/* Serializes the output of every HTTP/2 session of w that backend reads
 * left for later (px_h2_flush_later, proxy/h2_stream.c) into its
 * connection's staged output. The worker calls it at the end of each loop
 * iteration, before the staged output is sent, and when the oldest has
 * waited long enough. */
void px_h2_flush_pending(struct px_worker *w);

#endif
