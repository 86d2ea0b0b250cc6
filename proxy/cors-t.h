/* The CORS response filter's state (proxy/cors.c), embedded in each
 * exchange so that it costs no allocation. Types only. */
#ifndef ALBD_PROXY_CORS_T_H
#define ALBD_PROXY_CORS_T_H

#include <stdbool.h>
#include <stddef.h>

struct px_sink;
struct rc_cors;

#define PX_CORS_ORIGIN_MAX 256 /* a longer Origin is never allowed */

struct px_cors_f {
    const struct px_sink *next;
    void *next_owner;
    const struct rc_cors *co; /* the rule's (the snapshot outlives the exchange) */
    char origin[PX_CORS_ORIGIN_MAX];
    size_t origin_len;
};

#endif
