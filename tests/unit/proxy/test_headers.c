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
    /* An HTTP/1.0 request that may keep its backend connection asks for it. */
    px_buf_reset(&out);
    assert_int_equal(px_headers_request(&out, "GET", "/", 1, 0, h, 1, &f, PX_FRAME_NONE, true), 0);
    assert_string_equal(head(), "GET / HTTP/1.0\r\nHost: a\r\nX-Forwarded-For: 2001:db8::1\r\n"
                                "Connection: keep-alive\r\n\r\n");
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

/* The forwarding-header rule: every client copy of a forwarding-metadata
 * header goes, in any letter case and with '_' for '-', whether or not the
 * listener sends the header; X-Forwarded-For spelled exactly so follows its
 * mode. */
static void client_forwarding_headers_never_pass(void **state)
{
    static const struct {
        const char *name;
        /* DROP: never forwarded; PASS: forwarded as is; XFF: the value is
         * forwarded in Append (joined) and Preserve, not in Remove. */
        enum { DROP, PASS, XFF } fate;
    } cases[] = {
        {"X-Forwarded-Proto", DROP},
        {"x-forwarded-port", DROP},
        {"X-FORWARDED-HOST", DROP},
        {"X-Forwarded-Client-srcport", DROP},
        {"X-Forwarded-Server", DROP},
        {"X-Forwarded-Prefix", DROP},
        {"SLB-ID", DROP},
        {"slb_id", DROP},
        {"Forwarded", DROP},
        {"FORWARDED", DROP},
        {"X_Forwarded_Proto", DROP},
        {"X-Forwarded_Host", DROP},
        {"X_Forwarded_For", DROP},
        {"x_forwarded_for", DROP},
        {"X-Forwarded-Clientcert-subjectdn", DROP},
        {"X_Forwarded_Clientcert_subjectdn", DROP},
        {"X-Client-Verify", DROP}, /* a configured client-cert name (extra) */
        {"X_Client_Verify", DROP},
        {"X-Forwarded-For", XFF},
        {"x-forwarded-for", XFF},
        {"Forwarded-X", PASS},
        {"X-Forwarded", PASS},
        {"XForwarded-Proto", PASS},
        {"SLB-IDs", PASS},
        {"X-Other", PASS},
    };
    const struct px_hdr extra = H("X-Client-Verify", "SUCCESS");
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int mode = RC_XFF_APPEND; mode <= RC_XFF_PRESERVE; mode++) {
            struct px_hdr h[] = {H("Host", "a"),
                                 {cases[c].name, strlen(cases[c].name), "forged", 6}};
            struct px_fwd f = {.xff_mode = (enum rc_xff_mode)mode,
                               .client_ip = "192.0.2.7",
                               .extra = &extra,
                               .n_extra = 1};
            px_buf_reset(&out);
            assert_int_equal(
                px_headers_request(&out, "GET", "/", 1, 1, h, 2, &f, PX_FRAME_NONE, true), 0);
            const char *s = head();
            bool passes = cases[c].fate == PASS || (cases[c].fate == XFF && mode != RC_XFF_REMOVE);
            if (passes != (strstr(s, "forged") != NULL))
                fail_msg("%s (XFF mode %d): expected the client copy %s, head:\n%s", cases[c].name,
                         mode, passes ? "forwarded" : "dropped", s);
            /* albd's own header is there whatever the client sent. */
            assert_non_null(strstr(s, "\r\nX-Client-Verify: SUCCESS\r\n"));
        }
    }
}

static void forwarding_header_names_are_classified(void **state)
{
    static const struct {
        const char *name;
        bool forwarding;
    } cases[] = {
        {"X-Forwarded-For", true}, {"x_forwarded_for", true},
        {"X-Forwarded-", true},    {"X-Forwarded-Ssl", true},
        {"Forwarded", true},       {"forwarded", true},
        {"SLB-ID", true},          {"SLB_ID", true},
        {"X-Forwarded", false},    {"X-Forwarde-For", false},
        {"Forwarded2", false},     {"SLB", false},
        {"X-Real-IP", false},      {"", false},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        if (px_header_is_forwarding(cases[c].name, strlen(cases[c].name)) != cases[c].forwarding)
            fail_msg("px_header_is_forwarding(\"%s\") should be %d", cases[c].name,
                     cases[c].forwarding);
    assert_true(px_header_name_eq("X_Forwarded-FOR", 15, "x-forwarded-for", 15));
    assert_false(px_header_name_eq("X-Forwarded-For", 15, "X-Forwarded-Fo", 14));
    assert_false(px_header_name_eq("X.Forwarded-For", 15, "X-Forwarded-For", 15));
}

static void disabled_forwarded_headers_are_stripped_too(void **state)
{
    struct px_hdr h[] = {H("X-Forwarded-Proto", "https"), H("SLB-ID", "x"),
                         H("Forwarded", "for=1.2.3.4;proto=https"), H("X-Keep", "1")};
    assert_int_equal(
        px_headers_request(&out, "GET", "/", 1, 1, h, 4, &fwd_none, PX_FRAME_NONE, true), 0);
    assert_string_equal(head(), "GET / HTTP/1.1\r\nX-Keep: 1\r\n\r\n");
}

static void underscore_spellings_do_not_lend_their_case(void **state)
{
    /* albd writes its own name, not the client's underscore spelling, and
     * X_Forwarded_For values are not joined into X-Forwarded-For. */
    struct px_hdr h[] = {H("X_Forwarded_Proto", "ftp"), H("X_Forwarded_For", "6.6.6.6"),
                         H("x-forwarded-for", "10.0.0.1")};
    struct px_fwd f = {.xff_mode = RC_XFF_APPEND, .client_ip = "192.0.2.7", .proto = "https"};
    assert_int_equal(px_headers_request(&out, "GET", "/", 1, 1, h, 3, &f, PX_FRAME_NONE, true), 0);
    assert_string_equal(head(), "GET / HTTP/1.1\r\nX-Forwarded-For: 10.0.0.1, 192.0.2.7\r\n"
                                "X-Forwarded-Proto: https\r\n\r\n");
}

/* One Host / :authority check for HTTP/1.1 and HTTP/2. */
static void authority_check_table(void **state)
{
    static const struct {
        const char *v;
        bool ok;
    } cases[] = {
        {"example.com", true},
        {"Example.COM:8443", true},
        {"a", true},
        {"127.0.0.1", true},
        {"127.0.0.1:80", true},
        {"[::1]", true},
        {"[2001:db8::1]:443", true},
        {"[::ffff:192.0.2.1]:1", true},
        {"host:65535", true},
        {"host:00080", true},
        {"xn--bcher-kva.example", true},
        {"under_score.example", true},
        {"a%41b.example", true},
        {"a~b!$&'()*+;=.example", true},
        {"", false},
        {":80", false},
        {"user@host", false},
        {"user:pw@host", false},
        {"a@host:80", false},
        {"a.example,b.example", false},
        {"a.example, b.example", false},
        {"a.example ", false},
        {" a.example", false},
        {"a\texample", false},
        {"host:", false},
        {"host:0", false},
        {"host:65536", false},
        {"host:99999", false},
        {"host:123456", false},
        {"host:8o", false},
        {"host:-1", false},
        {"host:80:80", false},
        {"host:+80", false},
        {"host/path", false},
        {"host?q", false},
        {"host#f", false},
        {"host\\x", false},
        {"a%4", false},
        {"a%zz", false},
        {"[::1", false},
        {"[]", false},
        {"[::1]x", false},
        {"[::1]:", false},
        {"[::1]:0", false},
        {"[v1.x]", false},
        {"[fe80::1%25eth0]", false},
        {"h\xc3\xa9.example", false},
        {"h\"x", false},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        if (px_authority_check(cases[c].v, strlen(cases[c].v)) != cases[c].ok)
            fail_msg("px_authority_check(\"%s\") should be %s", cases[c].v,
                     cases[c].ok ? "true" : "false");
    assert_false(px_authority_check("a\0b", 3));
    assert_false(px_authority_check(NULL, 0));
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

static void reason_phrase_with_control_bytes_is_replaced(void **state)
{
    assert_int_equal(
        px_headers_response(&out, 1, 200, "O\001K\0\177", 5, NULL, 0, PX_FRAME_LENGTH, false), 0);
    assert_string_equal(head(), "HTTP/1.1 200 OK\r\n\r\n");
    px_buf_reset(&out);
    assert_int_equal(
        px_headers_response(&out, 1, 404, "Gone\rX: y", 9, NULL, 0, PX_FRAME_LENGTH, false), 0);
    assert_string_equal(head(), "HTTP/1.1 404 Not Found\r\n\r\n");
    px_buf_reset(&out);
    /* HTAB and obs-text are valid reason-phrase bytes. */
    assert_int_equal(
        px_headers_response(&out, 1, 200, "Tr\tes \xe9", 7, NULL, 0, PX_FRAME_LENGTH, false), 0);
    assert_string_equal(head(), "HTTP/1.1 200 Tr\tes \xe9\r\n\r\n");
}

static void error_response_to_head_has_no_body(void **state)
{
    assert_int_equal(px_headers_error_head(&out, 1, 502), 0);
    const char *s = head();
    assert_non_null(strstr(s, "HTTP/1.1 502 Bad Gateway\r\n"));
    /* The length a GET would have had, and nothing after the head. */
    assert_non_null(strstr(s, "\r\nContent-Length: 16\r\n\r\n"));
    assert_int_equal(strlen(s), (size_t)(strstr(s, "\r\n\r\n") - s) + 4);
}

static void backend_transfer_coding_must_be_chunked_alone(void **state)
{
    (void)state;
    struct px_hdr ok[] = {H("Content-Type", "a"), H("transfer-encoding", " Chunked ")};
    assert_true(px_headers_te_chunked_only(ok, 2));
    assert_true(px_headers_te_chunked_only(ok, 1));
    struct px_hdr gz[] = {H("Transfer-Encoding", "gzip, chunked")};
    assert_false(px_headers_te_chunked_only(gz, 1));
    struct px_hdr gzonly[] = {H("Transfer-Encoding", "gzip")};
    assert_false(px_headers_te_chunked_only(gzonly, 1));
    struct px_hdr two[] = {H("Transfer-Encoding", "chunked"), H("Transfer-Encoding", "chunked")};
    assert_false(px_headers_te_chunked_only(two, 2));
}

static int target(const char *t, bool options, bool absolute_ok, struct px_target *tg)
{
    return px_target_parse(t, strlen(t), options, absolute_ok, tg);
}

static void request_targets_follow_one_rule_for_both_protocols(void **state)
{
    (void)state;
    struct px_target t;
    assert_int_equal(target("/a?b=c", false, false, &t), 0);
    assert_int_equal(t.path_len, 6);
    assert_int_equal(t.auth_len, 0);
    assert_int_equal(target("*", true, false, &t), 0);
    assert_int_equal(target("*", false, true, &t), 400);
    /* Not origin-form: HTTP/2 never; HTTP/1.1 only absolute http(s). */
    assert_int_equal(target("@evil.example/x", false, true, &t), 400);
    assert_int_equal(target("z", false, false, &t), 400);
    assert_int_equal(target("", false, true, &t), 400);
    assert_int_equal(target("http://a.example/p", false, false, &t), 400);
    assert_int_equal(target("http://a.example:8080?q", false, true, &t), 0);
    assert_int_equal(t.auth_off, 7);
    assert_int_equal(t.auth_len, 14);
    assert_int_equal(t.path_off, 21);
    assert_true(t.path_slash);
    assert_int_equal(target("ftp://a.example/p", false, true, &t), 400);
    assert_int_equal(target("http://u@a.example/p", false, true, &t), 400);
    /* Visible ASCII only. */
    assert_int_equal(target("/caf\xc3\xa9", false, false, &t), 400);
    assert_int_equal(target("/a b", false, true, &t), 400);
    assert_int_equal(target("/a\tb", false, true, &t), 400);
    assert_int_equal(target("/a\x7f", false, true, &t), 400);
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
        cmocka_unit_test_setup_teardown(client_forwarding_headers_never_pass, setup, teardown),
        cmocka_unit_test_setup_teardown(forwarding_header_names_are_classified, setup, teardown),
        cmocka_unit_test_setup_teardown(disabled_forwarded_headers_are_stripped_too, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(underscore_spellings_do_not_lend_their_case, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(authority_check_table, setup, teardown),
        cmocka_unit_test_setup_teardown(forwarded_host_dropped_without_client_host, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(chunked_request_is_reframed_and_close_sent, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(response_head_rebuilt_for_client_version, setup, teardown),
        cmocka_unit_test_setup_teardown(error_response_is_plain_uncached_and_closes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(buffer_limit_is_enforced, setup, teardown),
        cmocka_unit_test_setup_teardown(error_response_to_head_has_no_body, setup, teardown),
        cmocka_unit_test_setup_teardown(reason_phrase_with_control_bytes_is_replaced, setup,
                                        teardown),
        cmocka_unit_test(backend_transfer_coding_must_be_chunked_alone),
        cmocka_unit_test(request_targets_follow_one_rule_for_both_protocols),
        cmocka_unit_test_setup_teardown(token_lists_are_matched_by_element, setup, teardown),
        cmocka_unit_test_setup_teardown(websocket_upgrade_is_passed_on_and_never_keepalive, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(switching_protocols_response_keeps_the_upgrade, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
