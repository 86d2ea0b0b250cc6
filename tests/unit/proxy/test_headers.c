/* Header rewriting for forwarded requests and responses (proxy/headers.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "proxy/headers.h"

#define H(n, v)                                                                                    \
    {                                                                                              \
        n, sizeof(n) - 1, v, sizeof(v) - 1                                                         \
    }

static struct px_buf out;

static int setup(void **state)
{
    px_buf_init(&out, 65536);
    return 0;
}

static int teardown(void **state)
{
    px_buf_cleanup(&out);
    return 0;
}

/* The built head as a NUL-terminated string. */
static const char *head(void)
{
    assert_int_equal(px_buf_append(&out, "", 1), 0);
    return out.data;
}

static const struct px_fwd fwd_none = {.xff_mode = RC_XFF_PRESERVE, .client_ip = "192.0.2.7"};

static void hop_by_hop_headers_are_stripped(void **state)
{
    struct px_hdr h[] = {H("Host", "a.example"),
                         H("Connection", "keep-alive, X-Secret"),
                         H("Keep-Alive", "timeout=5"),
                         H("TE", "trailers"),
                         H("Proxy-Connection", "close"),
                         H("Upgrade", "websocket"),
                         H("Trailer", "X-T"),
                         H("X-Secret", "s"),
                         H("Accept", "*/*")};
    assert_int_equal(
        px_headers_request(&out, "GET", "/x?y", 4, 1, h, 9, &fwd_none, PX_FRAME_NONE, true), 0);
    assert_string_equal(head(), "GET /x?y HTTP/1.1\r\nHost: a.example\r\nAccept: */*\r\n\r\n");
}

static void connection_cannot_strip_framing_or_host(void **state)
{
    struct px_hdr h[] = {H("Host", "a"), H("Content-Length", "3"),
                         H("Connection", "Content-Length,host")};
    bool drop[3];
    px_headers_mark_hop(h, 3, drop);
    assert_false(drop[0]);
    assert_false(drop[1]);
    assert_true(drop[2]);
}

static void xff_append_joins_existing_values(void **state)
{
    struct px_hdr h[] = {H("x-forwarded-for", "10.0.0.1"), H("Host", "a"),
                         H("X-FORWARDED-FOR", " 10.0.0.2 ")};
    struct px_fwd f = {.xff_mode = RC_XFF_APPEND, .client_ip = "192.0.2.7"};
    assert_int_equal(px_headers_request(&out, "GET", "/", 1, 1, h, 3, &f, PX_FRAME_NONE, true), 0);
    assert_string_equal(head(), "GET / HTTP/1.1\r\nHost: a\r\n"
                                "X-Forwarded-For: 10.0.0.1, 10.0.0.2, 192.0.2.7\r\n\r\n");
}

static void xff_append_creates_header(void **state)
{
    struct px_hdr h[] = {H("Host", "a")};
    struct px_fwd f = {.xff_mode = RC_XFF_APPEND, .client_ip = "2001:db8::1"};
    assert_int_equal(px_headers_request(&out, "GET", "/", 1, 0, h, 1, &f, PX_FRAME_NONE, false), 0);
    assert_string_equal(head(),
                        "GET / HTTP/1.0\r\nHost: a\r\nX-Forwarded-For: 2001:db8::1\r\n\r\n");
}

static void xff_remove_and_preserve(void **state)
{
    struct px_hdr h[] = {H("x-forwarded-for", "10.0.0.1")};
    struct px_fwd f = {.xff_mode = RC_XFF_REMOVE, .client_ip = "192.0.2.7"};
    assert_int_equal(px_headers_request(&out, "GET", "/", 1, 1, h, 1, &f, PX_FRAME_NONE, true), 0);
    assert_string_equal(head(), "GET / HTTP/1.1\r\n\r\n");
    px_buf_reset(&out);
    f.xff_mode = RC_XFF_PRESERVE;
    assert_int_equal(px_headers_request(&out, "GET", "/", 1, 1, h, 1, &f, PX_FRAME_NONE, true), 0);
    assert_string_equal(head(), "GET / HTTP/1.1\r\nx-forwarded-for: 10.0.0.1\r\n\r\n");
}

static void forwarded_headers_replace_client_values_keeping_case(void **state)
{
    struct px_hdr h[] = {H("Host", "shop.example:8443"), H("x-forwarded-proto", "ftp"),
                         H("X-Forwarded-Port", "1"),     H("slb-id", "forged"),
                         H("x-forwarded-host", "evil"),  H("X-Forwarded-Proto", "gopher")};
    struct px_fwd f = {.xff_mode = RC_XFF_REMOVE,
                       .proto = "https",
                       .port = "8443",
                       .host = true,
                       .client_port = "50123",
                       .slb_id = "alb-1"};
    assert_int_equal(px_headers_request(&out, "POST", "/p", 2, 1, h, 6, &f, PX_FRAME_LENGTH, true),
                     0);
    assert_string_equal(head(), "POST /p HTTP/1.1\r\nHost: shop.example:8443\r\n"
                                "x-forwarded-proto: https\r\nX-Forwarded-Port: 8443\r\n"
                                "x-forwarded-host: shop.example:8443\r\n"
                                "X-Forwarded-Client-srcport: 50123\r\nslb-id: alb-1\r\n\r\n");
}

static void disabled_forwarded_headers_pass_through(void **state)
{
    struct px_hdr h[] = {H("X-Forwarded-Proto", "https"), H("SLB-ID", "x")};
    assert_int_equal(
        px_headers_request(&out, "GET", "/", 1, 1, h, 2, &fwd_none, PX_FRAME_NONE, true), 0);
    assert_string_equal(head(), "GET / HTTP/1.1\r\nX-Forwarded-Proto: https\r\nSLB-ID: x\r\n\r\n");
}

static void forwarded_host_dropped_without_client_host(void **state)
{
    struct px_hdr h[] = {H("X-Forwarded-Host", "evil")};
    struct px_fwd f = {.xff_mode = RC_XFF_PRESERVE, .host = true};
    assert_int_equal(px_headers_request(&out, "GET", "/", 1, 0, h, 1, &f, PX_FRAME_NONE, false), 0);
    assert_string_equal(head(), "GET / HTTP/1.0\r\n\r\n");
}

static void chunked_request_is_reframed_and_close_sent(void **state)
{
    struct px_hdr h[] = {H("Transfer-Encoding", "chunked"), H("Host", "a")};
    assert_int_equal(
        px_headers_request(&out, "PUT", "/u", 2, 1, h, 2, &fwd_none, PX_FRAME_CHUNKED, false), 0);
    assert_string_equal(head(), "PUT /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                                "Connection: close\r\n\r\n");
}

static void response_head_rebuilt_for_client_version(void **state)
{
    struct px_hdr h[] = {H("Content-Type", "text/html"), H("Transfer-Encoding", "chunked"),
                         H("Connection", "keep-alive"), H("Keep-Alive", "timeout=4")};
    assert_int_equal(px_headers_response(&out, 1, 200, "Fine", 4, h, 4, PX_FRAME_CHUNKED, false),
                     0);
    assert_string_equal(head(), "HTTP/1.1 200 Fine\r\nContent-Type: text/html\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n");
    px_buf_reset(&out);
    assert_int_equal(px_headers_response(&out, 0, 404, NULL, 0, h, 1, PX_FRAME_LENGTH, false), 0);
    assert_string_equal(head(), "HTTP/1.0 404 Not Found\r\nContent-Type: text/html\r\n"
                                "Connection: keep-alive\r\n\r\n");
    px_buf_reset(&out);
    assert_int_equal(px_headers_response(&out, 1, 100, "Continue", 8, NULL, 0, PX_FRAME_NONE, true),
                     0);
    assert_string_equal(head(), "HTTP/1.1 100 Continue\r\n\r\n");
}

static void error_response_is_plain_uncached_and_closes(void **state)
{
    assert_int_equal(px_headers_error(&out, 1, 502), 0);
    const char *s = head();
    assert_non_null(strstr(s, "HTTP/1.1 502 Bad Gateway\r\n"));
    assert_non_null(strstr(s, "\r\nContent-Type: text/plain\r\n"));
    assert_non_null(strstr(s, "\r\nCache-Control: no-store\r\n"));
    assert_non_null(strstr(s, "\r\nConnection: close\r\n"));
    assert_non_null(strstr(s, "\r\nContent-Length: 16\r\n\r\n502 Bad Gateway\n"));
}

static void token_lists_are_matched_by_element(void **state)
{
    assert_true(px_header_has_token("keep-alive, Upgrade", 19, "upgrade"));
    assert_true(px_header_has_token(" upgrade ,x", 11, "UPGRADE"));
    assert_false(px_header_has_token("upgrades", 8, "upgrade"));
    assert_false(px_header_has_token("x-upgrade, y", 12, "upgrade"));
    assert_false(px_header_has_token("", 0, "upgrade"));
    assert_true(px_header_has_token("h2c, websocket", 14, "websocket"));
}

static void websocket_upgrade_is_passed_on_and_never_keepalive(void **state)
{
    /* The client's Connection / Upgrade are hop-by-hop; albd writes its own
     * pair, and no "Connection: close" beside it. */
    struct px_hdr h[] = {H("Host", "a"), H("Connection", "Upgrade, X-Drop"),
                         H("Upgrade", "WebSocket"), H("X-Drop", "1"),
                         H("Sec-WebSocket-Key", "k==")};
    struct px_fwd f = fwd_none;
    f.upgrade = "websocket";
    assert_int_equal(px_headers_request(&out, "GET", "/ws", 3, 1, h, 5, &f, PX_FRAME_NONE, false),
                     0);
    assert_string_equal(head(), "GET /ws HTTP/1.1\r\nHost: a\r\nSec-WebSocket-Key: k==\r\n"
                                "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
}

static void switching_protocols_response_keeps_the_upgrade(void **state)
{
    struct px_hdr h[] = {H("Upgrade", "websocket"), H("Connection", "upgrade"),
                         H("Sec-WebSocket-Accept", "acc=")};
    assert_int_equal(px_headers_response_upgrade(&out, NULL, 0, h, 3, "websocket"), 0);
    assert_string_equal(head(), "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: acc=\r\n"
                                "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
}

static void buffer_limit_is_enforced(void **state)
{
    struct px_buf small;
    px_buf_init(&small, 8);
    assert_int_equal(px_buf_append(&small, "12345678", 8), 0);
    assert_int_not_equal(px_buf_append(&small, "9", 1), 0);
    assert_int_equal(small.len, 8);
    px_buf_cleanup(&small);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(hop_by_hop_headers_are_stripped, setup, teardown),
        cmocka_unit_test_setup_teardown(connection_cannot_strip_framing_or_host, setup, teardown),
        cmocka_unit_test_setup_teardown(xff_append_joins_existing_values, setup, teardown),
        cmocka_unit_test_setup_teardown(xff_append_creates_header, setup, teardown),
        cmocka_unit_test_setup_teardown(xff_remove_and_preserve, setup, teardown),
        cmocka_unit_test_setup_teardown(forwarded_headers_replace_client_values_keeping_case, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(disabled_forwarded_headers_pass_through, setup, teardown),
        cmocka_unit_test_setup_teardown(forwarded_host_dropped_without_client_host, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(chunked_request_is_reframed_and_close_sent, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(response_head_rebuilt_for_client_version, setup, teardown),
        cmocka_unit_test_setup_teardown(error_response_is_plain_uncached_and_closes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(buffer_limit_is_enforced, setup, teardown),
        cmocka_unit_test_setup_teardown(token_lists_are_matched_by_element, setup, teardown),
        cmocka_unit_test_setup_teardown(websocket_upgrade_is_passed_on_and_never_keepalive, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(switching_protocols_response_keeps_the_upgrade, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
