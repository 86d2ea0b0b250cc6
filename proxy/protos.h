/* The protocol choices a listener can name (struct px_proto_choice): the
 * only place that knows which client protocols exist. HTTP/3 adds its
 * choice here. */
#ifndef ALBD_PROXY_PROTOS_H
#define ALBD_PROXY_PROTOS_H

#include "proxy/conn-t.h"

/* HTTP listeners: HTTP/1.x on every connection. */
extern const struct px_proto_choice px_protocols_http1;
/* HTTPS listeners: HTTP/2 when ALPN chose "h2", else HTTP/1.x. */
extern const struct px_proto_choice px_protocols_alpn;

#endif
