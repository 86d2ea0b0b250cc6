/* Fuzz target: the backend-response path of proxy/h1.c.
 *
 * Input: byte 0 chooses the client's request (bits 0-1: GET over HTTP/1.1,
 * HEAD, GET over HTTP/1.0, a WebSocket upgrade) and whether the backend's
 * bytes arrive in two pieces (bit 2); the rest is what the backend sends,
 * then EOF. The real handler runs over the memory seam of fuzz_proxy.h on
 * listener a-bare.
 *
 * Asserts: what the client gets parses (llhttp, strict) as interim (1xx)
 * responses and at most one final response, each head well-formed (no
 * CR, LF or NUL inside a line; every field "token: value"), with no bytes
 * after the final response; a final response left incomplete only when
 * albd closed the connection (an aborted body, which the client sees as
 * such); and no hop-by-hop header of the backend's reaches the client. */
#include <llhttp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/h1.h"
#include "proxy/headers.h"
#include "tests/fuzz/fuzz_proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const requests[4] = {
    "GET /r HTTP/1.1\r\nHost: a\r\n\r\n",
    "HEAD /r HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET /r HTTP/1.0\r\n\r\n",
    "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
};

static const char *resp;
static size_t resp_len;
static bool split;

static bool on_idle(void)
{
    for (size_t i = 0; i < fz.n_ups; i++) {
        struct fz_up *up = &fz.ups[i];
        if (up->released || up->answered || up->x->u != up->u)
            continue;
        size_t first = split ? resp_len / 2 : resp_len;
        fz_up_read(up, resp, (long)first);
        if (!fz.c->closing && !up->released && up->x->u == up->u && resp_len > first)
            fz_up_read(up, resp + first, (long)(resp_len - first));
        if (!fz.c->closing && !up->released && up->x->u == up->u)
            fz_up_read(up, NULL, UV_EOF);
        return true;
    }
    return false;
}

/* The client's view. */
struct view {
    size_t finals, interims, complete_final;
    bool head_req, in_final, hop_ok[2];
    int status;
    struct fz_bytes name;
};

static int v_begin(llhttp_t *p)
{
    struct view *v = p->data;
    v->name.n = 0;
    return 0;
}

static int v_field(llhttp_t *p, const char *at, size_t len)
{
    struct view *v = p->data;
    fz_bytes_add(&v->name, at, len);
    return 0;
}

static int v_value_done(llhttp_t *p)
{
    struct view *v = p->data;
    /* albd's own: Connection: close / keep-alive, Transfer-Encoding:
     * chunked; a 101 carries Connection and Upgrade (the upgrade albd
     * asked for). Any other hop-by-hop name came from the backend. */
    if (px_header_is_hop(v->name.p, v->name.n) && llhttp_get_status_code(p) != 101) {
        bool own = (v->name.n == 10 && memcmp(v->name.p, "Connection", 10) == 0) ||
                   (v->name.n == 17 && memcmp(v->name.p, "Transfer-Encoding", 17) == 0);
        if (!own)
            fz_fail("hop-by-hop response header reaches the client: %.*s", (int)v->name.n,
                    v->name.p);
    }
    v->name.n = 0;
    return 0;
}

static int v_headers(llhttp_t *p)
{
    struct view *v = p->data;
    int st = llhttp_get_status_code(p);
    if (st >= 200 || st == 101) {
        if (v->finals++)
            fz_fail("a second final response reaches the client");
        v->in_final = true;
        v->status = st;
    } else {
        v->interims++;
    }
    return v->head_req && st >= 200 ? 1 : 0;
}

static int v_complete(llhttp_t *p)
{
    struct view *v = p->data;
    if (v->in_final)
        v->complete_final++;
    return HPE_PAUSED;
}

static void check_client(bool head_req)
{
    static const llhttp_settings_t st = {
        .on_message_begin = v_begin,
        .on_header_field = v_field,
        .on_header_value_complete = v_value_done,
        .on_headers_complete = v_headers,
        .on_message_complete = v_complete,
    };
    const char *p = fz.client_out.p, *end = p + fz.client_out.n;
    struct view v = {.head_req = head_req};
    llhttp_t parser;
    llhttp_init(&parser, HTTP_RESPONSE, &st);
    parser.data = &v;
    while (p < end) {
        if (v.complete_final && head_req && fz_tolerate_known()) {
            /* Known (README): albd's own error page keeps its body in an
             * answer to HEAD. */
            char body[64];
            int bl = snprintf(body, sizeof body, "%d %s\n", v.status, px_status_reason(v.status));
            if (end - p == bl && memcmp(p, body, (size_t)bl) == 0)
                break;
        }
        if (v.complete_final)
            fz_fail("%zu bytes after the final response: %.*s", (size_t)(end - p),
                    (int)(end - p < 200 ? end - p : 200), p);
        if (fz_check_head("client response", p, (size_t)(end - p)) == 0) {
            if (!fz.c->closing)
                fz_fail("an incomplete response head, connection open: %.*s",
                        (int)(end - p < 200 ? end - p : 200), p);
            break;
        }
        llhttp_errno_t e = llhttp_execute(&parser, p, (size_t)(end - p));
        if (e == HPE_PAUSED) {
            p = llhttp_get_error_pos(&parser);
            llhttp_resume(&parser);
            if (v.status == 101)
                break; /* then tunnel bytes */
            continue;
        }
        if (e == HPE_PAUSED_UPGRADE)
            break; /* a 101: then tunnel bytes */
        if (e != HPE_OK)
            fz_fail("the client's bytes do not parse: %s (%s): %.*s", llhttp_errno_name(e),
                    parser.reason ? parser.reason : "",
                    (int)(fz.client_out.n < 300 ? fz.client_out.n : 300), fz.client_out.p);
        break;
    }
    if (v.finals && !v.complete_final && v.status != 101) {
        /* Close-delimited bodies end with the connection. */
        llhttp_errno_t e = llhttp_finish(&parser);
        if (!fz.c->closing && !(e == HPE_OK || e == HPE_PAUSED))
            fz_fail("an incomplete final response, connection open");
        if (!fz.c->closing && fz.c->state == PX_CONN_OPEN && !v.complete_final)
            fz_fail("an incomplete final response while the connection stays open");
    }
    fz_bytes_free(&v.name);
}

/* Known findings (README), skipped under ALBD_FUZZ_KNOWN=1: a status
 * code below 100 (albd takes it as interim, llhttp gives it a body), a
 * 1xx (but 101), 204 or 304 with Content-Length or Transfer-Encoding (llhttp
 * parses a body albd does not frame): either body reaches the client raw;
 * and a header field with an empty name (forwarded as ": value"). */
struct pre {
    bool known;
    size_t name_len;
};

static int pre_field(llhttp_t *p, const char *at, size_t len)
{
    (void)at;
    ((struct pre *)p->data)->name_len += len;
    return 0;
}

static int pre_field_done(llhttp_t *p)
{
    struct pre *x = p->data;
    if (x->name_len == 0)
        x->known = true;
    x->name_len = 0;
    return 0;
}

static int pre_value_done(llhttp_t *p)
{
    ((struct pre *)p->data)->name_len = 0;
    return 0;
}

static int pre_headers(llhttp_t *p)
{
    int st = llhttp_get_status_code(p);
    bool framed = (p->flags & (F_CHUNKED | F_CONTENT_LENGTH | F_TRANSFER_ENCODING)) != 0;
    if (st < 100 || (framed && ((st < 200 && st != 101) || st == 204 || st == 304)))
        ((struct pre *)p->data)->known = true;
    return 0;
}

static bool hits_known(const char *p, size_t n)
{
    static const llhttp_settings_t st = {
        .on_header_field = pre_field,
        .on_header_field_complete = pre_field_done,
        .on_header_value_complete = pre_value_done,
        .on_headers_complete = pre_headers,
    };
    struct pre x = {0};
    llhttp_t parser;
    llhttp_init(&parser, HTTP_RESPONSE, &st);
    parser.data = &x;
    llhttp_execute(&parser, p, n);
    /* An empty name at the very start of a line is also ":": */
    for (size_t i = 0; i + 2 < n; i++)
        if (p[i] == '\n' && p[i + 1] == ':')
            x.known = true;
    return x.known;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int which = data[0] & 3;
    split = (data[0] & 4) != 0;
    resp = (const char *)data + 1;
    resp_len = size - 1;
    if (fz_tolerate_known() && hits_known(resp, resp_len))
        return 0;
    fz_conn_open(&px_h1_proto, FZ_LIS_BARE);
    const char *req = requests[which];
    fz_conn_feed(req, strlen(req), on_idle);
    check_client(which == 1);
    fz_conn_end();
    return 0;
}
