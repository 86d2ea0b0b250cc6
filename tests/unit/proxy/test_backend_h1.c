/* proxy/backend_h1.c: the one backend response parser (driving a recording
 * sink) and the backend request head, as both client protocols use them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/backend_h1.h"

/* What the sink saw, in order, as text: "H200 OK|len=5|chunked=0;D5:hello;T1;E". */
struct rec {
    char log[4096];
    size_t len;
    int head_rc; /* what head returns for a 101 */
    int data_rc;
};

static void say(struct rec *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->log + r->len, sizeof r->log - r->len, fmt, ap);
    va_end(ap);
    r->len += (size_t)n;
}

static int s_head(void *owner, const struct px_resp_head *rh)
{
    struct rec *r = owner;
    say(r, "H%d %.*s|n=%zu|ch=%d|cl=%d;", rh->status, (int)rh->reason_len, rh->reason, rh->n,
        rh->chunked, rh->has_length);
    return rh->status == 101 ? r->head_rc : 0;
}

static int s_data(void *owner, const char *at, size_t len)
{
    struct rec *r = owner;
    say(r, "D%zu:%.*s;", len, (int)len, at);
    return r->data_rc;
}

static int s_trailers(void *owner, const struct px_hdr *h, size_t n)
{
    struct rec *r = owner;
    say(r, "T%zu", n);
    for (size_t i = 0; i < n; i++)
        say(r, ":%.*s=%.*s", (int)h[i].name_len, h[i].name, (int)h[i].value_len, h[i].value);
    say(r, ";");
    return 0;
}

static int s_end(void *owner)
{
    say(owner, "E;");
    return 0;
}

static void s_abort(void *owner, int status)
{
    say(owner, "A%d;", status);
}

static const struct px_sink sink = {s_head, s_data, s_trailers, s_end, s_abort};

struct fx {
    struct rec rec;
    struct px_buf hin;
    struct px_hdr_ent ents[PX_HDR_MAX];
    struct px_hdrlist hl;
    struct px_hdr scratch[PX_HDR_MAX];
    struct px_bresp bp;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    px_buf_init(&f->hin, PX_BACKEND_MAX_HEAD + 1024);
    f->hl.ents = f->ents;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    px_buf_cleanup(&f->hin);
    free(f);
    return 0;
}

static void start(struct fx *f, bool head_req, bool keep_trailers)
{
    memset(&f->rec, 0, sizeof f->rec);
    px_bresp_init(&f->bp, &sink, &f->rec, &f->hin, &f->hl, f->scratch, head_req, keep_trailers);
}

static enum px_bresp_rc feed(struct fx *f, const char *s)
{
    return px_bresp_feed(&f->bp, s, strlen(s), NULL);
}

static void length_body_in_pieces(void **state)
{
    struct fx *f = *state;
    start(f, false, false);
    assert_int_equal(feed(f, "HTTP/1.1 200 Fine\r\nContent-Le"), PX_BRESP_MORE);
    assert_int_equal(feed(f, "ngth: 5\r\nX-A: b\r\n\r\nhel"), PX_BRESP_MORE);
    assert_int_equal(feed(f, "lo"), PX_BRESP_DONE);
    assert_string_equal(f->rec.log, "H200 Fine|n=2|ch=0|cl=1;D3:hel;D2:lo;E;");
    assert_true(px_bresp_keepalive(&f->bp, 1));
}

/* After an HTTP/1.0 request (Connection: keep-alive), only a response
 * that says keep-alive back leaves a reusable connection. */
static void http10_request_needs_keep_alive_back(void **state)
{
    struct fx *f = *state;
    static const struct {
        const char *resp;
        bool keep;
    } c[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false},
        {"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", true},
        {"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nhi", true},
        {"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi", false},
        {"HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 0\r\n\r\n", false},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        start(f, false, false);
        assert_int_equal(feed(f, c[i].resp), PX_BRESP_DONE);
        assert_int_equal(px_bresp_keepalive(&f->bp, 0), c[i].keep);
    }
    /* The same HTTP/1.1 response after an HTTP/1.1 request is kept. */
    start(f, false, false);
    assert_int_equal(feed(f, c[0].resp), PX_BRESP_DONE);
    assert_true(px_bresp_keepalive(&f->bp, 1));
}

static void bytes_after_the_response_are_leftover(void **state)
{
    struct fx *f = *state;
    start(f, false, false);
    assert_int_equal(feed(f, "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n"),
                     PX_BRESP_LEFTOVER);
}

static void chunked_body_and_trailers(void **state)
{
    struct fx *f = *state;
    /* HTTP/2 keeps trailers ... */
    start(f, false, true);
    assert_int_equal(feed(f, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "3\r\nabc\r\n0\r\nX-Sum: 9\r\n\r\n"),
                     PX_BRESP_DONE);
    assert_string_equal(f->rec.log, "H200 OK|n=1|ch=1|cl=0;D3:abc;T1:X-Sum=9;E;");
    assert_int_equal(px_bresp_trailers(&f->bp), 1);
    /* ... HTTP/1.1 drops them. */
    start(f, false, false);
    assert_int_equal(feed(f, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "3\r\nabc\r\n0\r\nX-Sum: 9\r\n\r\n"),
                     PX_BRESP_DONE);
    assert_string_equal(f->rec.log, "H200 OK|n=1|ch=1|cl=0;D3:abc;E;");
    assert_int_equal(px_bresp_trailers(&f->bp), 0);
}

static void interim_responses_come_first(void **state)
{
    struct fx *f = *state;
    start(f, false, false);
    assert_int_equal(feed(f, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                             "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"),
                     PX_BRESP_DONE);
    assert_string_equal(f->rec.log, "H103 Early Hints|n=1|ch=0|cl=0;H200 OK|n=1|ch=0|cl=1;D1:x;E;");
}

static void head_response_has_no_body(void **state)
{
    struct fx *f = *state;
    start(f, true, false);
    assert_int_equal(feed(f, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"), PX_BRESP_DONE);
    assert_string_equal(f->rec.log, "H200 OK|n=1|ch=0|cl=1;E;");
}

static void transfer_codings_but_chunked_are_refused(void **state)
{
    struct fx *f = *state;
    start(f, false, false);
    assert_int_equal(feed(f, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
                     PX_BRESP_BAD);
    assert_string_equal(f->rec.log, ""); /* nothing reached the sink */
    assert_non_null(px_bresp_error(&f->bp));
}

static void close_delimited_body_ends_at_eof(void **state)
{
    struct fx *f = *state;
    start(f, false, false);
    assert_int_equal(feed(f, "HTTP/1.1 200 OK\r\n\r\nall"), PX_BRESP_MORE);
    assert_true(px_bresp_eof(&f->bp));
    assert_string_equal(f->rec.log, "H200 OK|n=0|ch=0|cl=0;D3:all;E;");
    /* A Content-Length body cut short is not complete. */
    start(f, false, false);
    assert_int_equal(feed(f, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nall"), PX_BRESP_MORE);
    assert_false(px_bresp_eof(&f->bp));
}

static void malformed_and_refused_responses_are_bad(void **state)
{
    struct fx *f = *state;
    start(f, false, false);
    assert_int_equal(feed(f, "HTTP/1.1 2x0 OK\r\n\r\n"), PX_BRESP_BAD);
    start(f, false, false);
    f->rec.data_rc = -1; /* the sink refuses (its client went away) */
    assert_int_equal(feed(f, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"), PX_BRESP_BAD);
    /* A 101 the sink does not accept. */
    start(f, false, false);
    f->rec.head_rc = -1;
    assert_int_equal(feed(f, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"),
                     PX_BRESP_BAD);
}

static void accepted_upgrade_leaves_the_rest(void **state)
{
    struct fx *f = *state;
    start(f, false, false);
    f->rec.head_rc = PX_SINK_UPGRADE;
    const char *in = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\n\r\nFRAMES";
    size_t used = 0;
    assert_int_equal(px_bresp_feed(&f->bp, in, strlen(in), &used), PX_BRESP_UPGRADE);
    assert_string_equal(in + used, "FRAMES");
}

static void head_over_the_limit_is_bad(void **state)
{
    struct fx *f = *state;
    start(f, false, false);
    assert_int_equal(feed(f, "HTTP/1.1 200 OK\r\nX-Big: "), PX_BRESP_MORE);
    char *big = malloc(PX_BACKEND_MAX_HEAD + 1);
    assert_non_null(big);
    memset(big, 'a', PX_BACKEND_MAX_HEAD);
    big[PX_BACKEND_MAX_HEAD] = '\0';
    assert_int_equal(feed(f, big), PX_BRESP_BAD);
    free(big);
}

static void connection_close_is_not_kept(void **state)
{
    struct fx *f = *state;
    start(f, false, false);
    assert_int_equal(feed(f, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"),
                     PX_BRESP_DONE);
    assert_false(px_bresp_keepalive(&f->bp, 1));
}

/* --- the request head ---------------------------------------------------- */

#define H(n, v)                                                                                    \
    {                                                                                              \
        n, sizeof(n) - 1, v, sizeof(v) - 1                                                         \
    }

static const struct px_fwd fwd_none = {.xff_mode = RC_XFF_PRESERVE};

static char *text(struct px_buf *b)
{
    px_buf_append(b, "", 1);
    b->len--;
    return b->data;
}

static void request_head_for_a_backend(void **state)
{
    (void)state;
    struct px_buf out, tgt;
    px_buf_init(&out, 4096);
    px_buf_init(&tgt, 4096);
    struct px_hdr h[] = {H("Host", "a.example"), H("Connection", "keep-alive")};
    struct px_req r = {
        .method = "GET", .path = "/p?q", .path_len = 4, .hdrs = h, .n_hdrs = 2, .minor = 1};
    assert_int_equal(px_backend_h1_request_head(&out, &r, &fwd_none, true, &tgt), 0);
    assert_string_equal(text(&out), "GET /p?q HTTP/1.1\r\nHost: a.example\r\n\r\n");
    /* An empty absolute-form path gets its "/"; HTTP/1.0 stays 1.0, closes. */
    px_buf_reset(&out);
    r.path = "?x";
    r.path_len = 2;
    r.path_slash = true;
    r.minor = 0;
    assert_int_equal(px_backend_h1_minor(&r), 0);
    assert_int_equal(px_backend_h1_request_head(&out, &r, &fwd_none, false, &tgt), 0);
    assert_string_equal(text(&out), "GET /?x HTTP/1.0\r\nHost: a.example\r\n\r\n");
    assert_int_equal(px_backend_h1_request_head(&out, &r, &fwd_none, false, NULL), -1);
    /* A chunked body needs HTTP/1.1, whatever the client spoke. */
    px_buf_reset(&out);
    r.path_slash = false;
    r.path = "/u";
    r.body = PX_FRAME_CHUNKED;
    r.method = "POST";
    assert_int_equal(px_backend_h1_minor(&r), 1);
    assert_int_equal(px_backend_h1_request_head(&out, &r, &fwd_none, false, &tgt), 0);
    assert_string_equal(text(&out), "POST /u HTTP/1.1\r\nHost: a.example\r\n"
                                    "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    /* Too large for the buffer: -1 (431). */
    struct px_buf small;
    px_buf_init(&small, 16);
    assert_int_equal(px_backend_h1_request_head(&small, &r, &fwd_none, false, &tgt), -1);
    px_buf_cleanup(&small);
    px_buf_cleanup(&out);
    px_buf_cleanup(&tgt);
}

static void body_pieces_are_chunk_framed(void **state)
{
    (void)state;
    char hex[24];
    uv_buf_t b[3];
    assert_int_equal(px_backend_h1_chunk(hex, "0123456789abcdefX", 17, b), 3);
    assert_int_equal(b[0].len, 4);
    assert_memory_equal(b[0].base, "11\r\n", 4);
    assert_int_equal(b[1].len, 17);
    assert_memory_equal(b[2].base, "\r\n", 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(http10_request_needs_keep_alive_back, setup, teardown),
        cmocka_unit_test_setup_teardown(length_body_in_pieces, setup, teardown),
        cmocka_unit_test_setup_teardown(bytes_after_the_response_are_leftover, setup, teardown),
        cmocka_unit_test_setup_teardown(chunked_body_and_trailers, setup, teardown),
        cmocka_unit_test_setup_teardown(interim_responses_come_first, setup, teardown),
        cmocka_unit_test_setup_teardown(head_response_has_no_body, setup, teardown),
        cmocka_unit_test_setup_teardown(transfer_codings_but_chunked_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(close_delimited_body_ends_at_eof, setup, teardown),
        cmocka_unit_test_setup_teardown(malformed_and_refused_responses_are_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(accepted_upgrade_leaves_the_rest, setup, teardown),
        cmocka_unit_test_setup_teardown(head_over_the_limit_is_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(connection_close_is_not_kept, setup, teardown),
        cmocka_unit_test(request_head_for_a_backend),
        cmocka_unit_test(body_pieces_are_chunk_framed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
