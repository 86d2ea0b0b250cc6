/* HTTP/2 server side (nghttp2): the session. Each stream's forwarding
 * exchange lives in proxy/h2_stream.c (state in h2-t.h).
 *
 * Input: client plaintext goes to nghttp2_session_mem_recv; its callbacks
 * collect each request header block (in per-connection scratch: a block is
 * never interleaved with other frames), check it, turn it into a struct
 * px_req and start the request pipeline (proxy/req.c) on its stream.
 * Request DATA goes to the stream's backend connection (or waits in the
 * stream until it is connected); its stream window is consumed only once
 * the backend accepts the bytes, so a slow backend slows the client down
 * instead of growing albd.
 *
 * Output: frames are produced with nghttp2_session_mem_send outside
 * nghttp2's callbacks (px_h2_flush), coalesced into TLS-record-sized
 * writes, and only while the client's output queue is below its
 * high-water mark.
 *
 * Timers: the connection has one timer. With streams open it fires at the
 * earliest stream deadline (request timeout since the last progress; stale
 * deadlines only make it fire early and re-arm); with none, at the idle
 * timeout, which ends the connection with GOAWAY. */
#include "proxy/h2.h"

#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/backend_h1.h"
#include "proxy/conn-io.h"
#include "proxy/h2_stream.h"
#include "proxy/exchange.h"
#include "proxy/hdrlist.h"
#include "proxy/headers.h"
#include "common/log.h"
#include "proxy/mempool.h"
#include "proxy/req.h"
#include "proxy/snapshot.h"
#include "proxy/tls_ctx.h"
#include "proxy/tls_headers.h"
#include "proxy/tls_io.h"
#include "proxy/upstream.h"

static void count_reset(struct h2 *h);

static uint64_t ms(int seconds)
{
    return (uint64_t)seconds * 1000;
}

static bool name_is(const char *n, size_t len, const char *lit)
{
    size_t l = strlen(lit);
    return len == l && strncasecmp(n, lit, l) == 0;
}

static struct h2_stream *stream_get(struct h2 *h, int32_t id)
{
    return nghttp2_session_get_stream_user_data(h->ng, id);
}

/* --- requests --------------------------------------------------------- */

static void hb_reset(struct h2 *h)
{
    px_buf_reset(&h->hb);
    h->n_ents = 0;
    h->hb_bytes = 0;
    h->hb_over = false;
    h->p_method = h->p_path = h->p_authority = h->p_scheme = -1;
}

static struct px_hdr hb_field(struct h2 *h, int i)
{
    struct px_hdr_ent *e = &h->ents[i];
    return (struct px_hdr){h->hb.data + e->no, e->nl, h->hb.data + e->vo, e->vl};
}

/* The request as the pipeline (proxy/req.c) takes it, from the received
 * header block: :authority becomes Host (first), cookies split by HTTP/2
 * are joined again. Returns 0 or -1 (too large: 431). */
static int make_req(struct h2_stream *s, const char *method, struct px_req *r)
{
    struct h2 *h = s->h;
    /* Join the cookie fields first: it appends to hb (which may move). */
    int first_cookie = -1, n_cookies = 0;
    for (size_t i = 0; i < h->n_ents; i++) {
        struct px_hdr f = hb_field(h, (int)i);
        if (name_is(f.name, f.name_len, "cookie") && n_cookies++ == 0)
            first_cookie = (int)i;
    }
    struct px_hdr_ent joined = {0};
    if (n_cookies > 1) {
        joined.vo = (uint32_t)h->hb.len;
        for (size_t i = 0; i < h->n_ents; i++) {
            struct px_hdr f = hb_field(h, (int)i);
            if (!name_is(f.name, f.name_len, "cookie"))
                continue;
            if (h->hb.len > joined.vo && px_buf_append(&h->hb, "; ", 2) < 0)
                return -1;
            /* The value lies inside hb: px_buf_append copies it safely
             * even when hb has to move to make room. */
            f = hb_field(h, (int)i);
            if (px_buf_append(&h->hb, f.value, f.value_len) < 0)
                return -1;
        }
        joined.vl = (uint32_t)(h->hb.len - joined.vo);
    }
    size_t n = 0;
    struct px_hdr a = {0};
    if (h->p_authority >= 0) {
        a = hb_field(h, h->p_authority);
        h->hdrs[n++] = (struct px_hdr){"Host", 4, a.value, a.value_len};
    }
    bool has_cl = false;
    for (size_t i = 0; i < h->n_ents && n < PX_HDR_MAX; i++) {
        struct px_hdr f = hb_field(h, (int)i);
        if (f.name_len && f.name[0] == ':')
            continue;
        if (h->p_authority >= 0 && name_is(f.name, f.name_len, "host"))
            continue;
        if (n_cookies > 1 && name_is(f.name, f.name_len, "cookie")) {
            if ((int)i != first_cookie)
                continue;
            f.value = h->hb.data + joined.vo;
            f.value_len = joined.vl;
        }
        if (name_is(f.name, f.name_len, "content-length"))
            has_cl = true;
        if (!a.value && name_is(f.name, f.name_len, "host"))
            a = f;
        h->hdrs[n++] = f;
    }
    struct px_hdr path = hb_field(h, h->p_path), scheme = hb_field(h, h->p_scheme);
    const char *q = memchr(path.value, '?', path.value_len);
    /* The body is streamed as it comes: with its length when the client
     * gave one, else chunked. */
    enum px_framing fr = PX_FRAME_NONE;
    if (!s->req_complete)
        fr = has_cl ? PX_FRAME_LENGTH : PX_FRAME_CHUNKED;
    s->chunked = fr == PX_FRAME_CHUNKED;
    *r = (struct px_req){
        .lis = s->lis,
        .client = &h->cl,
        .method = method,
        .scheme = scheme.value,
        .scheme_len = scheme.value_len,
        .authority = a.value,
        .authority_len = a.value_len,
        .target = path.value,
        .target_len = path.value_len,
        .path = path.value,
        .path_len = path.value_len,
        .query = q ? q + 1 : NULL,
        .query_len = q ? (size_t)(path.value + path.value_len - q - 1) : 0,
        .hdrs = h->hdrs,
        .n_hdrs = n,
        .minor = 1,
        .body = fr,
        .is_head = s->is_head,
    };
    return 0;
}

/* The authority check HTTP/1.1 makes on Host (px_authority_check), so
 * both protocols answer 400 for the same values: :authority and every
 * host field must pass, a request needs one of them (an HTTP/1.1 backend
 * gets it as Host), and without :authority at most one host field. */
static bool request_authority_ok(struct h2 *h)
{
    size_t hosts = 0;
    if (h->p_authority >= 0) {
        struct px_hdr a = hb_field(h, h->p_authority);
        if (!px_authority_check(a.value, a.value_len))
            return false;
    }
    for (size_t i = 0; i < h->n_ents; i++) {
        struct px_hdr f = hb_field(h, (int)i);
        if (!name_is(f.name, f.name_len, "host"))
            continue;
        if (++hosts > 1 && h->p_authority < 0)
            return false;
        if (!px_authority_check(f.value, f.value_len))
            return false;
    }
    return h->p_authority >= 0 || hosts == 1;
}

/* :scheme and :path: an HTTP/1.1 backend can carry only http and https,
 * and :path must pass the target rule HTTP/1.1 applies (origin-form, or
 * "*" for OPTIONS; visible ASCII): nghttp2 checks :path only for those
 * two schemes, and not its bytes. */
static bool request_target_ok(struct h2 *h, bool options)
{
    struct px_target t;
    struct px_hdr sc = hb_field(h, h->p_scheme), path = hb_field(h, h->p_path);
    if (!name_is(sc.value, sc.value_len, "http") && !name_is(sc.value, sc.value_len, "https"))
        return false;
    return px_target_parse(path.value, path.value_len, options, false, &t) == 0;
}

/* The request's content-length (nghttp2 has checked that it is a number),
 * or 0 when it has none. */
static uint64_t request_length(struct h2 *h)
{
    for (size_t i = 0; i < h->n_ents; i++) {
        struct px_hdr f = hb_field(h, (int)i);
        if (!name_is(f.name, f.name_len, "content-length"))
            continue;
        uint64_t v = 0;
        for (size_t j = 0; j < f.value_len; j++) {
            if (f.value[j] < '0' || f.value[j] > '9')
                break;
            if (v > (UINT64_MAX - 9) / 10)
                return UINT64_MAX;
            v = v * 10 + (uint64_t)(f.value[j] - '0');
        }
        return v;
    }
    return 0;
}

/* A request header block is complete (END_STREAM may be set too). */
static void request_start(struct h2_stream *s, bool end_stream)
{
    struct h2 *h = s->h;
    s->in_head = false;
    px_h2_touch(s); /* from now on the request timeout applies */
    if (s->discard) {
        /* Answered while its header block was arriving (header timeout):
         * the block completed too late, nothing starts. */
        s->req_complete = end_stream;
        return;
    }
    atomic_fetch_add_explicit(&h->c->w->stats.requests, 1, memory_order_relaxed);
    s->req_complete = end_stream;
    if (h->hb_over) {
        px_h2_stream_error(s, 431);
        return;
    }
    if (h->p_method < 0 || h->p_path < 0 || h->p_scheme < 0) {
        px_h2_stream_error(s, 400);
        return;
    }
    char method[24];
    struct px_hdr mf = hb_field(h, h->p_method);
    if (mf.value_len == 0 || mf.value_len >= sizeof method) {
        px_h2_stream_error(s, 501);
        return;
    }
    memcpy(method, mf.value, mf.value_len);
    method[mf.value_len] = '\0';
    if (strcmp(method, "CONNECT") == 0 || strcmp(method, "TRACE") == 0) {
        px_h2_stream_error(s, 405);
        return;
    }
    if (!request_authority_ok(h) || !request_target_ok(h, strcmp(method, "OPTIONS") == 0)) {
        px_h2_stream_error(s, 400);
        return;
    }
    /* maxRequestBodyBytes: a declared length over the limit is answered at
     * once, as HTTP/1.1 does (a body without one is counted in
     * cb_data_chunk). */
    uint64_t max = s->lis->model->limits.max_request_body_bytes;
    if (max && !end_stream && request_length(h) > max) {
        px_h2_stream_error(s, 413);
        return;
    }
    s->is_head = strcmp(method, "HEAD") == 0;
    struct px_req r;
    if (make_req(s, method, &r) < 0) {
        px_h2_stream_error(s, 431);
        return;
    }
    px_h2_stream_forward(s, &r);
}

/* Fields a client may never send as a request trailer. A backend that
 * merges trailers into the head must not learn from them what the head
 * could not say: the fields albd owns in the head (forwarding metadata,
 * client-certificate headers) and fields that frame, route or authorize a
 * request (RFC 9110 6.5.1). */
static const char *const trailer_denied[] = {
    "content-length", "content-type",        "content-encoding", "content-range", "host",
    "authorization",  "proxy-authorization", "cookie",           "expect",        "max-forwards",
    "range",          "cache-control",       "pragma",           "upgrade",
};

/* Whether a request trailer named n[0..len) may go to the backend. Names
 * are compared with '_' read as '-' (CGI-style backends read both
 * spellings as one variable). */
static bool trailer_allowed(const struct rc_listener *m, const char *n, size_t len)
{
    char norm[128];
    if (len == 0 || n[0] == ':' || len >= sizeof norm)
        return false;
    for (size_t i = 0; i < len; i++)
        norm[i] = n[i] == '_' ? '-' : n[i];
    if (px_header_is_hop(norm, len) || px_tls_header_reserved(m, n, len) ||
        px_tls_header_reserved(m, norm, len))
        return false;
    if (px_header_is_forwarding(n, len))
        return false;
    if (len > 3 && strncasecmp(norm, "if-", 3) == 0)
        return false; /* conditionals */
    for (size_t i = 0; i < sizeof trailer_denied / sizeof trailer_denied[0]; i++)
        if (name_is(norm, len, trailer_denied[i]))
            return false;
    return true;
}

/* The client ended its request (END_STREAM), possibly with trailers in the
 * header block scratch: those trailer_allowed passes are forwarded when the
 * body is chunked, all are dropped otherwise (HTTP/1.1 has no trailers
 * without chunked framing). */
static void request_end(struct h2_stream *s, bool trailers)
{
    struct h2 *h = s->h;
    s->req_complete = true;
    if (s->discard || !s->chunked)
        return;
    if (!trailers || h->hb_over || h->n_ents == 0) {
        uv_buf_t b = uv_buf_init("0\r\n\r\n", 5);
        px_h2_send_up(s, &b, 1, 0);
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < h->n_ents; i++) {
        struct px_hdr f = hb_field(h, (int)i);
        if (!trailer_allowed(s->lis->model, f.name, f.name_len))
            continue;
        h->hdrs[n++] = f;
    }
    bool drop[PX_HDR_MAX];
    px_headers_mark_hop(h->hdrs, n, drop);
    size_t nb = 0;
    uv_buf_t b[1 + 4 * 64 + 1];
    b[nb++] = uv_buf_init("0\r\n", 3);
    for (size_t i = 0; i < n && nb + 4 < sizeof b / sizeof b[0]; i++) {
        if (drop[i])
            continue;
        b[nb++] = uv_buf_init((char *)h->hdrs[i].name, (unsigned)h->hdrs[i].name_len);
        b[nb++] = uv_buf_init(": ", 2);
        b[nb++] = uv_buf_init((char *)h->hdrs[i].value, (unsigned)h->hdrs[i].value_len);
        b[nb++] = uv_buf_init("\r\n", 2);
    }
    b[nb++] = uv_buf_init("\r\n", 2);
    px_h2_send_up(s, b, (unsigned)nb, 0);
}

/* --- nghttp2 callbacks ------------------------------------------------ */

/* Arms the connection timer at the earliest stream deadline. */
static void rearm(struct h2 *h)
{
    uint64_t now = px_h2_now_ms(h), next = UINT64_MAX;
    for (struct h2_stream *s = h->active; s; s = s->next)
        if (s->deadline < next)
            next = s->deadline;
    if (next != UINT64_MAX)
        px_conn_timer(h->c, next > now ? next - now : 1);
}

/* The header scratch (request fields, pipeline fields, response nv):
 * 22 KiB in one block from the worker's free list (w->h2_scratch), taken
 * for the first stream and given back when the connection parks
 * (h2_park): recycled, not malloc'd and freed, so that sessions waking
 * and parking leave no holes in the heap. */
struct h2_scratch {
    struct px_hdr_ent ents[PX_HDR_MAX]; /* first: h->ents is the block */
    struct px_hdr hdrs[PX_HDR_MAX];
    nghttp2_nv nva[PX_HDR_MAX + 2]; /* :status, fields, x-request-id */
};

/* Scratch blocks cached per worker (the rest go back to malloc): a
 * session holds its block for as long as it is awake, so few change
 * hands at a time. */
#define H2_SCRATCH_CACHED 16

/* 0 or -1 (no memory). */
static int scratch_take(struct h2 *h)
{
    if (h->ents)
        return 0;
    struct px_worker *w = h->c->w;
    if (!w->h2_scratch.size) /* the first session on this worker */
        px_bufpool_init(&w->h2_scratch, sizeof(struct h2_scratch), H2_SCRATCH_CACHED);
    struct h2_scratch *s = px_bufpool_get(&w->h2_scratch);
    if (!s)
        return -1;
    h->ents = s->ents;
    h->hdrs = s->hdrs;
    h->nva = s->nva;
    return 0;
}

static void scratch_put(struct h2 *h)
{
    if (!h->ents)
        return;
    px_bufpool_put(&h->c->w->h2_scratch, (struct h2_scratch *)h->ents);
    h->ents = NULL;
    h->hdrs = NULL;
    h->nva = NULL;
}

static int cb_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    struct h2 *h = user;
    if (f->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (scratch_take(h) < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM */
    hb_reset(h);
    if (f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct h2_stream *s = px_h2_stream_new(h, f->hd.stream_id);
    if (!s)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM */
    nghttp2_session_set_stream_user_data(ng, f->hd.stream_id, s);
    /* headerTimeoutSeconds, as for HTTP/1.1: the block must be complete
     * this long after its first frame (a deadline, not reset by each
     * CONTINUATION); h2_on_timeout answers a late one. */
    const struct rc_listener *m = s->lis->model;
    int hs = m->limits.header_timeout_s;
    s->in_head = true;
    s->deadline =
        px_h2_now_ms(h) + ms(hs > 0 && hs < m->request_timeout_s ? hs : m->request_timeout_s);
    rearm(h);
    return 0;
}

static int cb_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    struct h2 *h = user;
    if (f->hd.type != NGHTTP2_HEADERS || h->hb_over)
        return 0;
    /* RFC 9113 6.5.2: the size of a field is its name, value and 32. */
    h->hb_bytes += namelen + valuelen + 32;
    if (h->hb_bytes > PX_H2_MAX_HEADER_LIST || h->n_ents >= PX_HDR_MAX) {
        h->hb_over = true;
        return 0;
    }
    struct px_hdr_ent e = {(uint32_t)h->hb.len, (uint32_t)namelen, 0, (uint32_t)valuelen};
    if (px_buf_append(&h->hb, name, namelen) < 0) {
        h->hb_over = true;
        return 0;
    }
    e.vo = (uint32_t)h->hb.len;
    if (px_buf_append(&h->hb, value, valuelen) < 0) {
        h->hb_over = true;
        return 0;
    }
    int idx = (int)h->n_ents;
    h->ents[h->n_ents++] = e;
    if (namelen && name[0] == ':') {
        if (namelen == 7 && memcmp(name, ":method", 7) == 0)
            h->p_method = idx;
        else if (namelen == 5 && memcmp(name, ":path", 5) == 0)
            h->p_path = idx;
        else if (namelen == 10 && memcmp(name, ":authority", 10) == 0)
            h->p_authority = idx;
        else if (namelen == 7 && memcmp(name, ":scheme", 7) == 0)
            h->p_scheme = idx;
    }
    return 0;
}

static int cb_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user)
{
    struct h2 *h = user;
    nghttp2_session_consume_connection(ng, len);
    struct h2_stream *s = stream_get(h, id);
    if (!s || s->discard) {
        nghttp2_session_consume_stream(ng, id, len);
        return 0;
    }
    /* maxRequestBodyBytes and minBodyRateBytesPerSecond, measured as for
     * HTTP/1.1; the rate window restarts whenever albd itself held back
     * the client's window (a slow backend, not a slow client). */
    if (s->held) {
        px_body_meter_restart(&s->meter);
        s->held = false;
    }
    int st = px_body_meter_add(&s->meter, s->lis->model, px_h2_now_ms(h), len);
    if (st) {
        /* Answered on the stream (HTTP/1.1 answers the same status and
         * closes); the rest of the body is dropped. A body cut off for
         * the client's fault counts against the reset budget: the
         * backend request had begun. */
        px_log_debug("h2: stream %d from %s: request body %s", s->id, h->c->client_ip,
                     st == 413 ? "over maxRequestBodyBytes" : "below minBodyRateBytesPerSecond");
        nghttp2_session_consume_stream(ng, id, len);
        px_h2_stream_error(s, st);
        count_reset(h);
        return 0;
    }
    if (s->chunked) {
        char hex[24];
        uv_buf_t b[3];
        px_h2_send_up(s, b, px_backend_h1_chunk(hex, (const char *)data, len, b), len);
    } else {
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
        px_h2_send_up(s, &b, 1, len);
    }
    return 0;
}

/* Counts streams that end in error through the client's doing, per window:
 * RST_STREAM frames the client sends ("rapid reset") and streams albd
 * resets or refuses because of what the client sent ("MadeYouReset": DATA
 * beyond content-length, flow-control or state violations, a body over the
 * limit or too slow). Either kind can start a backend request that is then
 * abandoned; a client that does more than PX_H2_RST_MAX of them in a window
 * is told to calm down (GOAWAY ENHANCE_YOUR_CALM). */
static void count_reset(struct h2 *h)
{
    uint64_t now = px_h2_now_ms(h);
    if (now - h->rst_since > PX_H2_RST_WINDOW_MS) {
        h->rst_since = now;
        h->rst_count = 0;
    }
    if (++h->rst_count > PX_H2_RST_MAX && !h->calmed) {
        h->calmed = true;
        px_log_warn("h2: %s reset or broke more than %d streams in %d s: closing", h->c->client_ip,
                    PX_H2_RST_MAX, PX_H2_RST_WINDOW_MS / 1000);
        nghttp2_session_terminate_session(h->ng, NGHTTP2_ENHANCE_YOUR_CALM);
    }
}

static int cb_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    struct h2 *h = user;
    struct h2_stream *s;
    bool end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    switch (f->hd.type) {
    case NGHTTP2_HEADERS:
        s = stream_get(h, f->hd.stream_id);
        if (!s)
            break;
        if (f->headers.cat == NGHTTP2_HCAT_REQUEST)
            request_start(s, end);
        else if (end)
            request_end(s, true);
        break;
    case NGHTTP2_DATA:
        s = stream_get(h, f->hd.stream_id);
        if (s && end)
            request_end(s, false);
        break;
    case NGHTTP2_RST_STREAM:
        count_reset(h);
        break;
    default:
        break;
    }
    return 0;
}

static int cb_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    struct h2 *h = user;
    /* A stream albd resets for a protocol or flow-control error is the
     * client's fault (nghttp2 sends these on its own). NO_ERROR (an answer
     * that came before the request body) and INTERNAL_ERROR (albd's or the
     * backend's failure) are not. */
    if (f->hd.type == NGHTTP2_RST_STREAM && f->rst_stream.error_code != NGHTTP2_NO_ERROR &&
        f->rst_stream.error_code != NGHTTP2_INTERNAL_ERROR)
        count_reset(h);
    if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        struct h2_stream *s = stream_get(h, f->hd.stream_id);
        /* The response is complete before the request: tell the client to
         * stop sending its body (RFC 9113 8.1). */
        if (s && !s->req_complete)
            nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
    }
    return 0;
}

static int cb_stream_close(nghttp2_session *ng, int32_t id, uint32_t error_code, void *user)
{
    struct h2 *h = user;
    struct h2_stream *s = stream_get(h, id);
    if (!s)
        return 0;
    nghttp2_session_set_stream_user_data(ng, id, NULL);
    if (error_code && !s->x.log.reason)
        s->x.log.reason = "client_closed"; /* albd's own resets recorded theirs */
    px_h2_stream_release(s);
    return 0;
}

static nghttp2_session_callbacks *callbacks;
static nghttp2_option *options;
static pthread_once_t callbacks_once = PTHREAD_ONCE_INIT;

static int obuf_flush(struct h2 *h);

/* A DATA frame body_read left for this (NO_COPY): what earlier
 * nghttp2_session_mem_send calls returned goes first. albd never pads. */
static int cb_send_data(nghttp2_session *ng, nghttp2_frame *frame, const uint8_t *framehd,
                        size_t length, nghttp2_data_source *src, void *user)
{
    struct h2 *h = user;
    (void)ng;
    if (frame->data.padlen != 0 || obuf_flush(h) < 0 ||
        px_h2_stream_send_data(src->ptr, framehd, length) < 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return 0;
}

static void callbacks_init(void)
{
    if (nghttp2_session_callbacks_new(&callbacks) != 0)
        return;
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, cb_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(callbacks, cb_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, cb_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, cb_frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, cb_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, cb_stream_close);
    nghttp2_session_callbacks_set_send_data_callback(callbacks, cb_send_data);
    if (nghttp2_option_new(&options) != 0) {
        nghttp2_session_callbacks_del(callbacks);
        callbacks = NULL;
        return;
    }
    nghttp2_option_set_no_auto_window_update(options, 1);
    nghttp2_option_set_no_closed_streams(options, 1);
    /* PING and SETTINGS floods: at most this many ACKs wait for a client
     * that does not read, and few SETTINGS entries per frame. */
    nghttp2_option_set_max_outbound_ack(options, 1000);
    nghttp2_option_set_max_settings(options, 32);
    /* A header block is at most one HEADERS and this many CONTINUATIONs
     * (16 KiB each): enough for PX_H2_MAX_HEADER_LIST, a flood is fatal. */
    nghttp2_option_set_max_continuations(options, 8);
    /* nghttp2's own reset limiter is a backstop behind count_reset. */
    nghttp2_option_set_stream_reset_rate_limit(options, 4 * PX_H2_RST_MAX, 100);
    /* Response headers are sent without HPACK indexing (as nginx and
     * HAProxy send them): an indexed field costs every connection ~200
     * bytes for as long as it stays open, idle or not, and most response
     * fields worth indexing are short or change (date). The client's
     * table for albd's requests (SETTINGS_HEADER_TABLE_SIZE) is unchanged:
     * request headers are indexed as the client chooses. */
    nghttp2_option_set_max_deflate_dynamic_table_size(options, 0);
}

/* --- output ----------------------------------------------------------- */

static int obuf_flush(struct h2 *h)
{
    if (h->olen == 0)
        return 0;
    uv_buf_t b = uv_buf_init((char *)h->obuf, (unsigned)h->olen);
    h->olen = 0;
    return px_conn_write(h->c, &b, 1);
}

static void release_all(struct h2 *h)
{
    for (struct h2_stream *s = h->active; s; s = s->next)
        px_h2_stream_drop_upstream(s, false);
}

static void finish(struct h2 *h)
{
    if (h->finished)
        return;
    h->finished = true;
    release_all(h);
    px_conn_finish(h->c);
}

/* Serializes whatever nghttp2 has to send while the client keeps up, then
 * ends the connection when nghttp2 is done with it. Never call from inside
 * an nghttp2 callback (in_ng guards it). */
void px_h2_flush(struct h2 *h)
{
    struct px_conn *c = h->c;
    if (h->in_ng || h->finished || c->closing || c->state != PX_CONN_OPEN)
        return;
    h->in_ng = true;
    int rc = 0;
    while (!px_conn_congested(c)) {
        const uint8_t *d;
        ssize_t n = nghttp2_session_mem_send(h->ng, &d);
        if (n < 0) {
            rc = (int)n;
            break;
        }
        if (n == 0)
            break;
        if (h->olen + (size_t)n > OBUF_SIZE && (rc = obuf_flush(h)) < 0)
            break;
        if (!h->obuf && !(h->obuf = px_bufpool_get(&c->w->conn_bufs))) {
            rc = -ENOMEM;
            break;
        }
        if ((size_t)n >= OBUF_SIZE) {
            /* A full DATA frame (or more) goes to the connection as it is:
             * copying it into obuf first gained nothing (it fills obuf). */
            uv_buf_t b = uv_buf_init((char *)d, (unsigned)n);
            if ((rc = px_conn_write(c, &b, 1)) < 0)
                break;
        } else {
            memcpy(h->obuf + h->olen, d, (size_t)n);
            h->olen += (size_t)n;
        }
    }
    if (rc == 0)
        rc = obuf_flush(h);
    h->olen = 0;
    px_bufpool_put(&c->w->conn_bufs, h->obuf); /* px_conn_write copied it */
    h->obuf = NULL;
    h->in_ng = false;
    if (c->closing)
        return;
    if (rc < 0) {
        px_log_debug("h2: session with %s ends: %s", c->client_ip,
                     rc < -100 ? nghttp2_strerror(rc) : "write failed");
        px_conn_close(c);
        return;
    }
    if ((!nghttp2_session_want_read(h->ng) && !nghttp2_session_want_write(h->ng)) ||
        (c->eof && h->n_active == 0)) {
        finish(h);
        return;
    }
    if (h->n_active == 0 && !nghttp2_session_want_write(h->ng))
        px_conn_idle(c);
}

void px_h2_flush_later(struct h2 *h)
{
    struct px_worker *w = h->c->w;
    if (h->later_queued || h->finished || h->c->closing)
        return;
    if (!w->h2_later)
        w->h2_later_since = uv_hrtime();
    h->later_queued = true;
    h->later_next = w->h2_later;
    w->h2_later = h;
}

void px_h2_flush_pending(struct px_worker *w)
{
    while (w->h2_later) {
        struct h2 *h = w->h2_later;
        w->h2_later = h->later_next;
        h->later_next = NULL;
        h->later_queued = false;
        px_h2_flush(h);
    }
    w->h2_later_since = 0;
}

/* Takes h off the worker's list of pending sessions (it is being freed). */
static void later_unlink(struct h2 *h)
{
    if (!h->later_queued)
        return;
    struct h2 **pp = &h->c->w->h2_later;
    while (*pp && *pp != h)
        pp = &(*pp)->later_next;
    if (*pp)
        *pp = h->later_next;
    h->later_queued = false;
    h->later_next = NULL;
}

static void goaway(struct h2 *h)
{
    if (!h->goaway) {
        h->goaway = true;
        nghttp2_submit_goaway(h->ng, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(h->ng), NGHTTP2_NO_ERROR,
                              NULL, 0);
    }
    px_h2_flush(h);
}

/* --- the protocol handler -------------------------------------------- */

static size_t h2_on_data(struct px_conn *c, const char *data, size_t len)
{
    struct h2 *h = c->ps;
    if (h->finished)
        return len;
    h->in_ng = true;
    ssize_t rv = nghttp2_session_mem_recv(h->ng, (const uint8_t *)data, len);
    h->in_ng = false;
    if (c->closing)
        return len;
    if (rv < 0) {
        px_log_debug("h2: protocol error from %s: %s", c->client_ip, nghttp2_strerror((int)rv));
        /* nghttp2 queues no GOAWAY for the errors it returns (floods, too
         * many CONTINUATIONs, a bad preface): say why, then end. */
        uint32_t code = rv == NGHTTP2_ERR_FLOODED || rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS
                            ? NGHTTP2_ENHANCE_YOUR_CALM
                            : NGHTTP2_PROTOCOL_ERROR;
        nghttp2_session_terminate_session(h->ng, code);
        px_h2_flush(h);
        if (!c->closing)
            finish(h);
        return len;
    }
    px_h2_flush(h);
    if (!c->closing && !h->finished && px_conn_congested(c))
        px_conn_want_input(c, false);
    return len;
}

static void h2_on_eof(struct px_conn *c)
{
    struct h2 *h = c->ps;
    if (h->n_active == 0)
        px_conn_close(c);
    /* else: the open streams are answered (flush ends the connection). */
}

static void h2_on_writable(struct px_conn *c)
{
    struct h2 *h = c->ps;
    px_h2_flush(h);
    if (!c->closing && !h->finished && !px_conn_congested(c) && !c->want_input)
        px_conn_want_input(c, true);
}

static void h2_on_timeout(struct px_conn *c)
{
    struct h2 *h = c->ps;
    if (h->n_active == 0) {
        goaway(h); /* idle: GOAWAY, and flush ends the connection */
        if (!c->closing && !h->finished)
            finish(h);
        return;
    }
    uint64_t now = px_h2_now_ms(h), next = UINT64_MAX;
    for (struct h2_stream *s = h->active; s; s = s->next) {
        if (s->deadline <= now) {
            if (s->discard) {
                /* Answered a timeout ago and still not done: the client
                 * does not read at all. */
                px_log_debug("h2: %s stopped reading; closing", c->client_ip);
                px_conn_close(c);
                return;
            }
            if (s->in_head) {
                /* headerTimeoutSeconds passed inside a header block.
                 * HTTP/1.1 answers 408 and closes; here: 408 on the
                 * stream, and GOAWAY, since nothing else can arrive on
                 * this connection before the block ends (RFC 9113 6.10):
                 * it closes once the stream is done. */
                px_log_debug("h2: stream %d from %s: header block too slow", s->id, c->client_ip);
                px_h2_stream_error(s, 408);
                if (!h->goaway) {
                    h->goaway = true;
                    nghttp2_submit_goaway(h->ng, NGHTTP2_FLAG_NONE,
                                          nghttp2_session_get_last_proc_stream_id(h->ng),
                                          NGHTTP2_NO_ERROR, NULL, 0);
                }
                px_h2_touch(s);
                if (s->deadline < next)
                    next = s->deadline;
                continue;
            }
            bool client_slow = s->x.ready && !s->req_complete && !s->bp.any && !s->unconsumed;
            px_log_debug("h2: stream %d from %s timed out", s->id, c->client_ip);
            px_h2_stream_error(s, client_slow ? 408 : 504);
            px_h2_touch(s);
        }
        if (s->deadline < next)
            next = s->deadline;
    }
    px_conn_timer(c, next > now ? next - now : 1);
    px_h2_flush(h);
}

static void h2_drain(struct px_conn *c)
{
    goaway(c->ps);
}

static void h2_on_snapshot(struct px_conn *c)
{
    struct h2 *h = c->ps;
    if (px_conn_listener_gone(c)) {
        goaway(h); /* open streams finish under their own snapshot */
        return;
    }
    /* Open streams hold their own snapshot reference. */
    px_conn_snapshot_refresh(c);
}

static void h2_on_close(struct px_conn *c)
{
    struct h2 *h = c->ps;
    if (!h)
        return;
    for (struct h2_stream *s = h->active; s; s = s->next) {
        px_h2_stream_drop_upstream(s, false);
        px_h2_stream_log_end(s, s->x.log.reason ? NULL : "client_closed");
        px_snapshot_unref(s->snap);
        s->snap = NULL;
    }
}

static void h2_free(struct px_conn *c)
{
    struct h2 *h = c->ps;
    if (!h)
        return;
    later_unlink(h);
    if (h->ng)
        nghttp2_session_del(h->ng);
    while (h->active) {
        struct h2_stream *s = h->active;
        h->active = s->next;
        px_snapshot_unref(s->snap);
        px_h2_stream_free(s);
    }
    while (h->free_streams) {
        struct h2_stream *s = h->free_streams;
        h->free_streams = s->next;
        px_h2_stream_free(s);
    }
    px_buf_cleanup(&h->hb);
    scratch_put(h);
    px_client_cleanup(&h->cl);
    px_mempool_free(h->pool); /* after nghttp2_session_del gave every block back */
    free(h);
    c->ps = NULL;
}

/* Idle: no stream open, nothing for nghttp2 to send. */
static bool h2_idle(struct px_conn *c)
{
    struct h2 *h = c->ps;
    return h && h->ng && !h->finished && !h->in_ng && h->n_active == 0 && !h->later_queued &&
           !nghttp2_session_want_write(h->ng);
}

/* Parked: the recycled streams (with their buffers), the header scratch
 * and the blocks nghttp2 gave back to the connection's pool go; a new
 * stream takes them again. nghttp2's session itself (settings, HPACK
 * tables, its frame buffer) stays. */
static void h2_park(struct px_conn *c)
{
    struct h2 *h = c->ps;
    while (h->free_streams) {
        struct h2_stream *s = h->free_streams;
        h->free_streams = s->next;
        px_h2_stream_free(s);
    }
    h->n_free = 0;
    hb_reset(h);
    px_buf_cleanup(&h->hb);
    scratch_put(h);
    px_mempool_trim(h->pool);
    /* nghttp2 serializes every outgoing frame into one 16 KiB buffer it
     * keeps for the session's life; with nothing to send (h2_idle: no
     * outbound item, so the buffer was reset after the last frame, whose
     * bytes px_h2_flush copied out) its contents are dead: its pages go
     * back to the kernel until the next frame is written. So does the
     * stream table while it is empty (zero pages only). */
    px_mempool_discard_captured(h->pool);
}

/* The size of nghttp2's outgoing frame buffer, allocated once in
 * nghttp2_session_server_new3: a frame header, a pad-length byte and the
 * largest payload (NGHTTP2_FRAMEBUF_CHUNKLEN in nghttp2's sources, the
 * same since 1.0). Should a version allocate another size, nothing is
 * captured and parking simply keeps the buffer. */
#define NG_FRAMEBUF_SIZE (9 + 1 + 16384)
/* nghttp2's stream hash table (256 buckets of 16 bytes, 1.52): all zeros
 * while no stream exists, and then only given back (zero pages only: safe
 * whatever the block really is). */
#define NG_MAP_TABLE_SIZE 4096

static void *ng_malloc(size_t size, void *ud)
{
    return px_mempool_alloc(ud, size);
}

static void ng_free(void *ptr, void *ud)
{
    px_mempool_release(ud, ptr);
}

static void *ng_calloc(size_t nmemb, size_t size, void *ud)
{
    return px_mempool_calloc(ud, nmemb, size);
}

static void *ng_realloc(void *ptr, size_t size, void *ud)
{
    return px_mempool_realloc(ud, ptr, size);
}

static int h2_start(struct px_conn *c)
{
    pthread_once(&callbacks_once, callbacks_init);
    if (!callbacks || !options)
        return -ENOMEM;
    struct h2 *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    h->c = c;
    c->ps = h;
    px_client_init(&h->cl, c);
    px_buf_init(&h->hb, 2 * PX_H2_MAX_HEADER_LIST);
    h->pool = px_mempool_new();
    h->mem = (nghttp2_mem){h->pool, ng_malloc, ng_free, ng_calloc, ng_realloc};
    if (scratch_take(h) < 0 || !h->pool)
        return -ENOMEM; /* h2_free releases what exists */
    px_mempool_capture(h->pool, 0, NG_FRAMEBUF_SIZE, true);
    px_mempool_capture(h->pool, 1, NG_MAP_TABLE_SIZE, false);
    int rv = nghttp2_session_server_new3(&h->ng, callbacks, h, options, &h->mem);
    px_mempool_capture(h->pool, 0, 0, true);
    px_mempool_capture(h->pool, 1, 0, false);
    if (rv)
        return -ENOMEM;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, PX_H2_MAX_STREAMS},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, PX_H2_STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, PX_H2_MAX_HEADER_LIST},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    if (nghttp2_submit_settings(h->ng, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]) != 0 ||
        nghttp2_session_set_local_window_size(h->ng, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW) != 0)
        return -ENOMEM;
    hb_reset(h);
    px_conn_timer(c, ms(c->lis->model->idle_timeout_s));
    px_h2_flush(h);
    return 0;
}

const struct px_proto px_h2_proto = {
    .name = "h2",
    .start = h2_start,
    .on_data = h2_on_data,
    .on_eof = h2_on_eof,
    .on_writable = h2_on_writable,
    .on_timeout = h2_on_timeout,
    .drain = h2_drain,
    .on_snapshot = h2_on_snapshot,
    .idle = h2_idle,
    .park = h2_park,
    .on_close = h2_on_close,
    .free = h2_free,
};
