/* Fuzz target: the HTTP/2 server side of proxy/h2.c fed raw frames.
 *
 * Input: byte 0 is the piece size the bytes arrive in (0: all at once);
 * the rest are the frames a client sends after the connection preface
 * (which the harness sends first). The real handler (nghttp2 and albd's
 * callbacks) runs over the memory seam of fuzz_proxy.h on listener a-bare
 * (no forwarding header of albd's own); every stream's backend exchange is
 * a fake pooled connection that records the bytes; after the input each
 * open one is answered with a small 200.
 *
 * Asserts, for every backend connection a stream used: the head is
 * well-formed (no CR, LF or NUL inside a line, "token: value" fields);
 * the bytes re-parse (llhttp, strict) as one message, or a clean prefix of
 * one; no hop-by-hop header and no forwarding-metadata header
 * (X-Forwarded-*, Forwarded, SLB-ID, the underscore spellings) reaches the
 * backend, in the head or in chunked trailers; and no sanitizer report. */
#include <llhttp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/h2.h"
#include "tests/fuzz/fuzz_proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
static const char ok_response[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

static void check_up(struct fz_up *up)
{
    const char *p = up->sent.p;
    size_t n = up->sent.n;
    if (n == 0)
        return;
    fz_check_head("backend request", p, n);
    /* HTTP/2 passes any token as the method; llhttp knows only the
     * registered ones: check the token here, let llhttp see "GET". */
    size_t m = 0;
    while (m < n && m < 24 && p[m] != ' ') {
        unsigned char ch = (unsigned char)p[m];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              strchr("!#$%&'*+-.^_`|~", ch)))
            fz_fail("backend request method is not a token: %.*s", (int)(n < 100 ? n : 100), p);
        m++;
    }
    if (m == 0 || m == n || p[m] != ' ')
        fz_fail("backend request line has no method: %.*s", (int)(n < 100 ? n : 100), p);
    struct fz_bytes copy = {0};
    fz_bytes_add(&copy, "GET", 3);
    fz_bytes_add(&copy, p + m, n - m);
    p = copy.p;
    n = copy.n;
    struct fz_req r;
    fz_parse_request(p, n, &r, true);
    if (r.complete) {
        if (r.complete != 1 || r.consumed != n ||
            (r.err != HPE_PAUSED && r.err != HPE_PAUSED_UPGRADE))
            fz_fail("backend request is not exactly one message: %s, %zu of %zu bytes: %.*s",
                    llhttp_errno_name(r.err), r.consumed, n, (int)(n < 400 ? n : 400), p);
    } else if (r.err != HPE_OK || r.messages > 1) {
        fz_fail("backend request does not parse: %s (%zu messages): %.*s", llhttp_errno_name(r.err),
                r.messages, (int)(n < 400 ? n : 400), p);
    }
    fz_req_free(&r);
    fz_bytes_free(&copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t piece = data[0];
    fz_conn_open(&px_h2_proto, FZ_LIS_BARE);
    fz_conn_feed(preface, sizeof preface - 1, NULL);
    const char *in = (const char *)data + 1;
    size_t n = size - 1, off = 0;
    while (off < n && !fz.c->closing && fz.c->state == PX_CONN_OPEN && fz.c->want_input) {
        size_t len = piece && n - off > piece ? piece : n - off;
        size_t used = fz_conn_feed(in + off, len, NULL);
        off += used;
        if (used < len)
            break;
    }
    for (size_t i = 0; i < fz.n_ups; i++)
        check_up(&fz.ups[i]);
    for (size_t i = 0; i < fz.n_ups && !fz.c->closing; i++) {
        struct fz_up *up = &fz.ups[i];
        if (!up->released && up->x->u == up->u)
            fz_up_read(up, ok_response, (long)sizeof ok_response - 1);
    }
    fz_conn_end();
    return 0;
}
