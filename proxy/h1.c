/* HTTP/1.x server side and the forwarding exchange.
 *
 * One exchange at a time per connection: the request parser pauses when a
 * request's head is complete (until a backend connection is ready to take
 * the body) and again when the request is complete (until the response is
 * complete), so pipelined requests wait in the connection's input buffer.
 * Bodies are streamed chunk by chunk: input from one side is stopped while
 * the other side's output queue is above PX_OUTQ_HIGH. */
#include "proxy/h1.h"

#include <errno.h>
#include <llhttp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/alog.h"
#include "proxy/backend_h1.h"
#include "proxy/compress.h"
#include "proxy/conn-io.h"
#include "proxy/exchange.h"
#include "proxy/h1_head.h"
#include "proxy/hdrlist.h"
#include "proxy/headers.h"
#include "common/log.h"
#include "proxy/req.h"
#include "proxy/reqid.h"
#include "proxy/runtime-t.h"
#include "proxy/sticky.h"
#include "proxy/snapshot.h"
#include "proxy/tls_ctx.h"
#include "proxy/tls_headers.h"
#include "proxy/tls_io.h"
#include "proxy/tunnel.h"
#include "proxy/upstream.h"

/* Chunk-extension bytes allowed per chunk (they are parsed, then dropped). */
#define MAX_CHUNK_EXT 1024

enum phase {
    PH_IDLE,     /* between requests */
    PH_HEAD,     /* a request head is arriving */
    PH_UPSTREAM, /* head complete: choosing / connecting a backend */
    PH_FORWARD,  /* request sent (body may still stream), response awaited / streaming */
    PH_DONE,     /* an error response was sent; the connection is finishing */
    PH_TUNNEL,   /* upgraded (WebSocket): bytes are spliced by h->tun */
};

struct h1 {
    struct px_conn *c;
    enum phase phase;
    llhttp_t req;
    bool req_paused;  /* llhttp_execute returned HPE_PAUSED for req */
    bool req_upgrade; /* ... HPE_PAUSED_UPGRADE: resume accordingly */

    /* Head of the message being received (request, later the response):
     * target / reason phrase first, then header names and values. */
    struct px_buf hin;
    struct px_hdrlist hl; /* its header fields, as offsets into hin */
    struct px_hdr *hdrs;  /* PX_HDR_MAX entries, filled from hl */
    size_t first_len;     /* target (request) or reason phrase (response) */
    int err_status;       /* set by a callback that refuses the request */
    struct px_h1_scan scan;

    /* The request. */
    int minor; /* client's HTTP/1.<minor> */
    uint8_t method;
    bool is_head;   /* the method is HEAD (known once the method is parsed) */
    bool keepalive; /* the client allows another request */
    bool has_body;
    bool chunked; /* re-chunk the body to the backend */
    bool req_complete;
    int up_minor;
    bool ws;              /* a WebSocket upgrade albd passes on */
    bool expect_continue; /* the client waits for "100 Continue" */
    /* Absolute-form target (RFC 9112 3.2.2): the authority replaces Host
     * and the backend gets origin-form. Offsets into hin (the target is
     * its first bytes); auth_len 0 = origin-form target. */
    uint32_t auth_off, auth_len, path_off, path_len;
    bool path_slash;            /* the path is empty: "/" goes before it */
    struct px_buf tgt;          /* the rewritten target when path_slash */
    struct px_body_meter meter; /* request body: limit and minimum rate */
    size_t ext_bytes;           /* chunk-extension bytes of the current chunk */
    struct px_tunnel *tun;      /* PH_TUNNEL */
    /* uv_now() after which a tunnel whose listener was removed is closed;
     * 0 while its listener exists. */
    uint64_t tun_deadline;

    /* The backend: its choice, connection and failover. */
    struct px_exchange *x; /* in a struct h1_req while a request is in flight (x_take), else NULL */
    struct px_cz *cz;      /* x->cz between requests (until parked): no calloc per request */
    bool up_congested;
    struct px_bresp bp;         /* the backend's response, parsed into the sink */
    const struct px_sink *sink; /* where it goes (h1_sink, or a filter before it) */
    struct px_buf hout; /* request head for the backend (kept for retries), then response head */

    /* The response. */
    int status;
    enum px_framing rframing;
    bool resp_started; /* something (even a 1xx) went to the client */
    bool close_after;  /* close the client connection after this response */

    struct px_client cl; /* the client's facts (address, TLS, certificate) */
};

static const llhttp_settings_t req_settings;
static const struct px_sink h1_sink;
static const struct px_exchange_cbs x_cbs;

static void req_resume(struct h1 *h);
static void tunnel_start(struct h1 *h, const char *rest, size_t n);
static void upstream_lost(struct h1 *h, int err);

static uint64_t ms(int seconds)
{
    return (uint64_t)seconds * 1000;
}

static void head_reset(struct h1 *h)
{
    px_buf_reset(&h->hin);
    px_hdrlist_reset(&h->hl);
    h->first_len = 0;
}

/* Resolves the entries into h->hdrs (pointers into hin, stable from now). */
static size_t head_headers(struct h1 *h)
{
    return px_hdrlist_get(&h->hl, &h->hin, h->hdrs);
}

static void drop_upstream(struct h1 *h, bool keep)
{
    if (h->x)
        px_exchange_release(h->x, keep);
}

/* What a request holds from its first byte to the end of its response,
 * from the worker's free list (w->h1_reqs): the exchange (1.3 KiB:
 * failover state, filter states, request id, access-log record) and the
 * header scratch (12 KiB: the head's fields, as offsets and resolved).
 * Between requests a keep-alive connection holds only struct h1. */
struct h1_req {
    struct px_exchange x;
    struct px_hdr_ent ents[PX_HDR_MAX];
    struct px_hdr hdrs[PX_HDR_MAX];
};

/* Request states cached per worker (the rest go back to malloc): enough
 * for a busy loop iteration's requests. */
#define H1_REQS_CACHED 32

static void exchanges_publish(struct px_worker *w)
{
    atomic_store_explicit(&w->stats.connection_exchanges, w->h1_reqs.out, memory_order_relaxed);
}

/* Takes the request state (struct h1_req) for a request: a pointer pop
 * once the worker is warm, no malloc. 0 or -1 (no memory). */
static int x_take(struct h1 *h)
{
    if (h->x)
        return 0;
    struct px_worker *w = h->c->w;
    if (!w->h1_reqs.size) /* the first request on this worker */
        px_bufpool_init(&w->h1_reqs, sizeof(struct h1_req), H1_REQS_CACHED);
    struct h1_req *r = px_bufpool_get(&w->h1_reqs);
    if (!r)
        return -1;
    h->x = &r->x;
    h->hl.ents = r->ents;
    h->hdrs = r->hdrs;
    px_exchange_init(h->x, w, "h1", &x_cbs, h);
    h->x->cz = h->cz;
    h->cz = NULL;
    exchanges_publish(w);
    return 0;
}

/* Gives the exchange back once its response ended (no backend connection
 * left: drop_upstream ran); its log line goes, its compression filter
 * state stays with the connection for the next request. */
static void x_put(struct h1 *h)
{
    if (!h->x)
        return;
    struct px_worker *w = h->c->w;
    px_exchange_release(h->x, false);
    px_alog_discard(&h->x->log);
    h->cz = h->x->cz;
    h->x->cz = NULL;
    px_bufpool_put(&w->h1_reqs, (struct h1_req *)h->x); /* x is its first member */
    h->x = NULL;
    h->hl.ents = NULL;
    h->hdrs = NULL;
    px_hdrlist_reset(&h->hl);
    exchanges_publish(w);
}

/* Adds X-Request-Id to the response head in hout when the listener
 * echoes it. 0 or -1. */
static int echo_request_id(struct h1 *h)
{
    if (!h->x || !h->x->req_id[0] || !h->c->lis->model->request_id.echo)
        return 0;
    return px_reqid_echo_h1(&h->hout, h->x->req_id);
}

/* Ends the request's access-log line (when its listener logs). */
static void log_end(struct h1 *h, int status, const char *reason)
{
    if (!h->x)
        return; /* between requests: nothing to log */
    if (h->phase != PH_TUNNEL)
        h->x->log.bytes_in = h->meter.total;
    px_alog_end(&h->x->log, status, reason);
}

/* Answers with albd's own error page and closes after it; when the response
 * has already begun there is nothing honest to send: abort. */
static void send_error(struct h1 *h, int status)
{
    struct px_conn *c = h->c;
    drop_upstream(h, false);
    if (c->closing)
        return;
    if (x_take(h) < 0) { /* no request state: nothing to answer with */
        px_conn_close(c);
        return;
    }
    if (h->phase != PH_DONE) { /* a request refused before it reached the pipeline */
        px_alog_begin(&h->x->log, c->lis, c->w->id, &h->cl, h->minor ? "1.1" : "1.0", NULL);
        if (!h->x->req_id[0] && c->lis->model->request_id.enabled)
            px_reqid_new(h->x->req_id, c->w->id);
        px_alog_request_id(&h->x->log, h->x->req_id[0] ? h->x->req_id : NULL);
    }
    if (h->resp_started || h->phase == PH_DONE) {
        log_end(h, h->status, px_alog_reason(status));
        /* A close-delimited body that ends in a FIN would look complete
         * to the client: reset instead. */
        if (h->resp_started && h->status >= 200 && h->rframing == PX_FRAME_CLOSE)
            px_conn_abort(c);
        else
            px_conn_close(c);
        return;
    }
    h->phase = PH_DONE;
    px_buf_reset(&h->hout);
    /* A HEAD request gets the head alone (RFC 9110 9.3.2). */
    int rc = px_headers_error_head(&h->hout, h->minor, status);
    if (rc == 0)
        rc = echo_request_id(h);
    if (rc == 0 && !h->is_head)
        rc = px_headers_error_body(&h->hout, status);
    if (rc < 0) {
        px_conn_close(c);
        return;
    }
    px_req_count_response(c->w, status);
    if (!h->is_head)
        h->x->log.bytes_out = strlen(px_status_reason(status)) + 5; /* px_headers_error_body */
    log_end(h, status, px_alog_reason(status));
    uv_buf_t b = uv_buf_init(h->hout.data, (unsigned)h->hout.len);
    if (px_conn_write(c, &b, 1) < 0) {
        px_conn_close(c);
        return;
    }
    px_conn_finish(c);
}

/* --- request parsing ------------------------------------------------- */

static struct h1 *req_h1(llhttp_t *p)
{
    return p->data;
}

static int refuse(struct h1 *h, int status)
{
    h->err_status = status;
    return HPE_USER;
}

static int on_req_begin(llhttp_t *p)
{
    struct h1 *h = req_h1(p);
    const struct rc_listener *m = h->c->lis->model;
    if (x_take(h) < 0)
        return refuse(h, 503);
    head_reset(h);
    h->phase = PH_HEAD;
    h->err_status = 0;
    h->x->req_id[0] = '\0';
    h->is_head = false;
    /* A client that starts a request must finish its head in time (408):
     * a deadline from the first byte, not an idle timer that every byte
     * would reset. */
    int hs = m->limits.header_timeout_s;
    px_conn_timer(h->c, ms(hs > 0 && hs < m->request_timeout_s ? hs : m->request_timeout_s));
    return 0;
}

static int on_req_method_done(llhttp_t *p)
{
    struct h1 *h = req_h1(p);
    h->is_head = llhttp_get_method(p) == HTTP_HEAD;
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    struct h1 *h = req_h1(p);
    if (h->phase != PH_HEAD)
        return 0;
    h->first_len += len;
    if (h->first_len > PX_H1_MAX_TARGET)
        return refuse(h, 414);
    if (px_buf_append(&h->hin, at, len) < 0)
        return refuse(h, 414);
    return 0;
}

/* Header bytes of the request or response head being received. Names and
 * values arrive in pieces; a name is closed by on_header_field_complete
 * (so an empty value still ends it). */
static int add_header_bytes(struct h1 *h, const char *at, size_t len, bool value, size_t limit,
                            int status)
{
    return px_hdrlist_add(&h->hl, &h->hin, at, len, value, limit) < 0 ? refuse(h, status) : 0;
}

/* The name is complete: its value (possibly empty) starts here. */
static int header_name_done(struct h1 *h)
{
    px_hdrlist_name_done(&h->hl, &h->hin);
    return 0;
}

static int on_req_field_done(llhttp_t *p)
{
    struct h1 *h = req_h1(p);
    return h->phase == PH_HEAD ? header_name_done(h) : 0;
}

/* Adds request header bytes: over PX_H1_MAX_HEADERS in all, or one field
 * (name and value) over PX_H1_MAX_FIELD, is answered 431. */
static int add_req_header_bytes(struct h1 *h, const char *at, size_t len, bool value)
{
    if (add_header_bytes(h, at, len, value, PX_H1_MAX_HEADERS, 431))
        return HPE_USER;
    const struct px_hdr_ent *e = &h->hl.ents[h->hl.n - 1];
    return (size_t)e->nl + e->vl > PX_H1_MAX_FIELD ? refuse(h, 431) : 0;
}

static int on_req_field(llhttp_t *p, const char *at, size_t len)
{
    struct h1 *h = req_h1(p);
    if (h->phase != PH_HEAD)
        return 0; /* trailers of a chunked body: not forwarded */
    return add_req_header_bytes(h, at, len, false);
}

static int on_req_value(llhttp_t *p, const char *at, size_t len)
{
    struct h1 *h = req_h1(p);
    if (h->phase != PH_HEAD)
        return 0;
    return add_req_header_bytes(h, at, len, true);
}

/* The request checks of px_h1_check_request, and what they decide. */
static int check_request(struct h1 *h)
{
    struct px_h1_req_info in;
    int st =
        px_h1_check_request(h->hdrs, head_headers(h), h->hin.data, h->first_len, h->minor,
                            h->method == HTTP_OPTIONS, h->method == HTTP_GET && !h->has_body, &in);
    h->ws = in.ws;
    h->expect_continue = in.expect_continue;
    h->auth_off = in.target.auth_off;
    h->auth_len = in.target.auth_len;
    h->path_off = in.target.path_off;
    h->path_len = in.target.path_len;
    h->path_slash = in.target.path_slash;
    return st;
}

static int on_req_headers_complete(llhttp_t *p)
{
    struct h1 *h = req_h1(p);
    struct px_conn *c = h->c;
    atomic_fetch_add_explicit(&c->w->stats.requests, 1, memory_order_relaxed);
    h->minor = llhttp_get_http_minor(p) ? 1 : 0;
    if (llhttp_get_http_major(p) != 1) {
        h->minor = 1;
        return refuse(h, 505);
    }
    h->method = llhttp_get_method(p);
    if (h->method == HTTP_TRACE || h->method == HTTP_CONNECT)
        return refuse(h, 405);
    h->keepalive = llhttp_should_keep_alive(p);
    h->chunked = (p->flags & F_CHUNKED) != 0;
    h->has_body = h->chunked || ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0);
    uint64_t max = c->lis->model->limits.max_request_body_bytes;
    if (max && (p->flags & F_CONTENT_LENGTH) && p->content_length > max)
        return refuse(h, 413);
    int st = check_request(h);
    if (st)
        return refuse(h, st);
    px_body_meter_reset(&h->meter);
    h->ext_bytes = 0;
    h->req_complete = false;
    h->phase = PH_UPSTREAM;
    /* With a body, stop here until a backend can take it; without one, the
     * pause at message completion does the same. */
    return h->has_body ? HPE_PAUSED : 0;
}

static int on_req_body(llhttp_t *p, const char *at, size_t len)
{
    struct h1 *h = req_h1(p);
    if (!h->x || !h->x->u || h->phase != PH_FORWARD)
        return refuse(h, 502);
    /* The body limit and the minimum body rate (slow-body defence). */
    int st = px_body_meter_add(&h->meter, h->c->lis->model, uv_now(&h->c->w->loop), len);
    if (st)
        return refuse(h, st);
    char hex[24];
    int rc;
    if (h->chunked) {
        uv_buf_t b[3];
        rc = px_upstream_write(h->x->u, b, px_backend_h1_chunk(hex, at, len, b));
    } else {
        uv_buf_t b = uv_buf_init((char *)at, (unsigned)len);
        rc = px_upstream_write(h->x->u, &b, 1);
    }
    h->x->body_sent = true;
    if (rc < 0)
        return refuse(h, 502);
    px_conn_timer(h->c, ms(h->c->lis->model->request_timeout_s));
    return 0;
}

static int on_req_complete(llhttp_t *p)
{
    struct h1 *h = req_h1(p);
    h->req_complete = true;
    if (h->chunked && h->x && h->x->u && h->phase == PH_FORWARD) {
        uv_buf_t b = uv_buf_init("0\r\n\r\n", 5);
        if (px_upstream_write(h->x->u, &b, 1) < 0)
            return refuse(h, 502);
    }
    return HPE_PAUSED; /* the next request waits for this response */
}

static int on_req_chunk_header(llhttp_t *p)
{
    req_h1(p)->ext_bytes = 0;
    return 0;
}

/* Chunk extensions are dropped (albd re-chunks the body), but a client
 * must not make albd parse unbounded amounts of them. */
static int on_req_chunk_ext(llhttp_t *p, const char *at, size_t len)
{
    struct h1 *h = req_h1(p);
    h->ext_bytes += len + 1;
    return h->ext_bytes > MAX_CHUNK_EXT ? refuse(h, 400) : 0;
}

static const llhttp_settings_t req_settings = {
    .on_message_begin = on_req_begin,
    .on_method_complete = on_req_method_done,
    .on_chunk_header = on_req_chunk_header,
    .on_chunk_extension_name = on_req_chunk_ext,
    .on_chunk_extension_value = on_req_chunk_ext,
    .on_url = on_url,
    .on_header_field = on_req_field,
    .on_header_value = on_req_value,
    .on_header_field_complete = on_req_field_done,
    .on_headers_complete = on_req_headers_complete,
    .on_body = on_req_body,
    .on_message_complete = on_req_complete,
};

/* --- choosing and talking to the backend ----------------------------- */

/* The request as the pipeline (proxy/req.c) takes it. */
static void make_req(struct h1 *h, struct px_req *r)
{
    struct px_conn *c = h->c;
    size_t n = head_headers(h);
    const char *path = h->hin.data + h->path_off;
    const char *q = memchr(path, '?', h->path_len);
    *r = (struct px_req){
        .lis = c->lis,
        .client = &h->cl,
        .method = llhttp_method_name(h->method),
        .scheme = c->lis->scheme,
        .scheme_len = strlen(c->lis->scheme),
        .target = h->hin.data,
        .target_len = h->first_len,
        .path = path,
        .path_len = h->path_len,
        .query = q ? q + 1 : NULL,
        .query_len = q ? (size_t)(path + h->path_len - q - 1) : 0,
        .path_slash = h->path_slash,
        .hdrs = h->hdrs,
        .n_hdrs = n,
        .minor = h->minor,
        .body = h->chunked    ? PX_FRAME_CHUNKED
                : h->has_body ? PX_FRAME_LENGTH
                              : PX_FRAME_NONE,
        .is_head = h->method == HTTP_HEAD,
        .upgrade = h->ws ? "websocket" : NULL,
    };
    if (h->auth_len) {
        /* RFC 9112 3.2.2: the target's authority wins over Host. */
        r->authority = h->hin.data + h->auth_off;
        r->authority_len = h->auth_len;
        r->target_authority = true;
    } else {
        for (size_t i = 0; i < n && !r->authority; i++)
            if (px_h1_hdr_is(&h->hdrs[i], "host")) {
                r->authority = h->hdrs[i].value;
                r->authority_len = px_h1_trim_ows(h->hdrs[i].value, h->hdrs[i].value_len);
            }
    }
}

static void response_done(struct h1 *h, bool clean);

/* albd answered the request itself (a redirect or fixed response): the
 * connection goes on as after a backend's response; a body not yet read
 * has nowhere to go, so the connection closes after the answer (its head
 * said so: sink_head sets close_after). */
static void answered(struct h1 *h)
{
    if (h->c->closing)
        return;
    response_done(h, false);
}

static void exchange_start(struct h1 *h)
{
    h->resp_started = false;
    h->bp.any = h->bp.complete = false;
    h->close_after = !h->keepalive || h->c->draining;
    h->up_congested = false;
    h->status = 0;
    h->rframing = PX_FRAME_NONE;
    struct px_req r;
    make_req(h, &r);
    h->up_minor = px_backend_h1_minor(&r);
    px_conn_timer(h->c, ms(h->c->lis->model->request_timeout_s));
    int st = px_req_start(&r, h->x, &h->hout, &h->tgt, &h1_sink, &h->sink);
    if (st == PX_REQ_ANSWERED)
        answered(h);
    else if (st)
        send_error(h, st);
}

/* The backend connection is usable: send the head, then let the body flow. */
static void upstream_ready(void *owner)
{
    struct h1 *h = owner;
    uv_buf_t b = uv_buf_init(h->hout.data, (unsigned)h->hout.len);
    h->phase = PH_FORWARD;
    px_bresp_init(&h->bp, h->sink, h->x->sink_owner, &h->hin, &h->hl, h->hdrs,
                  h->method == HTTP_HEAD, false);
    px_sticky_watch(h->x, &h->bp);
    int rc = px_upstream_write(h->x->u, &b, 1);
    if (rc < 0) {
        upstream_lost(h, rc);
        return;
    }
    if (h->expect_continue && !h->req_complete) {
        /* The client waits for this before sending its body; albd says it
         * once a backend can take the body, so that no backend that
         * ignores Expect can leave the client waiting (Content-Length
         * over the limit was answered 413 before). */
        h->expect_continue = false;
        uv_buf_t cont = uv_buf_init("HTTP/1.1 100 Continue\r\n\r\n", 25);
        if (px_conn_write(h->c, &cont, 1) < 0) {
            px_conn_close(h->c);
            return;
        }
    }
    if (!h->req_complete)
        req_resume(h);
}

/* The backend connection died before any response byte. */
static void upstream_lost(struct h1 *h, int err)
{
    drop_upstream(h, false);
    px_conn_want_input(h->c, false); /* no body may be parsed without a backend */
    if (h->resp_started) {
        px_conn_close(h->c);
        return;
    }
    px_exchange_lost(h->x, err);
}

static void response_done(struct h1 *h, bool clean)
{
    struct px_conn *c = h->c;
    bool keep = clean && h->req_complete && h->x->group->model->upstream_keepalive &&
                px_bresp_keepalive(&h->bp, h->up_minor);
    drop_upstream(h, keep);
    px_alog_upstream_end(&h->x->log);
    log_end(h, h->status, NULL);
    if (h->close_after || !h->req_complete || c->draining || c->eof) {
        h->phase = PH_DONE;
        px_conn_finish(c);
        return;
    }
    h->phase = PH_IDLE;
    x_put(h);
    memset(&h->scan, 0, sizeof h->scan);
    if (px_conn_snapshot_refresh(c) < 0) {
        h->phase = PH_DONE;
        px_conn_finish(c);
        return;
    }
    px_conn_timer(c, ms(c->lis->model->idle_timeout_s));
    req_resume(h);
    if (!c->closing && h->phase == PH_IDLE)
        px_conn_idle(c); /* no pipelined request began */
}

static void up_on_read(void *owner, const char *data, ssize_t n)
{
    struct h1 *h = owner;
    struct px_conn *c = h->c;
    if (n < 0) {
        if (!h->bp.any) {
            upstream_lost(h, (int)n);
            return;
        }
        if (n == UV_EOF) {
            bool done = px_bresp_eof(&h->bp);
            if (c->closing)
                return;
            if (done) {
                response_done(h, false);
                return;
            }
        }
        h->sink->abort(h->x->sink_owner, 502); /* cut: through the filters, to the client */
        return;
    }
    px_conn_timer(c, ms(c->lis->model->request_timeout_s));
    size_t used;
    enum px_bresp_rc rc = px_bresp_feed(&h->bp, data, (size_t)n, &used);
    if (c->closing)
        return;
    if (h->phase == PH_TUNNEL && rc == PX_BRESP_UPGRADE) {
        tunnel_start(h, data + used, (size_t)n - used);
        return;
    }
    if (h->phase != PH_FORWARD)
        return;
    if (rc == PX_BRESP_DONE || rc == PX_BRESP_LEFTOVER) {
        response_done(h, rc == PX_BRESP_DONE);
        return;
    }
    if (rc != PX_BRESP_MORE) {
        px_log_debug("h1: malformed response from %s: %s", h->x->server->key,
                     px_bresp_error(&h->bp));
        h->sink->abort(h->x->sink_owner, 502);
        return;
    }
    if (h->x->u && px_conn_congested(c))
        px_upstream_read(h->x->u, false);
}

/* --- WebSocket: the exchange becomes a tunnel ---------------------------- */

static int tun_write(void *ctx, const char *data, size_t len)
{
    struct h1 *h = ctx;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    h->x->log.bytes_out += len;
    return px_conn_write(h->c, &b, 1);
}

static bool tun_congested(void *ctx)
{
    struct h1 *h = ctx;
    return px_conn_congested(h->c);
}

static void tun_want_input(void *ctx, bool on)
{
    struct h1 *h = ctx;
    px_conn_want_input(h->c, on);
}

static void tun_shutdown(void *ctx)
{
    struct h1 *h = ctx;
    px_conn_shutdown_write(h->c);
}

/* The listener's idle timeout applies to a tunnel: no byte either way for
 * idle_timeout_s closes both sides. */
static void tun_activity(void *ctx)
{
    struct h1 *h = ctx;
    uint64_t t = ms(h->c->lis->model->idle_timeout_s);
    if (h->tun_deadline) {
        uint64_t now = uv_now(&h->c->w->loop);
        uint64_t left = h->tun_deadline > now ? h->tun_deadline - now : 1;
        if (left < t)
            t = left;
    }
    px_conn_timer(h->c, t);
}

static void tun_done(void *ctx, int err)
{
    struct h1 *h = ctx;
    if (err)
        px_conn_close(h->c);
    else
        px_conn_finish(h->c);
}

static const struct px_tunnel_client tun_client = {
    .write = tun_write,
    .congested = tun_congested,
    .want_input = tun_want_input,
    .shutdown = tun_shutdown,
    .activity = tun_activity,
    .done = tun_done,
};

/* The backend said 101 (relayed already): splice the two connections.
 * rest: bytes the backend sent after its 101 head. */
static void tunnel_start(struct h1 *h, const char *rest, size_t n)
{
    struct px_conn *c = h->c;
    h->tun = px_tunnel_new(h->x->u, &tun_client, h);
    if (!h->tun) {
        px_conn_close(c);
        return;
    }
    h->x->u = NULL;           /* the tunnel's now */
    px_alog_hold(&h->x->log); /* the line is written when the tunnel ends */
    if (n && tun_write(h, rest, n) < 0) {
        px_conn_close(c);
        return;
    }
    tun_activity(h);
    px_conn_want_input(c, true); /* client bytes that came after the request go first */
}

static void up_on_writable(void *owner)
{
    struct h1 *h = owner;
    if (h->up_congested) {
        h->up_congested = false;
        px_body_meter_restart(&h->meter); /* albd was the slow one meanwhile */
        if (!h->req_complete && h->phase == PH_FORWARD)
            px_conn_want_input(h->c, true);
    }
}

/* No backend could take the request: the response ends through the sink
 * (and any filter in front of it). */
static void up_fail(void *owner, int status)
{
    struct h1 *h = owner;
    h->sink->abort(h->x->sink_owner, status);
}

static const struct px_exchange_cbs x_cbs = {
    .ready = upstream_ready,
    .fail = up_fail,
    .on_read = up_on_read,
    .on_writable = up_on_writable,
};

/* --- the response sink ----------------------------------------------- */

static int write_client(struct h1 *h, const uv_buf_t *b, unsigned n)
{
    if (px_conn_write(h->c, b, n) < 0) {
        px_conn_close(h->c);
        return -1;
    }
    return 0;
}

static int sink_head(void *owner, const struct px_resp_head *rh)
{
    struct h1 *h = owner;
    struct px_conn *c = h->c;
    if (c->closing)
        return -1;
    int status = rh->status;
    if (status >= 200 || status == 101)
        px_alog_upstream_head(&h->x->log, status);
    if (status == 101) {
        if (!h->ws)
            return -1; /* albd did not ask for an upgrade */
        h->status = 101;
        px_buf_reset(&h->hout);
        if (px_headers_response_upgrade(&h->hout, rh->reason, rh->reason_len, rh->h, rh->n,
                                        "websocket") < 0)
            return -1;
        h->resp_started = true;
        px_req_count_response(c->w, status);
        uv_buf_t b = uv_buf_init(h->hout.data, (unsigned)h->hout.len);
        if (write_client(h, &b, 1) < 0)
            return -1;
        h->phase = PH_TUNNEL; /* up_on_read hands the connection to a tunnel */
        return PX_SINK_UPGRADE;
    }
    if (h->ws && status >= 200)
        h->close_after = true; /* upgrade refused: the client may have sent frames already */
    if (status < 200) {
        if (!h->minor)
            return 0; /* HTTP/1.0 clients do not get interim responses */
        px_buf_reset(&h->hout);
        if (px_headers_response(&h->hout, 1, status, rh->reason, rh->reason_len, rh->h, rh->n,
                                PX_FRAME_NONE, false) < 0)
            return -1;
        h->resp_started = true;
        uv_buf_t b = uv_buf_init(h->hout.data, (unsigned)h->hout.len);
        return write_client(h, &b, 1);
    }
    h->status = status;
    bool bodyless = h->method == HTTP_HEAD || status == 204 || status == 304;
    if (bodyless)
        h->rframing = PX_FRAME_NONE;
    else if (rh->chunked)
        h->rframing = h->minor ? PX_FRAME_CHUNKED : PX_FRAME_CLOSE;
    else if (rh->has_length)
        h->rframing = PX_FRAME_LENGTH;
    else
        h->rframing = h->minor ? PX_FRAME_CHUNKED : PX_FRAME_CLOSE;
    if (h->rframing == PX_FRAME_CLOSE || c->draining || !h->req_complete ||
        px_conn_listener_gone(c))
        h->close_after = true;
    px_buf_reset(&h->hout);
    if (px_headers_response(&h->hout, h->minor, status, rh->reason, rh->reason_len, rh->h, rh->n,
                            h->rframing, h->close_after) < 0 ||
        echo_request_id(h) < 0)
        return -1;
    h->resp_started = true;
    px_req_count_response(c->w, status);
    uv_buf_t b = uv_buf_init(h->hout.data, (unsigned)h->hout.len);
    return write_client(h, &b, 1);
}

static int sink_data(void *owner, const char *at, size_t len)
{
    struct h1 *h = owner;
    if (h->c->closing)
        return -1;
    h->x->log.bytes_out += len;
    if (h->rframing == PX_FRAME_CHUNKED) {
        char hex[24];
        uv_buf_t b[3];
        return write_client(h, b, px_backend_h1_chunk(hex, at, len, b));
    }
    uv_buf_t b = uv_buf_init((char *)at, (unsigned)len);
    return write_client(h, &b, 1);
}

static int sink_end(void *owner)
{
    struct h1 *h = owner;
    if (h->c->closing)
        return -1;
    if (h->rframing == PX_FRAME_CHUNKED) {
        uv_buf_t b = uv_buf_init("0\r\n\r\n", 5);
        if (write_client(h, &b, 1) < 0)
            return -1;
    }
    return 0;
}

static void sink_abort(void *owner, int status)
{
    send_error(owner, status);
}

/* HTTP/1.1 clients get no trailers (the body is re-chunked without them). */
static const struct px_sink h1_sink = {
    .head = sink_head,
    .data = sink_data,
    .end = sink_end,
    .abort = sink_abort,
};

/* --- the protocol handler -------------------------------------------- */

static void req_resume(struct h1 *h)
{
    if (h->req_paused) {
        h->req_paused = false;
        if (h->req_upgrade)
            llhttp_resume_after_upgrade(&h->req);
        else
            llhttp_resume(&h->req);
    }
    px_conn_want_input(h->c, true);
}

static size_t h1_on_data(struct px_conn *c, const char *data, size_t len)
{
    struct h1 *h = c->ps;
    if (h->phase == PH_DONE)
        return len;
    if (h->phase == PH_TUNNEL) {
        size_t used = h->tun ? px_tunnel_client_data(h->tun, data, len) : len;
        h->x->log.bytes_in += used;
        return used;
    }
    size_t done = 0;
    for (;;) {
        size_t stop;
        if (px_h1_scan_head(&h->scan, data + done, len - done, &stop) < 0) {
            px_log_debug("h1: refusing request from %s: 400 (malformed head bytes)", c->client_ip);
            send_error(h, 400);
            return len;
        }
        llhttp_errno_t e;
        if (stop < len - done) {
            /* An HTAB in a Content-Length value: llhttp gets the bytes
             * before it, then SP in its place. Both pieces end inside the
             * head, where the parser never pauses. */
            e = llhttp_execute(&h->req, data + done, stop);
            if (e == HPE_OK)
                e = llhttp_execute(&h->req, " ", 1);
            if (c->closing)
                return len;
            if (e == HPE_OK) {
                done += stop + 1;
                continue;
            }
            if (e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE)
                e = HPE_INTERNAL; /* cannot happen: refuse rather than lose track */
        } else {
            e = llhttp_execute(&h->req, data + done, len - done);
        }
        if (c->closing)
            return len;
        if (e == HPE_OK) {
            if (h->x && h->x->u && px_upstream_congested(h->x->u)) {
                h->up_congested = true;
                px_conn_want_input(c, false);
            }
            return len;
        }
        if (e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE) {
            done += (size_t)(llhttp_get_error_pos(&h->req) - (data + done));
            if (e == HPE_PAUSED_UPGRADE && h->phase == PH_IDLE) {
                /* A request that asked for an upgrade was answered as a
                 * plain one (Upgrade is stripped): keep parsing HTTP. */
                llhttp_resume_after_upgrade(&h->req);
                memset(&h->scan, 0, sizeof h->scan);
                if (done == len)
                    return len;
                continue;
            }
            h->req_paused = true;
            h->req_upgrade = e == HPE_PAUSED_UPGRADE;
            px_conn_want_input(c, false);
            if (h->phase == PH_UPSTREAM)
                exchange_start(h); /* may resume input at once (pooled backend) */
            return done;
        }
        int status = h->err_status ? h->err_status : 400;
        if (e != HPE_USER)
            h->minor = h->req.http_major == 1 && h->req.http_minor == 0 ? 0 : 1;
        px_log_debug("h1: refusing request from %s: %d (%s)", c->client_ip, status,
                     llhttp_errno_name(e));
        send_error(h, status);
        return len;
    }
}

static void h1_on_eof(struct px_conn *c)
{
    struct h1 *h = c->ps;
    if (h->phase == PH_TUNNEL) {
        if (h->tun)
            px_tunnel_client_eof(h->tun);
        return;
    }
    if ((h->phase == PH_UPSTREAM || h->phase == PH_FORWARD) && h->req_complete) {
        h->close_after = true; /* answer, then close */
        return;
    }
    px_conn_close(c);
}

static void h1_on_writable(struct px_conn *c)
{
    struct h1 *h = c->ps;
    if (h->phase == PH_TUNNEL) {
        if (h->tun)
            px_tunnel_client_writable(h->tun);
        return;
    }
    if (h->x && h->x->u && h->phase == PH_FORWARD) {
        px_upstream_read(h->x->u, true);
        px_conn_timer(c, ms(c->lis->model->request_timeout_s));
    }
}

static void h1_on_timeout(struct px_conn *c)
{
    struct h1 *h = c->ps;
    switch (h->phase) {
    case PH_IDLE:
        px_conn_close(c);
        break;
    case PH_HEAD:
        send_error(h, 408);
        break;
    case PH_UPSTREAM:
    case PH_FORWARD:
        if (!h->req_complete && h->phase == PH_FORWARD && c->want_input)
            send_error(h, 408); /* the client stopped sending its body */
        else
            send_error(h, 504);
        break;
    case PH_DONE:
    case PH_TUNNEL: /* idle for idle_timeout_s both ways */
        px_conn_close(c);
        break;
    }
}

static void h1_drain(struct px_conn *c)
{
    struct h1 *h = c->ps;
    if (h->phase == PH_TUNNEL)
        return; /* a tunnel runs until its ends close it or the drain deadline */
    if (h->phase == PH_IDLE && c->in_len == 0)
        px_conn_close(c);
    else
        h->close_after = true;
}

static void h1_on_close(struct px_conn *c)
{
    struct h1 *h = c->ps;
    if (h) {
        /* A tunnel's end, or a client that left before its response
         * ended. */
        if (h->phase == PH_TUNNEL)
            log_end(h, 101, NULL);
        else
            log_end(h, h->resp_started ? h->status : 0, "client_closed");
        drop_upstream(h, false);
        px_tunnel_free(h->tun);
        h->tun = NULL;
    }
}

static void h1_free(struct px_conn *c)
{
    struct h1 *h = c->ps;
    if (!h)
        return;
    px_buf_cleanup(&h->hin);
    px_buf_cleanup(&h->hout);
    px_buf_cleanup(&h->tgt);
    x_put(h);
    px_compress_free(h->cz);
    px_client_cleanup(&h->cl);
    free(h);
    c->ps = NULL;
}

/* Idle: between requests, nothing parsed or forwarded. */
static bool h1_idle(struct px_conn *c)
{
    struct h1 *h = c->ps;
    return h && h->phase == PH_IDLE && !h->x && !h->req_paused;
}

/* Parked: the head buffers and the compressor state go; the next request
 * takes them again (px_buf growth, the compression filter). The exchange
 * and the header scratch went back to the worker when the response
 * ended. */
static void h1_park(struct px_conn *c)
{
    struct h1 *h = c->ps;
    px_buf_cleanup(&h->hin);
    px_buf_cleanup(&h->hout);
    px_buf_cleanup(&h->tgt);
    px_hdrlist_reset(&h->hl);
    px_compress_free(h->cz);
    h->cz = NULL;
}

static int h1_start(struct px_conn *c)
{
    struct h1 *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    h->c = c;
    h->minor = 1;
    px_buf_init(&h->hin, PX_H1_MAX_TARGET + PX_H1_MAX_HEADERS + PX_BACKEND_MAX_HEAD);
    px_buf_init(&h->hout, 2 * (PX_H1_MAX_TARGET + PX_H1_MAX_HEADERS) + PX_BACKEND_MAX_HEAD);
    px_client_init(&h->cl, c);
    px_buf_init(&h->tgt, PX_H1_MAX_TARGET + 1);
    llhttp_init(&h->req, HTTP_REQUEST, &req_settings);
    h->req.data = h;
    c->ps = h;
    px_conn_timer(c, ms(c->lis->model->idle_timeout_s));
    px_conn_idle(c);
    return 0;
}

/* Idle keep-alive connections let go of the old snapshot at once, so it is
 * freed without waiting for their next request or idle timeout; busy ones
 * move in response_done. */
static void h1_on_snapshot(struct px_conn *c)
{
    struct h1 *h = c->ps;
    if (h->phase == PH_TUNNEL) {
        /* A WebSocket survives every change that keeps its listener (and
         * lets go of the old snapshot); when the listener is removed it
         * drains like a request: closed at a deadline. */
        if (px_conn_snapshot_refresh(c) < 0 && !h->tun_deadline) {
            h->tun_deadline = uv_now(&c->w->loop) + c->w->rt->drain_ms + 1;
            tun_activity(h);
        }
        return;
    }
    if (h->phase != PH_IDLE)
        return;
    if (px_conn_snapshot_refresh(c) < 0) {
        h->phase = PH_DONE;
        px_conn_finish(c);
    }
}

const struct px_proto px_h1_proto = {
    .name = "http/1.1",
    .start = h1_start,
    .on_data = h1_on_data,
    .on_eof = h1_on_eof,
    .on_writable = h1_on_writable,
    .on_timeout = h1_on_timeout,
    .drain = h1_drain,
    .on_snapshot = h1_on_snapshot,
    .idle = h1_idle,
    .park = h1_park,
    .on_close = h1_on_close,
    .free = h1_free,
};
