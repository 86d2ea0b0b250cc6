/* Fuzz target: the HTTP/1.1 request path of proxy/h1.c, differentially.
 *
 * Input: byte 0 chooses the listener (bit 0: a-bare or b-full of
 * data/proxy) and how the client's bytes arrive (bits 1-7: 0 all at once,
 * else in pieces of that many bytes); the rest is what a client sends on
 * one connection. The real handler runs over the memory seam of
 * fuzz_proxy.h; each request it forwards is answered with an empty 200.
 *
 * Asserts, for the k-th request albd forwards: the bytes the backend gets
 * have a well-formed head (no CR, LF or NUL inside a line) and re-parse
 * (llhttp, strict) as exactly one complete message, nothing before or
 * after it, with the method, target (origin-form of the client's) and
 * body length of the k-th message a separate llhttp parse of the client's
 * bytes finds; on a-bare no hop-by-hop or forwarding-metadata header of
 * the client's reaches the backend (fuzz_check_reserved). A request left
 * incomplete is a clean prefix of one message. */
#include <llhttp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/h1.h"
#include "tests/fuzz/fuzz_proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_REF 256

/* The client's messages, as llhttp (the parser albd uses) reads them. */
struct ref_msg {
    char method[32];
    struct fz_bytes url;
    unsigned long long body_len;
    bool complete;
};
static struct ref_msg ref[MAX_REF];
static size_t n_ref;

static int ref_begin(llhttp_t *p)
{
    (void)p;
    if (n_ref == MAX_REF)
        return -1;
    ref[n_ref].body_len = 0;
    ref[n_ref].complete = false;
    ref[n_ref].url.n = 0;
    ref[n_ref].method[0] = '\0';
    n_ref++;
    return 0;
}

static int ref_url(llhttp_t *p, const char *at, size_t len)
{
    (void)p;
    fz_bytes_add(&ref[n_ref - 1].url, at, len);
    return 0;
}

static int ref_headers(llhttp_t *p)
{
    snprintf(ref[n_ref - 1].method, sizeof ref[0].method, "%s",
             llhttp_method_name(llhttp_get_method(p)));
    return 0;
}

static int ref_body(llhttp_t *p, const char *at, size_t len)
{
    (void)p;
    (void)at;
    ref[n_ref - 1].body_len += len;
    return 0;
}

static int ref_complete(llhttp_t *p)
{
    (void)p;
    ref[n_ref - 1].complete = true;
    return 0;
}

static void ref_parse(const char *p, size_t n)
{
    static const llhttp_settings_t st = {
        .on_message_begin = ref_begin,
        .on_url = ref_url,
        .on_headers_complete = ref_headers,
        .on_body = ref_body,
        .on_message_complete = ref_complete,
    };
    llhttp_t parser;
    llhttp_init(&parser, HTTP_REQUEST, &st);
    n_ref = 0;
    const char *end = p + n;
    while (p < end) {
        llhttp_errno_t e = llhttp_execute(&parser, p, (size_t)(end - p));
        if (e != HPE_PAUSED_UPGRADE)
            break;
        /* albd answers an upgrade it does not get as a plain request and
         * keeps reading HTTP (h1.c): so does the reference. */
        p = llhttp_get_error_pos(&parser);
        llhttp_resume_after_upgrade(&parser);
    }
}

/* The target albd must send for a client's target: origin-form as it is,
 * absolute-form reduced to its path (and query), "/" added when empty. */
static void expected_target(const struct fz_bytes *url, struct fz_bytes *out)
{
    const char *t = url->p;
    size_t n = url->n, a = 0;
    out->n = 0;
    if (n >= 7 && strncasecmp(t, "http://", 7) == 0)
        a = 7;
    else if (n >= 8 && strncasecmp(t, "https://", 8) == 0)
        a = 8;
    if (!a) {
        fz_bytes_add(out, t, n);
        return;
    }
    size_t e = a;
    while (e < n && t[e] != '/' && t[e] != '?' && t[e] != '#')
        e++;
    if (e == n || t[e] != '/')
        fz_bytes_add(out, "/", 1);
    fz_bytes_add(out, t + e, n - e);
}

static enum fz_listener lis;
static size_t n_checked;

static void check_forwarded(struct fz_up *up, bool complete)
{
    const char *p = up->sent.p;
    size_t n = up->sent.n;
    size_t k = n_checked++;
    if (k >= n_ref)
        fz_fail("request %zu forwarded, but the client sent only %zu", k + 1, n_ref);
    struct fz_req r;
    fz_parse_request(p, n, &r, lis == FZ_LIS_BARE);
    if (!complete) {
        /* The body is still arriving: a clean prefix of one message. */
        if (r.err != HPE_OK || r.messages > 1)
            fz_fail("partial request %zu does not parse: %s, %zu messages: %.*s", k + 1,
                    llhttp_errno_name(r.err), r.messages, (int)(n < 400 ? n : 400), p);
        if (fz_check_head("backend request", p, n) == 0 && r.messages && r.complete)
            fz_fail("request %zu: no head but a message", k + 1);
        fz_req_free(&r);
        return;
    }
    if (fz_check_head("backend request", p, n) == 0)
        fz_fail("request %zu: the head is not complete: %.*s", k + 1, (int)(n < 400 ? n : 400), p);
    if ((r.err != HPE_PAUSED && r.err != HPE_PAUSED_UPGRADE) || r.complete != 1 || r.consumed != n)
        fz_fail("request %zu is not exactly one message: %s, %zu complete, %zu of %zu bytes: %.*s",
                k + 1, llhttp_errno_name(r.err), r.complete, r.consumed, n,
                (int)(n < 400 ? n : 400), p);
    const struct ref_msg *m = &ref[k];
    if (!m->complete)
        fz_fail("request %zu forwarded complete, but the client's is not", k + 1);
    struct fz_bytes want = {0};
    expected_target(&m->url, &want);
    if (strcmp(r.method, m->method) != 0)
        fz_fail("request %zu: method %s, client sent %s", k + 1, r.method, m->method);
    if (r.target.n != want.n || memcmp(r.target.p, want.p, want.n) != 0)
        fz_fail("request %zu: target \"%.*s\", client sent \"%.*s\"", k + 1, (int)r.target.n,
                r.target.p, (int)m->url.n, m->url.p);
    if (r.body_len != m->body_len)
        fz_fail("request %zu: body of %llu bytes, client sent %llu", k + 1, r.body_len,
                m->body_len);
    fz_bytes_free(&want);
    fz_req_free(&r);
}

static const char ok_response[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

/* The handler stopped reading: a request is complete and waits for its
 * response. */
static bool on_idle(void)
{
    if (fz.c->want_input)
        return false;
    for (size_t i = 0; i < fz.n_ups; i++) {
        struct fz_up *up = &fz.ups[i];
        if (up->released || up->answered || up->x->u != up->u)
            continue;
        check_forwarded(up, true);
        fz_up_read(up, ok_response, (long)sizeof ok_response - 1);
        return true;
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    lis = (data[0] & 1) ? FZ_LIS_FULL : FZ_LIS_BARE;
    size_t piece = data[0] >> 1;
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    ref_parse(in, n);
    n_checked = 0;
    fz_conn_open(&px_h1_proto, lis);
    size_t off = 0;
    while (off < n && !fz.c->closing && fz.c->state == PX_CONN_OPEN) {
        size_t len = piece && n - off > piece ? piece : n - off;
        size_t used = fz_conn_feed(in + off, len, on_idle);
        if (used < len && fz.c->want_input)
            fz_fail("h1 stopped reading %zu bytes early while wanting input", len - used);
        /* conn.c keeps what was not consumed and offers it again with the
         * next bytes; here the piece simply moves on. */
        off += used;
        if (used < len)
            break;
    }
    for (size_t i = 0; i < fz.n_ups; i++) {
        struct fz_up *up = &fz.ups[i];
        if (!up->released && !up->answered && up->x->u == up->u)
            check_forwarded(up, false);
    }
    fz_conn_end();
    for (size_t i = 0; i < MAX_REF; i++)
        fz_bytes_free(&ref[i].url);
    return 0;
}
