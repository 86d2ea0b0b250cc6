/* The group-stickiness filter's state (proxy/group_sticky.c), embedded in
 * each exchange. Types only. */
#ifndef ALBD_PROXY_GROUP_STICKY_T_H
#define ALBD_PROXY_GROUP_STICKY_T_H

#include <stddef.h>

struct px_sink;

struct px_gsf {
    const struct px_sink *next;
    void *next_owner;
    char cookie[384]; /* the Set-Cookie value */
    size_t len;
};

#endif
