/* proxy/compress.c: the Accept-Encoding decision (q-values, "*",
 * identity, malformed elements), the gzip types, every rule of
 * px_compress_choose, and the streaming filter: head rewriting
 * (Content-Length, Accept-Ranges, Content-Encoding, Vary, weak ETag), a
 * gzip body that decompresses to the input in bounded pieces, Brotli that
 * ends its stream, pass-through, and abort. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <cmocka.h>

#include "proxy/compress.h"
#include "proxy/snapshot-t.h"

#define H(n, v)                                                                                    \
    (struct px_hdr)                                                                                \
    {                                                                                              \
        n, sizeof(n) - 1, v, sizeof(v) - 1                                                         \
    }

static struct px_accept accept_of(const char *v)
{
    struct px_hdr h = {"Accept-Encoding", 15, v, strlen(v)};
    struct px_accept a;
    px_compress_accept(&h, 1, &a);
    return a;
}

static void accept_encoding_table(void **state)
{
    (void)state;
    static const struct {
        const char *v;
        int br, gz;
    } c[] = {
        {"gzip, deflate, br", 1000, 1000},
        {"br", 1000, 0},
        {"gzip", 0, 1000},
        {"x-gzip", 0, 1000},
        {"BR;Q=0.5, GZip", 500, 1000},
        {"br;q=0", 0, 0},
        {"br;q=0.0, gzip;q=0.001", 0, 1},
        {"gzip;q=1.000", 0, 1000},
        {"*", 1000, 1000},
        {"*;q=0.3", 300, 300},
        {"*;q=0.3, br;q=0", 0, 300},
        {"*;q=0, gzip", 0, 1000},
        {"identity", 0, 0},
        {"identity;q=0, *;q=0", 0, 0},
        {"", 0, 0},
        {" , ,, ", 0, 0},
        {"gzip;q=2", 0, 0}, /* q above 1: malformed, ignored */
        {"gzip;q=1.5", 0, 0},
        {"gzip;q=0.1234", 0, 0}, /* four decimals */
        {"gzip;q=", 0, 0},
        {"gzip;q=x, br", 1000, 0},
        {"gzip ; q=0.5", 0, 500}, /* whitespace around ';' */
        {"gzip;level=1;q=0.7", 0, 700},
        {"gzip;q=0, gzip;q=0.8", 0, 800}, /* named twice: the higher */
        {"brotli, gzipx, xgzip", 0, 0},
        {"deflate, compress", 0, 0},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        struct px_accept a = accept_of(c[i].v);
        if (a.q_br != c[i].br || a.q_gzip != c[i].gz)
            fail_msg("\"%s\": br %u gzip %u, want %d %d", c[i].v, a.q_br, a.q_gzip, c[i].br,
                     c[i].gz);
    }
    /* Several fields are one list; other headers do not count. */
    struct px_hdr h[3] = {H("Accept-Encoding", "gzip;q=0.5"), H("Accept", "br"),
                          H("accept-encoding", "br;q=0.2")};
    struct px_accept a;
    px_compress_accept(h, 3, &a);
    assert_int_equal(a.q_gzip, 500);
    assert_int_equal(a.q_br, 200);
    px_compress_accept(h, 0, &a);
    assert_int_equal(a.q_gzip + a.q_br, 0);
}

static void gzip_types(void **state)
{
    (void)state;
    static const char *yes[] = {"text/xml",
                                "text/plain",
                                "text/css",
                                "application/javascript",
                                "application/x-javascript",
                                "application/rss+xml",
                                "application/atom+xml",
                                "application/xml",
                                "application/json",
                                "Application/JSON",
                                "text/plain; charset=utf-8",
                                " text/css ;charset=x"};
    static const char *no[] = {"text/html",
                               "image/png",
                               "application/octet-stream",
                               "text/javascript",
                               "application/jsonx",
                               "text/plainx",
                               "application/ld+json",
                               "",
                               "text",
                               "json"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        if (!px_compress_gzip_type(yes[i], strlen(yes[i])))
            fail_msg("\"%s\" refused", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (px_compress_gzip_type(no[i], strlen(no[i])))
            fail_msg("\"%s\" accepted", no[i]);
}

static void choose_table(void **state)
{
    (void)state;
    enum { N = PX_CODING_NONE, G = PX_CODING_GZIP, B = PX_CODING_BROTLI };
    static const struct {
        const char *ae;
        int status;
        const char *ct, *len, *extra_name, *extra_value;
        bool gz_on, br_on, head, chunked;
        int want;
    } c[] = {
        {"gzip, br", 200, "application/json", "2000", NULL, NULL, true, true, false, false, B},
        {"gzip", 200, "application/json", "2000", NULL, NULL, true, true, false, false, G},
        {"gzip", 200, "image/png", "2000", NULL, NULL, true, true, false, false, N},
        {"gzip, br", 200, "image/png", "2000", NULL, NULL, true, true, false, false, B},
        {"gzip, br", 200, NULL, "2000", NULL, NULL, true, true, false, false, B},
        {"gzip", 200, NULL, "2000", NULL, NULL, true, true, false, false, N},
        {"gzip;q=1, br;q=0.5", 200, "text/css", "2000", NULL, NULL, true, true, false, false, G},
        {"gzip;q=1, br;q=0.5", 200, "image/png", "2000", NULL, NULL, true, true, false, false, B},
        {"gzip, br", 200, "text/css", "1024", NULL, NULL, true, true, false, false, N},
        {"gzip, br", 200, "text/css", "1025", NULL, NULL, true, true, false, false, B},
        {"gzip, br", 200, "text/css", "0", NULL, NULL, true, true, false, false, N},
        {"gzip, br", 200, "text/css", "12x", NULL, NULL, true, true, false, false, N},
        {"gzip, br", 200, "text/css", NULL, NULL, NULL, true, true, false, true, N},
        {"gzip, br", 200, "text/css", NULL, NULL, NULL, true, true, false, false, N},
        {"gzip, br", 200, "text/css", "2000", NULL, NULL, true, true, true, false, N},
        {"gzip, br", 204, "text/css", "2000", NULL, NULL, true, true, false, false, N},
        {"gzip, br", 304, "text/css", "2000", NULL, NULL, true, true, false, false, N},
        {"gzip, br", 206, "text/css", "2000", NULL, NULL, true, true, false, false, N},
        {"gzip, br", 101, "text/css", "2000", NULL, NULL, true, true, false, false, N},
        {"gzip, br", 404, "text/css", "2000", NULL, NULL, true, true, false, false, B},
        {"gzip, br", 200, "text/css", "2000", "Content-Range", "bytes 0-1999/5000", true, true,
         false, false, N},
        {"gzip, br", 200, "text/css", "2000", "Content-Encoding", "identity", true, true, false,
         false, N},
        {"gzip, br", 200, "text/css", "2000", "content-encoding", "gzip", true, true, false, false,
         N},
        {"gzip, br", 200, "text/css", "2000", "Cache-Control", "max-age=1, No-Transform", true,
         true, false, false, N},
        {"gzip, br", 200, "text/css", "2000", "Cache-Control", "no-store", true, true, false, false,
         B},
        {"gzip, br", 200, "text/css", "2000", NULL, NULL, true, false, false, false, G},
        {"gzip, br", 200, "text/css", "2000", NULL, NULL, false, true, false, false, B},
        {"gzip, br", 200, "text/css", "2000", NULL, NULL, false, false, false, false, N},
        {"br", 200, "text/css", "2000", NULL, NULL, true, false, false, false, N},
        {"identity", 200, "text/css", "2000", NULL, NULL, true, true, false, false, N},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        struct px_hdr h[4];
        size_t n = 0;
        if (c[i].ct)
            h[n++] = (struct px_hdr){"Content-Type", 12, c[i].ct, strlen(c[i].ct)};
        if (c[i].len)
            h[n++] = (struct px_hdr){"Content-Length", 14, c[i].len, strlen(c[i].len)};
        if (c[i].extra_name)
            h[n++] = (struct px_hdr){c[i].extra_name, strlen(c[i].extra_name), c[i].extra_value,
                                     strlen(c[i].extra_value)};
        struct px_resp_head rh = {.status = c[i].status,
                                  .h = h,
                                  .n = n,
                                  .has_length = c[i].len != NULL,
                                  .chunked = c[i].chunked};
        struct px_accept a = accept_of(c[i].ae);
        int got = (int)px_compress_choose(&a, c[i].gz_on, c[i].br_on, c[i].head, &rh);
        if (got != c[i].want)
            fail_msg("case %zu (%s, %d, %s): got %d, want %d", i, c[i].ae, c[i].status,
                     c[i].ct ? c[i].ct : "-", got, c[i].want);
    }
}

/* --- the filter, against a recording sink ------------------------------ */

static struct {
    char heads[4096];
    unsigned char body[1 << 21];
    size_t body_len, max_piece, pieces;
    int ended, aborted;
    bool has_length, chunked;
} rec;

static int r_head(void *o, const struct px_resp_head *rh)
{
    (void)o;
    size_t k = 0;
    for (size_t i = 0; i < rh->n; i++)
        k += (size_t)snprintf(rec.heads + k, sizeof rec.heads - k, "%.*s: %.*s\n",
                              (int)rh->h[i].name_len, rh->h[i].name, (int)rh->h[i].value_len,
                              rh->h[i].value);
    rec.has_length = rh->has_length;
    rec.chunked = rh->chunked;
    return 0;
}

static int r_data(void *o, const char *at, size_t len)
{
    (void)o;
    assert_true(rec.body_len + len <= sizeof rec.body);
    memcpy(rec.body + rec.body_len, at, len);
    rec.body_len += len;
    rec.pieces++;
    if (len > rec.max_piece)
        rec.max_piece = len;
    return 0;
}

static int r_end(void *o)
{
    (void)o;
    rec.ended++;
    return 0;
}

static void r_abort(void *o, int status)
{
    (void)o;
    (void)status;
    rec.aborted++;
}

static const struct px_sink rsink = {
    .head = r_head, .data = r_data, .end = r_end, .abort = r_abort};

static struct rc_listener lm = {.gzip = true, .brotli = true};
static struct px_listener lis = {.model = &lm};

/* Attaches the filter for a request with Accept-Encoding ae. */
static const struct px_sink *attach(struct px_exchange *x, const char *ae)
{
    struct px_hdr h = {"Accept-Encoding", 15, ae, strlen(ae)};
    struct px_req r = {.lis = &lis, .hdrs = &h, .n_hdrs = 1};
    const struct px_sink *s = NULL;
    memset(&rec, 0, sizeof rec);
    assert_int_equal(px_compress_attach(x, &r, &rsink, &s), 0);
    return s;
}

static unsigned char *text(size_t n)
{
    unsigned char *b = malloc(n);
    assert_non_null(b);
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)("{\"k\": \"value\", \"n\": 12345}\n"[i % 27] + (i / 4096) % 3);
    return b;
}

static void gzip_stream_decompresses_in_bounded_pieces(void **state)
{
    (void)state;
    int owner;
    struct px_exchange x = {.owner = &owner};
    const struct px_sink *s = attach(&x, "gzip");
    assert_ptr_not_equal(s, &rsink);
    size_t n = 1 << 20;
    unsigned char *in = text(n);
    char len[16];
    snprintf(len, sizeof len, "%zu", n);
    struct px_hdr h[] = {H("Content-Type", "application/json"),
                         {"Content-Length", 14, len, strlen(len)},
                         H("ETag", "\"v1\""),
                         H("Accept-Ranges", "bytes"),
                         H("Vary", "Origin")};
    struct px_resp_head rh = {.status = 200, .h = h, .n = 5, .has_length = true};
    assert_int_equal(s->head(x.sink_owner, &rh), 0);
    assert_false(rec.has_length);
    assert_string_equal(rec.heads, "Content-Type: application/json\nETag: W/\"v1\"\nVary: "
                                   "Origin\nContent-Encoding: gzip\nVary: Accept-Encoding\n");
    /* Uneven pieces, as backend reads come. */
    for (size_t off = 0, step = 1; off < n; step = step * 7 % 70001 + 1) {
        size_t k = n - off < step ? n - off : step;
        assert_int_equal(s->data(x.sink_owner, (const char *)in + off, k), 0);
        off += k;
    }
    assert_int_equal(s->end(x.sink_owner), 0);
    assert_int_equal(rec.ended, 1);
    assert_true(rec.max_piece <= PX_COMPRESS_OUT);
    assert_true(rec.body_len < n / 4);
    unsigned char *out = malloc(n + 1);
    assert_non_null(out);
    z_stream z = {0};
    assert_int_equal(inflateInit2(&z, 16 + MAX_WBITS), Z_OK);
    z.next_in = rec.body;
    z.avail_in = (uInt)rec.body_len;
    z.next_out = out;
    z.avail_out = (uInt)n + 1;
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    assert_int_equal(z.total_out, n);
    assert_int_equal(z.avail_in, 0);
    assert_memory_equal(out, in, n);
    inflateEnd(&z);
    free(out);
    free(in);
    px_compress_release(&x);
}

static void brotli_stream_ends_and_passes_through(void **state)
{
    (void)state;
    int owner;
    struct px_exchange x = {.owner = &owner};
    const struct px_sink *s = attach(&x, "br, gzip");
    struct px_hdr h[] = {H("Content-Type", "image/png"), H("Content-Length", "4096"),
                         H("Vary", "accept-encoding")};
    struct px_resp_head rh = {.status = 200, .h = h, .n = 3, .has_length = true};
    assert_int_equal(s->head(x.sink_owner, &rh), 0);
    assert_string_equal(rec.heads,
                        "Content-Type: image/png\nVary: accept-encoding\nContent-Encoding: br\n");
    unsigned char *in = text(4096);
    assert_int_equal(s->data(x.sink_owner, (const char *)in, 4096), 0);
    size_t after_flush = rec.body_len;
    assert_true(after_flush > 0); /* each piece is flushed on at once */
    assert_int_equal(s->end(x.sink_owner), 0);
    assert_true(rec.body_len > after_flush && rec.body_len < 4096);
    free(in);

    /* The next response on the same exchange is too small: as it is. */
    s = attach(&x, "br");
    struct px_hdr h2[] = {H("Content-Type", "text/plain"), H("Content-Length", "5"),
                          H("ETag", "\"x\"")};
    struct px_resp_head rh2 = {.status = 200, .h = h2, .n = 3, .has_length = true};
    assert_int_equal(s->head(x.sink_owner, &rh2), 0);
    assert_string_equal(rec.heads, "Content-Type: text/plain\nContent-Length: 5\nETag: \"x\"\n");
    assert_true(rec.has_length);
    assert_int_equal(s->data(x.sink_owner, "hello", 5), 0);
    assert_int_equal(s->end(x.sink_owner), 0);
    assert_memory_equal(rec.body, "hello", 5);

    /* An abort mid-body frees the compressor and reaches the sink. */
    s = attach(&x, "gzip");
    struct px_hdr h3[] = {H("Content-Type", "text/plain"), H("Content-Length", "100000")};
    struct px_resp_head rh3 = {.status = 200, .h = h3, .n = 2, .has_length = true};
    assert_int_equal(s->head(x.sink_owner, &rh3), 0);
    assert_int_equal(s->data(x.sink_owner, "abc", 3), 0);
    s->abort(x.sink_owner, 502);
    assert_int_equal(rec.aborted, 1);
    /* ... and a connection that goes away mid-body frees it too (ASan). */
    s = attach(&x, "gzip");
    assert_int_equal(s->head(x.sink_owner, &rh3), 0);
    assert_int_equal(s->data(x.sink_owner, "abc", 3), 0);
    px_compress_release(&x);
    assert_null(x.cz);
}

static void no_filter_when_nothing_to_do(void **state)
{
    (void)state;
    int owner;
    struct px_exchange x = {.owner = &owner};
    assert_ptr_equal(attach(&x, "identity"), &rsink);
    assert_ptr_equal(x.sink_owner, &owner);
    assert_ptr_equal(attach(&x, "deflate, br;q=0"), &rsink);
    lm.brotli = false;
    assert_ptr_equal(attach(&x, "br"), &rsink);
    lm.brotli = true;
    px_compress_release(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accept_encoding_table),
        cmocka_unit_test(gzip_types),
        cmocka_unit_test(choose_table),
        cmocka_unit_test(gzip_stream_decompresses_in_bounded_pieces),
        cmocka_unit_test(brotli_stream_ends_and_passes_through),
        cmocka_unit_test(no_filter_when_nothing_to_do),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
