/* What a request brings to server choice besides its group: the hash a
 * consistent-hash scheduler places it by and the server its sticky
 * cookie names. Types only. */
#ifndef ALBD_PROXY_LB_T_H
#define ALBD_PROXY_LB_T_H

#include <stdbool.h>
#include <stdint.h>

struct px_server;

struct px_lb_key {
    /* Sch: a hash of the retrieved client IP; Uch: of the query
     * parameter's value (has_hash false when the request has none: the
     * group's Wrr order serves it). */
    bool has_hash;
    uint64_t hash;
    /* The server the request's sticky-session cookie names (a server of
     * the request's group, usable or not), or NULL. */
    struct px_server *sticky;
};

#endif
