/* HTTP/1.x protocol handler for client connections: parses requests with
 * llhttp, forwards them to a backend of the listener's server group over a
 * pooled HTTP/1.1 (or 1.0) connection, and streams the response back with
 * backpressure both ways. */
#ifndef ALBD_PROXY_H1_H
#define ALBD_PROXY_H1_H

#include "proxy/conn-t.h"

/* Request limits (the reference's): a longer target is answered with 414,
 * a larger header block with 431. */
#define PX_H1_MAX_TARGET (32 * 1024)
#define PX_H1_MAX_HEADERS (32 * 1024)
/* One request header field (name and value bytes) may be this long; a
 * longer one is answered with 431 (nginx's default header buffer is 8 KiB
 * too, so no client that works behind it is refused here). */
#define PX_H1_MAX_FIELD (8 * 1024)

extern const struct px_proto px_h1_proto;

#endif
