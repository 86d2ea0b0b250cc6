/* One HTTP/2 stream's forwarding exchange: see h2_stream.h. Responses are
 * parsed by proxy/backend_h1.c into the sink below and submitted as
 * HEADERS, a deferred data provider and optional trailers; each stream
 * stops reading its backend while it holds more than RESP_HIGH bytes the
 * client has not taken. */
#include "proxy/h2_stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/compress.h"
#include "proxy/alog.h"
#include "proxy/conn-io.h"
#include "proxy/h2.h"
#include "proxy/exchange.h"
#include "proxy/headers.h"
#include "common/log.h"
#include "proxy/req.h"
#include "proxy/reqid.h"
#include "proxy/snapshot.h"
#include "proxy/sticky.h"
#include "proxy/upstream.h"

static const struct px_sink h2_sink;
static const struct px_exchange_cbs x_cbs;

static uint64_t ms(int seconds)
{
    return (uint64_t)seconds * 1000;
}

/* --- streams: allocation and release --------------------------------- */

struct h2_stream *px_h2_stream_new(struct h2 *h, int32_t id)
{
    struct h2_stream *s = h->free_streams;
    if (s) {
        h->free_streams = s->next;
        h->n_free--;
    } else {
        s = calloc(1, sizeof *s);
        if (!s)
            return NULL;
        s->hl.ents = calloc(PX_HDR_MAX, sizeof *s->hl.ents);
        if (!s->hl.ents) {
            free(s);
            return NULL;
        }
        px_buf_init(&s->hout, 2 * PX_H2_MAX_HEADER_LIST + 4096);
        px_buf_init(&s->pend, 2 * PX_H2_STREAM_WINDOW);
        px_buf_init(&s->hin, PX_BACKEND_MAX_HEAD + 1024);
        px_buf_init(&s->rq, 4 * RESP_HIGH);
    }
    /* Reset everything but the buffers' storage. */
    struct px_hdr_ent *ents = s->hl.ents;
    struct px_buf hout = s->hout, pend = s->pend, hin = s->hin, rq = s->rq;
    memset(s, 0, sizeof *s);
    s->hl.ents = ents;
    s->hout = hout;
    s->pend = pend;
    s->hin = hin;
    s->rq = rq;
    px_buf_reset(&s->hout);
    px_buf_reset(&s->pend);
    px_buf_reset(&s->hin);
    px_buf_reset(&s->rq);

    s->h = h;
    s->id = id;
    px_exchange_init(&s->x, h->c->w, "h2", &x_cbs, s);
    s->snap = px_snapshot_ref(h->c->snap);
    s->lis = h->c->lis;
    s->next = h->active;
    if (h->active)
        h->active->prev = s;
    h->active = s;
    if (h->n_active++ == 0)
        px_conn_timer(h->c, ms(s->lis->model->request_timeout_s));
    px_h2_touch(s);
    return s;
}

void px_h2_stream_free(struct h2_stream *s)
{
    px_compress_release(&s->x);
    px_alog_discard(&s->x.log);
    px_buf_cleanup(&s->hout);
    px_buf_cleanup(&s->pend);
    px_buf_cleanup(&s->hin);
    px_buf_cleanup(&s->rq);
    free(s->hl.ents);
    free(s);
}

void px_h2_stream_drop_upstream(struct h2_stream *s, bool keep)
{
    px_exchange_release(&s->x, keep);
}

void px_h2_stream_log_end(struct h2_stream *s, const char *reason)
{
    s->x.log.bytes_in = s->meter.total;
    px_alog_end(&s->x.log, s->status, reason);
}

/* The stream is closed (nghttp2 forgot it): back to the free list. */
void px_h2_stream_release(struct h2_stream *s)
{
    struct h2 *h = s->h;
    px_h2_stream_drop_upstream(s, false);
    px_compress_release(&s->x);
    px_h2_stream_log_end(s, NULL);
    px_snapshot_unref(s->snap);
    s->snap = NULL;
    if (s->prev)
        s->prev->next = s->next;
    else
        h->active = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = NULL;
    h->n_active--;
    if (h->n_free >= FREE_STREAMS_MAX) {
        px_h2_stream_free(s);
    } else {
        if (s->pend.cap > KEEP_BUF_MAX)
            px_buf_cleanup(&s->pend);
        if (s->rq.cap > KEEP_BUF_MAX)
            px_buf_cleanup(&s->rq);
        if (s->hout.cap > KEEP_BUF_MAX)
            px_buf_cleanup(&s->hout);
        if (s->hin.cap > KEEP_BUF_MAX)
            px_buf_cleanup(&s->hin);
        s->next = h->free_streams;
        h->free_streams = s;
        h->n_free++;
    }
    if (h->n_active == 0 && !h->c->closing && h->c->state == PX_CONN_OPEN)
        px_conn_timer(h->c, ms(h->c->lis->model->idle_timeout_s));
}

/* --- the response side ------------------------------------------------ */

static void resume_output(struct h2_stream *s)
{
    if (s->deferred) {
        s->deferred = false;
        nghttp2_session_resume_data(s->h->ng, s->id);
    }
}

/* Fills nva from hd[0..n) (h->hdrs, or a response filter's copy) minus
 * hop-by-hop fields; names are lowercased in place (they live in the
 * stream's hin or in the filter's writable storage). Returns the count. */
static size_t fields_to_nv(struct h2 *h, const struct px_hdr *hd, size_t n, size_t first)
{
    bool drop[PX_HDR_MAX];
    px_headers_mark_hop(hd, n, drop);
    size_t k = first;
    for (size_t i = 0; i < n; i++) {
        if (drop[i])
            continue;
        char *name = (char *)hd[i].name;
        for (size_t j = 0; j < hd[i].name_len; j++)
            if (name[j] >= 'A' && name[j] <= 'Z')
                name[j] = (char)(name[j] - 'A' + 'a');
        h->nva[k++] = (nghttp2_nv){(uint8_t *)name, (uint8_t *)hd[i].value, hd[i].name_len,
                                   hd[i].value_len, NGHTTP2_NV_FLAG_NONE};
    }
    return k;
}

/* n bytes at rq_off have gone to the client (copied into a frame, or
 * written by px_h2_stream_send_data). */
static void body_consumed(struct h2_stream *s, size_t n)
{
    s->rq_off += n;
    s->x.log.bytes_out += n;
    if (s->rq_off == s->rq.len) {
        s->rq_off = 0;
        px_buf_reset(&s->rq);
    } else if (s->rq_off >= RESP_HIGH) {
        memmove(s->rq.data, s->rq.data + s->rq_off, s->rq.len - s->rq_off);
        s->rq.len -= s->rq_off;
        s->rq_off = 0;
    }
    px_h2_touch(s);
    if (s->up_paused && s->x.u && s->rq.len - s->rq_off < RESP_LOW) {
        s->up_paused = false;
        px_upstream_read(s->x.u, true);
    }
}

/* A DATA frame of at least this much is written from rq itself (nghttp2's
 * NO_COPY: px_h2_stream_send_data) instead of being copied into
 * nghttp2's frame buffer first; smaller ones are staged anyway. */
#define NOCOPY_MIN 4096

static ssize_t body_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *user)
{
    struct h2_stream *s = src->ptr;
    struct h2 *h = user;
    size_t avail = s->rq.len - s->rq_off;
    if (avail == 0 && !s->resp_complete) {
        s->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    size_t n = avail < length ? avail : length;
    if (n > DATA_MAX)
        n = DATA_MAX;
    bool last = s->resp_complete && n == avail;
    /* The frame header goes in the 9 bytes before the data, already sent
     * (so not for the first frame of what rq holds). nghttp2 calls
     * send_data within this same nghttp2_session_mem_send, before anything
     * else can touch rq. */
    if (n >= NOCOPY_MIN && s->rq_off >= 9) {
        *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    } else {
        if (n) /* an empty body: rq may never have been allocated */
            memcpy(buf, s->rq.data + s->rq_off, n);
        body_consumed(s, n);
    }
    if (last) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (s->has_trailers) {
            size_t k = fields_to_nv(h, h->hdrs, px_bresp_trailers(&s->bp), 0);
            if (k && nghttp2_submit_trailer(ng, id, h->nva, k) == 0)
                *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        }
    }
    return (ssize_t)n;
}

int px_h2_stream_send_data(struct h2_stream *s, const uint8_t *framehd, size_t length)
{
    char *p = s->rq.data + s->rq_off - 9;
    memcpy(p, framehd, 9);
    uv_buf_t b = uv_buf_init(p, (unsigned)(9 + length));
    int rc = px_conn_write(s->h->c, &b, 1); /* copies: TLS record or stage */
    body_consumed(s, length);
    return rc;
}

/* Answers the stream with albd's own error response; once the response has
 * begun there is nothing honest to send: reset the stream. */
void px_h2_stream_error(struct h2_stream *s, int status)
{
    struct h2 *h = s->h;
    px_h2_stream_drop_upstream(s, false);
    /* A request refused before it reached the pipeline starts its line
     * here; the line ends when the stream closes. */
    px_alog_begin(&s->x.log, s->lis, h->c->w->id, &h->cl, "2", NULL);
    if (!s->x.req_id[0] && s->lis->model->request_id.enabled)
        px_reqid_new(s->x.req_id, h->c->w->id);
    px_alog_request_id(&s->x.log, s->x.req_id[0] ? s->x.req_id : NULL);
    if (!s->x.log.reason)
        s->x.log.reason = px_alog_reason(status);
    if (!s->resp_submitted)
        s->status = status;
    s->discard = true;
    size_t give = s->pend_consume + s->unconsumed;
    s->pend_consume = s->unconsumed = 0;
    px_buf_reset(&s->pend);
    if (give)
        nghttp2_session_consume_stream(h->ng, s->id, give);
    if (s->resp_submitted) {
        nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    char st[8], len[16];
    px_buf_reset(&s->rq);
    s->rq_off = 0;
    s->has_trailers = false;
    snprintf(st, sizeof st, "%d", status);
    if (px_headers_error_body(&s->rq, status) < 0) {
        nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    snprintf(len, sizeof len, "%zu", s->rq.len);
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE}
    nghttp2_nv nva[] = {NV(":status", st), NV("content-type", "text/plain"),
                        NV("cache-control", "no-store"), NV("content-length", len),
                        NV("x-request-id", s->x.req_id)};
#undef NV
    size_t n_nva = sizeof nva / sizeof nva[0];
    if (!s->x.req_id[0] || !s->lis->model->request_id.echo)
        n_nva--; /* x-request-id is last */
    s->resp_complete = true;
    s->resp_submitted = true;
    nghttp2_data_provider dp = {.source.ptr = s, .read_callback = body_read};
    if (nghttp2_submit_response(h->ng, s->id, nva, n_nva, s->is_head ? NULL : &dp) != 0) {
        nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    px_req_count_response(h->c->w, status);
}

/* --- the response sink: the backend's response becomes HEADERS, DATA and
 * trailers (proxy/backend_h1.c parses it) --------------------------------- */

static int sink_head(void *owner, const struct px_resp_head *rh)
{
    struct h2_stream *s = owner;
    struct h2 *h = s->h;
    int status = rh->status;
    if (status == 101 || status < 100 || status > 999)
        return -1; /* albd did not ask for an upgrade */
    if (status < 200)
        return 0; /* interim responses are not forwarded */
    px_alog_upstream_head(&s->x.log, status);
    s->status = status;
    char st[4];
    snprintf(st, sizeof st, "%d", status);
    h->nva[0] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)st, 7, 3, NGHTTP2_NV_FLAG_NONE};
    size_t k = fields_to_nv(h, rh->h, rh->n, 1);
    if (s->x.req_id[0] && s->lis->model->request_id.echo) /* h->nva has room for it */
        h->nva[k++] = (nghttp2_nv){(uint8_t *)"x-request-id", (uint8_t *)s->x.req_id, 12,
                                   strlen(s->x.req_id), NGHTTP2_NV_FLAG_NONE};
    bool bodyless = s->is_head || status == 204 || status == 304;
    nghttp2_data_provider dp = {.source.ptr = s, .read_callback = body_read};
    if (nghttp2_submit_response(h->ng, s->id, h->nva, k, bodyless ? NULL : &dp) != 0)
        return -1;
    s->resp_submitted = true;
    px_req_count_response(h->c->w, status);
    return 0;
}

static int sink_data(void *owner, const char *at, size_t len)
{
    struct h2_stream *s = owner;
    if (px_buf_append(&s->rq, at, len) < 0)
        return -1;
    if (!s->up_paused && s->x.u && s->rq.len - s->rq_off > RESP_HIGH) {
        s->up_paused = true;
        px_upstream_read(s->x.u, false);
    }
    resume_output(s);
    return 0;
}

/* Trailers stay in the parser's buffer; body_read submits them after the
 * last DATA. */
static int sink_trailers(void *owner, const struct px_hdr *f, size_t n)
{
    struct h2_stream *s = owner;
    (void)f;
    s->has_trailers = n > 0;
    return 0;
}

static int sink_end(void *owner)
{
    struct h2_stream *s = owner;
    s->resp_complete = true;
    px_alog_upstream_end(&s->x.log);
    resume_output(s);
    return 0;
}

static void sink_abort(void *owner, int status)
{
    px_h2_stream_error(owner, status);
}

static const struct px_sink h2_sink = {
    .head = sink_head,
    .data = sink_data,
    .trailers = sink_trailers,
    .end = sink_end,
    .abort = sink_abort,
};

/* The response is complete: the backend connection goes back to its pool
 * when nothing is left over and the request was complete too. */
static void response_done(struct h2_stream *s, bool clean)
{
    bool keep = clean && s->req_complete && s->x.group && s->x.group->model->upstream_keepalive &&
                px_bresp_keepalive(&s->bp, 1);
    px_h2_stream_drop_upstream(s, keep);
    if (!s->req_complete) {
        /* The rest of the request body has nowhere to go. */
        s->discard = true;
        size_t give = s->pend_consume + s->unconsumed;
        s->pend_consume = s->unconsumed = 0;
        px_h2_give_window(s, give);
    }
}

/* --- the backend side ------------------------------------------------- */

/* Gives consumed request bytes back to the client's stream window. */
void px_h2_give_window(struct h2_stream *s, size_t n)
{
    if (n)
        nghttp2_session_consume_stream(s->h->ng, s->id, n);
}

/* Sends framed request bytes to the backend, or keeps them until it is
 * connected. data_len is how many of them are DATA payload (for flow
 * control). Returns 0, or -1 when the stream was answered with an error. */
int px_h2_send_up(struct h2_stream *s, const uv_buf_t *b, unsigned n, size_t data_len)
{
    if (s->x.ready) {
        int rc = px_upstream_write(s->x.u, b, n);
        if (rc < 0) {
            px_h2_stream_error(s, 502);
            return -1;
        }
        if (data_len)
            s->x.body_sent = true;
        if (px_upstream_congested(s->x.u)) {
            s->unconsumed += data_len;
            if (data_len)
                s->held = true;
        } else {
            px_h2_give_window(s, data_len);
        }
        px_h2_touch(s);
        return 0;
    }
    for (unsigned i = 0; i < n; i++) {
        if (px_buf_append(&s->pend, b[i].base, b[i].len) < 0) {
            px_h2_stream_error(s, 502);
            return -1;
        }
    }
    s->pend_consume += data_len;
    if (data_len)
        s->held = true;
    return 0;
}

static void upstream_ready(void *owner)
{
    struct h2_stream *s = owner;
    px_bresp_init(&s->bp, s->sink, s->x.sink_owner, &s->hin, &s->hl, s->h->hdrs, s->is_head, true);
    px_sticky_watch(&s->x, &s->bp);
    uv_buf_t b[2] = {uv_buf_init(s->hout.data, (unsigned)s->hout.len),
                     uv_buf_init(s->pend.data, (unsigned)s->pend.len)};
    int rc = px_upstream_write(s->x.u, b, s->pend.len ? 2 : 1);
    if (rc < 0) {
        px_exchange_lost(&s->x, rc);
        return;
    }
    if (s->pend.len)
        s->x.body_sent = true;
    px_buf_reset(&s->pend);
    size_t give = s->pend_consume;
    s->pend_consume = 0;
    if (px_upstream_congested(s->x.u))
        s->unconsumed += give;
    else
        px_h2_give_window(s, give);
    px_h2_touch(s);
}

/* No backend could take the request: the response ends through the sink
 * (and any filter in front of it). */
static void up_fail(void *owner, int status)
{
    struct h2_stream *s = owner;
    s->sink->abort(s->x.sink_owner, status);
}

static void up_connect_done(void *owner)
{
    struct h2_stream *s = owner;
    px_h2_flush(s->h);
}

static void up_on_read(void *owner, const char *data, ssize_t n)
{
    struct h2_stream *s = owner;
    struct h2 *h = s->h;
    if (n < 0) {
        if (!s->bp.any)
            px_exchange_lost(&s->x, (int)n);
        else if (n == UV_EOF && px_bresp_eof(&s->bp))
            response_done(s, false);
        else
            s->sink->abort(s->x.sink_owner, 502); /* cut: through the filters, to the stream */
        px_h2_flush_later(h);
        return;
    }
    px_h2_touch(s);
    enum px_bresp_rc rc = px_bresp_feed(&s->bp, data, (size_t)n, NULL);
    if (rc == PX_BRESP_DONE || rc == PX_BRESP_LEFTOVER) {
        response_done(s, rc == PX_BRESP_DONE);
    } else if (rc != PX_BRESP_MORE) {
        px_log_debug("h2: malformed response from %s: %s", s->x.server->key,
                     px_bresp_error(&s->bp));
        s->sink->abort(s->x.sink_owner, 502);
    }
    px_h2_flush_later(h);
}

static void up_on_writable(void *owner)
{
    struct h2_stream *s = owner;
    size_t give = s->unconsumed;
    s->unconsumed = 0;
    px_h2_give_window(s, give);
    px_h2_flush(s->h);
}

static const struct px_exchange_cbs x_cbs = {
    .ready = upstream_ready,
    .fail = up_fail,
    .on_read = up_on_read,
    .on_writable = up_on_writable,
    .connect_done = up_connect_done,
};

void px_h2_stream_forward(struct h2_stream *s, struct px_req *r)
{
    int st = px_req_start(r, &s->x, &s->hout, NULL, &h2_sink, &s->sink);
    if (st == PX_REQ_ANSWERED)
        response_done(s, false); /* albd answered: a body not read is discarded */
    else if (st)
        px_h2_stream_error(s, st);
}
