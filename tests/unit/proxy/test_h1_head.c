/* proxy/h1_head.c: the raw request-head scan, the Transfer-Encoding rule
 * and the request checks of HTTP/1.1 requests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/h1_head.h"

static int scan(const char *head, size_t *stop)
{
    struct px_h1_scan s;
    memset(&s, 0, sizeof s);
    size_t st;
    int rc = px_h1_scan_head(&s, head, strlen(head), stop ? stop : &st);
    return rc;
}

static void clean_heads_pass(void **state)
{
    (void)state;
    size_t stop;
    assert_int_equal(scan("GET / HTTP/1.1\r\nHost: a\r\nX: y\tz\r\n\r\n", &stop), 0);
    assert_int_equal(stop, strlen("GET / HTTP/1.1\r\nHost: a\r\nX: y\tz\r\n\r\n"));
    /* Empty lines before the request line are allowed (RFC 9112 2.2). */
    assert_int_equal(scan("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", NULL), 0);
}

static void what_llhttp_lets_through_is_refused(void **state)
{
    (void)state;
    assert_int_equal(scan("GET / HTTP/1.1\nHost: a\r\n\r\n", NULL), -1);      /* bare LF */
    assert_int_equal(scan("GET / HTTP/1.1\r\nHost: a\rX\r\n\r\n", NULL), -1); /* bare CR */
    assert_int_equal(scan("GET / HTTP/1.1\r\n Host: a\r\n\r\n", NULL), -1);   /* obs-fold */
    assert_int_equal(scan("GET  / HTTP/1.1\r\n\r\n", NULL), -1);              /* two SP */
    assert_int_equal(scan("GET / HTTP/1.1 \r\n\r\n", NULL), -1);              /* trailing SP */
    assert_int_equal(scan("GET /\x01 HTTP/1.1\r\n\r\n", NULL), -1);           /* CTL in target */
    assert_int_equal(scan("GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", NULL), -1);   /* DEL in a value */
}

static void htab_in_content_length_stops_the_scan(void **state)
{
    (void)state;
    const char *h = "POST / HTTP/1.1\r\nContent-Length: 5\t\r\n\r\n";
    size_t stop;
    assert_int_equal(scan(h, &stop), 0);
    assert_int_equal(stop, strlen("POST / HTTP/1.1\r\nContent-Length: 5"));
}

static void transfer_encoding_rule(void **state)
{
    (void)state;
    assert_int_equal(px_h1_te_status("chunked", 7), 0);
    assert_int_equal(px_h1_te_status("CHUNKED", 7), 0);
    assert_int_equal(px_h1_te_status("gzip, chunked", 13), 501);
    assert_int_equal(px_h1_te_status("gzip", 4), 400);
    assert_int_equal(px_h1_te_status("chunked, chunked", 16), 400);
}

#define H(n, v)                                                                                    \
    {                                                                                              \
        n, sizeof(n) - 1, v, sizeof(v) - 1                                                         \
    }

static void request_checks(void **state)
{
    (void)state;
    struct px_h1_req_info in;
    struct px_hdr ok[] = {H("Host", "a.example"), H("Connection", "Upgrade"),
                          H("Upgrade", "websocket"), H("Expect", "100-continue")};
    assert_int_equal(px_h1_check_request(ok, 4, "/ws", 3, 1, false, true, &in), 0);
    assert_true(in.ws);
    assert_true(in.expect_continue);
    assert_int_equal(in.target.path_len, 3);
    /* A POST (or a GET with a body) never upgrades. */
    assert_int_equal(px_h1_check_request(ok, 4, "/ws", 3, 1, false, false, &in), 0);
    assert_false(in.ws);
    /* HTTP/1.1 needs exactly one valid Host; 1.0 may have none. */
    assert_int_equal(px_h1_check_request(ok, 0, "/", 1, 1, false, true, &in), 400);
    assert_int_equal(px_h1_check_request(ok, 0, "/", 1, 0, false, true, &in), 0);
    struct px_hdr two[] = {H("Host", "a"), H("Host", "a")};
    assert_int_equal(px_h1_check_request(two, 2, "/", 1, 1, false, true, &in), 400);
    struct px_hdr bad_host[] = {H("Host", "a b")};
    assert_int_equal(px_h1_check_request(bad_host, 1, "/", 1, 1, false, true, &in), 400);
    struct px_hdr expect[] = {H("Host", "a"), H("Expect", "200-ok")};
    assert_int_equal(px_h1_check_request(expect, 2, "/", 1, 1, false, true, &in), 417);
    struct px_hdr te[] = {H("Host", "a"), H("Transfer-Encoding", "gzip, chunked")};
    assert_int_equal(px_h1_check_request(te, 2, "/", 1, 1, false, false, &in), 501);
    assert_int_equal(px_h1_check_request(te, 2, "/", 1, 0, false, false, &in), 400);
    /* The target rule: absolute-form is fine, "*" only for OPTIONS. */
    assert_int_equal(px_h1_check_request(ok, 1, "http://b.example/x", 18, 1, false, true, &in), 0);
    assert_int_equal(in.target.auth_len, 9);
    assert_int_equal(px_h1_check_request(ok, 1, "*", 1, 1, false, true, &in), 400);
    assert_int_equal(px_h1_check_request(ok, 1, "*", 1, 1, true, true, &in), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(clean_heads_pass),
        cmocka_unit_test(what_llhttp_lets_through_is_refused),
        cmocka_unit_test(htab_in_content_length_stops_the_scan),
        cmocka_unit_test(transfer_encoding_rule),
        cmocka_unit_test(request_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
