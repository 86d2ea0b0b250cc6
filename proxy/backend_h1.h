/* The HTTP/1.1 backend client, one for every client protocol: the head of
 * the request albd sends a backend (from a struct px_req) and the parser
 * of the backend's response, which drives a response sink (req-t.h).
 * Pure: no I/O; the caller moves the bytes (proxy/exchange.c,
 * proxy/upstream.c). Allocates nothing per request: buffers are the
 * caller's and reused. */
#ifndef ALBD_PROXY_BACKEND_H1_H
#define ALBD_PROXY_BACKEND_H1_H

#include <llhttp.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "proxy/buf.h"
#include "proxy/hdrlist.h"
#include "proxy/req-t.h"

/* A response head (status line and fields) from a backend may be this
 * large before it is refused (502). */
#define PX_BACKEND_MAX_HEAD (64 * 1024)

/* One backend response being parsed. Embedded in the protocol's exchange
 * state (h1 per connection, h2 per stream). */
struct px_bresp {
    llhttp_t p;
    const struct px_sink *sink;
    void *owner;
    struct px_buf *hin;     /* the caller's: status reason, then fields */
    struct px_hdrlist *hl;  /* the caller's: fields as offsets into hin */
    struct px_hdr *scratch; /* the caller's: PX_HDR_MAX entries */
    bool keep_trailers;     /* collect trailer fields for sink->trailers */
    bool head_req;          /* the request was HEAD: no body follows */
    bool any;               /* the backend sent a byte */
    bool in_trailers;       /* the final head went to the sink */
    bool complete;          /* the final response ended (sink->end ran) */
    int status;             /* the last head's status (0: none yet) */
    size_t reason_len;
    /* Optional (px_bresp_init clears it): sees the final response head
     * before the sink and may append a field to it (fields: the head's
     * array, cap entries), e.g. a sticky-session cookie. */
    void (*on_head)(void *arg, struct px_resp_head *rh, struct px_hdr *fields, size_t cap);
    void *on_head_arg;
};

/* What px_bresp_feed did with the bytes. */
enum px_bresp_rc {
    PX_BRESP_MORE,     /* all taken; more is expected */
    PX_BRESP_DONE,     /* the response is complete and nothing followed it */
    PX_BRESP_LEFTOVER, /* complete, but bytes followed it: do not pool */
    PX_BRESP_UPGRADE,  /* a 101 was accepted: *used bytes were HTTP, the rest tunnel bytes */
    PX_BRESP_BAD,      /* malformed or refused: the caller answers 502 / cuts */
};

/* Prepares r for a response to one request (call when the request head is
 * sent). hin, hl and scratch are the caller's and must live as long as r;
 * keep_trailers: collect the trailers of a chunked response for
 * sink->trailers (else they are parsed and dropped). */
void px_bresp_init(struct px_bresp *r, const struct px_sink *sink, void *owner, struct px_buf *hin,
                   struct px_hdrlist *hl, struct px_hdr *scratch, bool head_req,
                   bool keep_trailers);

/* Parses n backend bytes, calling the sink. *used (may be NULL) is how
 * many bytes were parsed (for PX_BRESP_UPGRADE). */
enum px_bresp_rc px_bresp_feed(struct px_bresp *r, const char *data, size_t n, size_t *used);

/* The backend closed its connection (after at least one byte): true when
 * that completed the response (a close-delimited body), which then ended
 * through the sink; false when the response is cut. */
bool px_bresp_eof(struct px_bresp *r);

/* True when the backend allows its connection to be reused after this
 * (complete) response. req_minor: the HTTP/1.x minor version of the
 * request albd sent (px_backend_h1_minor). An HTTP/1.0 request asked for a
 * persistent connection with "Connection: keep-alive"; its response must
 * say "keep-alive" back (RFC 7230 appendix A.1.2): a server that answers
 * HTTP/1.1 without it may still close after a 1.0 request. */
bool px_bresp_keepalive(const struct px_bresp *r, int req_minor);

/* The llhttp error name of the last PX_BRESP_BAD, for logs. */
const char *px_bresp_error(const struct px_bresp *r);

/* The trailer fields collected (keep_trailers), resolved into r->scratch;
 * returns their count. Valid until the next px_bresp_init. */
size_t px_bresp_trailers(struct px_bresp *r);

/* Appends to out the head of the request albd sends a backend for r:
 * "<method> [/]<path> HTTP/1.<minor>" ("/" when path_slash, composed in
 * tgt, the caller's scratch), r's fields with the forwarding rule of px_headers_request (fwd: the
 * listener's forwarding headers, the client-certificate headers), r->body framing, and Connection:
 * close unless keepalive. The backend gets HTTP/1.1 unless the client spoke 1.0 without a chunked
 * body. Returns 0 or -1 (too large: 431). */
int px_backend_h1_request_head(struct px_buf *out, struct px_req *r, const struct px_fwd *fwd,
                               bool keepalive, struct px_buf *tgt);

/* The HTTP version minor albd speaks to the backend for r. */
int px_backend_h1_minor(const struct px_req *r);

/* Frames one piece of a chunked body: fills b[0..3) (hex size line in
 * hex, which must hold 24 bytes; the data; CRLF) and returns 3. */
unsigned px_backend_h1_chunk(char *hex, const char *data, size_t len, uv_buf_t *b);

#endif
