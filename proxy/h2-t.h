/* The state of an HTTP/2 connection and of its streams, shared by
 * proxy/h2.c (the session: nghttp2, request header blocks, output) and
 * proxy/h2_stream.c (a stream's exchange: backend side and response
 * sink). Types and constants only; nothing outside these two files looks
 * inside. */
#ifndef ALBD_PROXY_H2_T_H
#define ALBD_PROXY_H2_T_H

#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stdint.h>

#include "proxy/backend_h1.h"
#include "proxy/buf.h"
#include "proxy/conn-t.h"
#include "proxy/exchange-t.h"
#include "proxy/hdrlist.h"
#include "proxy/mempool.h"
#include "proxy/req-t.h"
#include "proxy/snapshot-t.h"

/* Response body a stream holds for its client before pausing its backend,
 * and the level at which it resumes. */
#define RESP_HIGH (128 * 1024)
#define RESP_LOW (32 * 1024)
/* Bytes handed to the TLS layer at once: one full TLS record. A DATA frame
 * is capped so that it fits one record with its 9-byte header. */
#define OBUF_SIZE 16384
#define DATA_MAX (OBUF_SIZE - 9)
/* The connection-level receive window: streams are limited by their own
 * window, the connection only by how many streams are open. */
#define CONN_WINDOW (16 * 1024 * 1024)
/* Recycled stream objects kept per connection, and how large their
 * buffers may stay while they wait. */
#define FREE_STREAMS_MAX 32
#define KEEP_BUF_MAX (64 * 1024)

struct h2;

struct h2_stream {
    struct h2 *h;
    struct h2_stream *prev, *next; /* h->active, or h->free_streams (next only) */
    int32_t id;
    struct px_snapshot *snap; /* one reference while the stream is open */
    const struct px_listener *lis;
    uint64_t deadline; /* uv_now() after which the request timed out */

    /* The request. */
    bool in_head; /* its header block is still arriving (headerTimeoutSeconds) */
    bool is_head;
    bool req_complete;          /* END_STREAM received */
    bool chunked;               /* the body goes to the backend chunked */
    bool discard;               /* answered by albd: request DATA is dropped */
    struct px_buf hout;         /* backend request head (kept for retries) */
    struct px_buf pend;         /* framed request bytes waiting for the backend */
    size_t pend_consume;        /* DATA bytes in pend, not yet consumed */
    size_t unconsumed;          /* DATA bytes given to a congested backend, not yet consumed */
    struct px_body_meter meter; /* request DATA: maxRequestBodyBytes, minBodyRateBytesPerSecond */
    bool held;                  /* albd withheld window in this rate window (backpressure) */

    /* The backend: its choice, connection and failover. */
    struct px_exchange x;
    bool up_paused; /* backend reading stopped: the client is behind */

    /* The response. */
    struct px_bresp bp;         /* the backend's response, parsed into the sink */
    const struct px_sink *sink; /* where it goes (h2_sink, or a filter before it) */
    int status;
    bool resp_submitted;  /* HEADERS went (or are queued) to the client */
    bool resp_complete;   /* everything for the client is in rq */
    bool deferred;        /* the data provider is waiting for rq */
    bool has_trailers;    /* the backend sent trailers (in bp): they follow the body */
    struct px_buf hin;    /* response head, then trailers */
    struct px_hdrlist hl; /* their fields, as offsets into hin */
    struct px_buf rq;     /* response body not yet taken by nghttp2 */
    size_t rq_off;
};

struct h2 {
    /* nghttp2 allocates per stream and per header block: it allocates from
     * this connection's pool (nghttp2_mem) instead of malloc. */
    struct px_mempool *pool;
    nghttp2_mem mem;
    struct px_conn *c;
    nghttp2_session *ng;
    struct h2_stream *active;
    unsigned n_active;
    struct h2_stream *free_streams;
    unsigned n_free;
    bool in_ng;  /* inside nghttp2 (mem_recv / mem_send): no mem_send now */
    bool goaway; /* a graceful GOAWAY was submitted */
    bool finished;
    /* On the worker's list of sessions whose frames are produced at the end
     * of the loop iteration (px_h2_flush_later): the responses of several
     * streams leave in one TLS record and one write. */
    bool later_queued;
    struct h2 *later_next;
    uint64_t rst_since;
    unsigned rst_count; /* streams reset or broken by the client (count_reset) */
    bool calmed;        /* GOAWAY ENHANCE_YOUR_CALM was submitted */

    /* The request header block being received. */
    struct px_buf hb;
    struct px_hdr_ent *ents;
    size_t n_ents;
    size_t hb_bytes;
    bool hb_over; /* too large or too many fields: answered with 431 */
    int p_method, p_path, p_authority, p_scheme; /* entry index, -1 if absent */

    struct px_client cl; /* the client's facts (address, TLS, certificate) */

    /* Scratch for building heads (no stream keeps it across calls). */
    struct px_hdr *hdrs;
    nghttp2_nv *nva;

    /* Output being coalesced: a PX_CONN_BUF-byte buffer from the worker's
     * pool, held only inside px_h2_flush. */
    size_t olen;
    uint8_t *obuf;
};

_Static_assert(OBUF_SIZE <= PX_CONN_BUF, "h2 output buffer comes from the connection pool");

#endif
