/* The access log (spec.accessLog of a Listener): one JSON object per line
 * per request, and per WebSocket tunnel at its end, with the field names
 * of MANIFESTS.md ("Access log fields"). Types only; see proxy/alog.h. */
#ifndef ALBD_PROXY_ALOG_T_H
#define ALBD_PROXY_ALOG_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct px_alog_sink;

/* One request's record: embedded in its exchange (struct px_exchange,
 * one per HTTP/1.x connection or HTTP/2 stream). It feeds the labelled
 * metrics (proxy/obs.h) of every request, and the access log of a
 * listener that logs: the request's fields are written into line when it
 * starts (its strings live in protocol buffers that are reused later);
 * the response's at the end. Zeroed memory is an idle record. */
struct px_alog_rec {
    bool on;                   /* started, not ended */
    int ls, gs, ss;            /* metric slots: listener, group, server (-1: none) */
    struct px_alog_sink *sink; /* NULL: this request is not logged */
    char *line;                /* heap; the object so far, without its closing brace */
    size_t len, cap;
    int wid;          /* the worker's id: its slot in the sink */
    double sample2xx; /* share of 1xx-3xx lines kept */
    bool held;        /* holds a reference on sink (a tunnel outlives its snapshot) */
    bool has_group;   /* server_group was written */
    bool has_id;      /* request_id was written */
    bool has_rule;    /* rule was written */
    uint64_t t0;      /* uv_hrtime() at the start (ns) */
    /* uv_hrtime() when a backend connection was ready, its response head
     * arrived, its response ended; 0 = not (yet). */
    uint64_t t_connect, t_first, t_up_end;
    int upstream_status; /* 0 = none */
    uint64_t bytes_in;   /* request body bytes (tunnel: client to backend) */
    uint64_t bytes_out;  /* response body bytes (tunnel: backend to client) */
    char upstream[64];   /* "address:port" of the backend used, "" = none */
    /* albd's reason, when it answered before the record ends (HTTP/2
     * streams end when nghttp2 closes them); static string or NULL. */
    const char *reason;
};

#endif
