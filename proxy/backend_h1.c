/* The HTTP/1.1 backend client: request heads and the response parser. */
#include "proxy/backend_h1.h"

#include <string.h>

static struct px_bresp *of(llhttp_t *p)
{
    return p->data;
}

static int on_begin(llhttp_t *p)
{
    struct px_bresp *r = of(p);
    if (!r->in_trailers) {
        px_buf_reset(r->hin);
        px_hdrlist_reset(r->hl);
        r->reason_len = 0;
    }
    return 0;
}

static int on_status(llhttp_t *p, const char *at, size_t len)
{
    struct px_bresp *r = of(p);
    r->reason_len += len;
    return px_buf_append(r->hin, at, len) < 0 ? -1 : 0;
}

/* Trailers are kept only when the sink wants them; otherwise parsed and
 * dropped without limit (as they always were for HTTP/1.1 clients). */
static bool skip_fields(const struct px_bresp *r)
{
    return r->in_trailers && !r->keep_trailers;
}

static int on_field(llhttp_t *p, const char *at, size_t len)
{
    struct px_bresp *r = of(p);
    if (skip_fields(r))
        return 0;
    return px_hdrlist_add(r->hl, r->hin, at, len, false, PX_BACKEND_MAX_HEAD) < 0 ? -1 : 0;
}

static int on_field_done(llhttp_t *p)
{
    struct px_bresp *r = of(p);
    if (!skip_fields(r))
        px_hdrlist_name_done(r->hl, r->hin);
    return 0;
}

static int on_value(llhttp_t *p, const char *at, size_t len)
{
    struct px_bresp *r = of(p);
    if (skip_fields(r))
        return 0;
    return px_hdrlist_add(r->hl, r->hin, at, len, true, PX_BACKEND_MAX_HEAD) < 0 ? -1 : 0;
}

/* Whether albd can relay this response head without the backend's bytes
 * being read two ways (502 otherwise, and the backend connection is not
 * reused). A status must be 100-599. 1xx and 204 have no content (RFC 9110
 * 15.2, 15.3.5): a Transfer-Encoding or a non-zero Content-Length on them
 * announces bytes that a client would read as a response of the backend's
 * making, and albd frames none of them, so they are refused; 304 takes a
 * Content-Length (of the representation) but no Transfer-Encoding. albd
 * decodes only chunked (px_headers_te_chunked_only). A field without a
 * name is refused too (strict llhttp lets ": x" through). */
static bool response_framing_ok(const llhttp_t *p, int status, const struct px_hdr *h, size_t n)
{
    if (status < 100 || status > 599)
        return false;
    for (size_t i = 0; i < n; i++)
        if (h[i].name_len == 0)
            return false;
    bool te = (p->flags & (F_TRANSFER_ENCODING | F_CHUNKED)) != 0;
    bool cl = (p->flags & F_CONTENT_LENGTH) != 0 && p->content_length > 0;
    if ((status < 200 || status == 204) && (te || cl))
        return false;
    if (status == 304 && te)
        return false;
    return status < 200 || px_headers_te_chunked_only(h, n);
}

static int on_headers_complete(llhttp_t *p)
{
    struct px_bresp *r = of(p);
    if (r->in_trailers)
        return 0;
    int status = llhttp_get_status_code(p);
    size_t n = px_hdrlist_get(r->hl, r->hin, r->scratch);
    if (!response_framing_ok(p, status, r->scratch, n))
        return -1;
    r->status = status;
    struct px_resp_head rh = {
        .status = status,
        .reason = r->hin->data,
        .reason_len = r->reason_len,
        .h = r->scratch,
        .n = n,
        .chunked = (p->flags & F_CHUNKED) != 0,
        .has_length = (p->flags & F_CONTENT_LENGTH) != 0,
    };
    if (status >= 200 && r->on_head)
        r->on_head(r->on_head_arg, &rh, r->scratch, PX_HDR_MAX);
    int rc = r->sink->head(r->owner, &rh);
    if (rc < 0)
        return -1;
    if (rc == PX_SINK_UPGRADE)
        return HPE_PAUSED;
    if (status < 200)
        return 1; /* interim, never with content: the final response follows */
    /* Whatever fields come now are trailers. */
    r->in_trailers = true;
    px_buf_reset(r->hin);
    px_hdrlist_reset(r->hl);
    /* No content after a HEAD, a 204 or a 304 (a 304's Content-Length
     * describes the representation, not bytes that follow). */
    return r->head_req || status == 204 || status == 304 ? 1 : 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct px_bresp *r = of(p);
    return r->sink->data(r->owner, at, len) < 0 ? -1 : 0;
}

static int on_complete(llhttp_t *p)
{
    struct px_bresp *r = of(p);
    if (r->status < 200)
        return 0; /* an interim response; the final one follows */
    r->complete = true;
    if (r->keep_trailers && r->hl->n && r->sink->trailers &&
        r->sink->trailers(r->owner, r->scratch, px_hdrlist_get(r->hl, r->hin, r->scratch)) < 0)
        return -1;
    if (r->sink->end(r->owner) < 0)
        return -1;
    return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
    .on_message_begin = on_begin,
    .on_status = on_status,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_header_field_complete = on_field_done,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_complete,
};

void px_bresp_init(struct px_bresp *r, const struct px_sink *sink, void *owner, struct px_buf *hin,
                   struct px_hdrlist *hl, struct px_hdr *scratch, bool head_req, bool keep_trailers)
{
    *r = (struct px_bresp){.sink = sink,
                           .owner = owner,
                           .hin = hin,
                           .hl = hl,
                           .scratch = scratch,
                           .head_req = head_req,
                           .keep_trailers = keep_trailers};
    llhttp_init(&r->p, HTTP_RESPONSE, &settings);
    r->p.data = r;
}

enum px_bresp_rc px_bresp_feed(struct px_bresp *r, const char *data, size_t n, size_t *used)
{
    r->any = true;
    llhttp_errno_t e = llhttp_execute(&r->p, data, n);
    size_t u = n;
    if (e == HPE_PAUSED)
        u = (size_t)(llhttp_get_error_pos(&r->p) - data);
    if (used)
        *used = u;
    if (e == HPE_OK)
        return PX_BRESP_MORE;
    if (e != HPE_PAUSED)
        return PX_BRESP_BAD;
    if (!r->complete)
        return PX_BRESP_UPGRADE;
    return u == n ? PX_BRESP_DONE : PX_BRESP_LEFTOVER;
}

bool px_bresp_eof(struct px_bresp *r)
{
    llhttp_errno_t e = llhttp_finish(&r->p);
    return (e == HPE_OK || e == HPE_PAUSED) && r->complete;
}

bool px_bresp_keepalive(const struct px_bresp *r, int req_minor)
{
    if (!req_minor && !(r->p.flags & F_CONNECTION_KEEP_ALIVE))
        return false;
    return llhttp_should_keep_alive(&r->p);
}

const char *px_bresp_error(const struct px_bresp *r)
{
    return llhttp_errno_name(llhttp_get_errno(&r->p));
}

size_t px_bresp_trailers(struct px_bresp *r)
{
    if (!r->in_trailers || !r->keep_trailers)
        return 0;
    return px_hdrlist_get(r->hl, r->hin, r->scratch);
}

/* --- the request head ---------------------------------------------------- */

int px_backend_h1_minor(const struct px_req *r)
{
    /* HTTP/1.1 to backends for 1.1 clients, 1.0 for 1.0 clients (unless
     * the 1.0 client sent a chunked body, which only 1.1 can carry), as
     * the reference says. A 1.0 request still asks for a persistent
     * connection (px_headers_request, px_bresp_keepalive): a 1.0 client
     * closing its own connection after each request need not cost a
     * backend connection too. */
    return (r->minor || r->body == PX_FRAME_CHUNKED) ? 1 : 0;
}

int px_backend_h1_request_head(struct px_buf *out, struct px_req *r, const struct px_fwd *fwd,
                               bool keepalive, struct px_buf *tgt)
{
    const char *t = r->path;
    size_t tl = r->path_len;
    if (r->path_slash) {
        if (!tgt)
            return -1;
        px_buf_reset(tgt);
        if (px_buf_append(tgt, "/", 1) < 0 || px_buf_append(tgt, t, tl) < 0)
            return -1;
        t = tgt->data;
        tl = tgt->len;
    }
    return px_headers_request(out, r->method, t, tl, px_backend_h1_minor(r), r->hdrs, r->n_hdrs,
                              fwd, r->body, keepalive) < 0
               ? -1
               : 0;
}

unsigned px_backend_h1_chunk(char *hex, const char *data, size_t len, uv_buf_t *b)
{
    struct px_buf hb = {hex, 0, 24, 24};
    px_buf_num(&hb, len, 1);
    px_buf_append(&hb, "\r\n", 2);
    b[0] = uv_buf_init(hex, (unsigned)hb.len);
    b[1] = uv_buf_init((char *)data, (unsigned)len);
    b[2] = uv_buf_init("\r\n", 2);
    return 3;
}
