/* proxy/req.c: the request pipeline both protocols run (route, action,
 * request transforms, exchange, response filters), the client facts and
 * the body meter. The exchange is faked here (as tests/fuzz does): the
 * pipeline's calls into proxy/exchange.c are recorded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/exchange.h"
#include "proxy/compress.h"
#include "proxy/mirror.h"
#include "proxy/req.h"
#include "proxy/worker-t.h"

/* --- the fake exchange ---------------------------------------------------- */

static int begun, connected;
static const struct px_listener *begun_on;

struct px_group *px_exchange_choose_group(const struct px_listener *lis)
{
    return lis->default_group;
}

void px_exchange_begin(struct px_exchange *x, const struct px_listener *lis)
{
    begun++;
    begun_on = lis;
    x->group = px_exchange_choose_group(lis);
    x->attempts = 0;
}

void px_exchange_connect(struct px_exchange *x)
{
    (void)x;
    connected++;
}

/* trafficMirror copies (proxy/mirror.c) would take upstream connections:
 * faked too. */
bool px_mirror_eligible(const struct px_req *r)
{
    return r->body == PX_FRAME_NONE;
}

void px_mirror_send(struct px_worker *w, const struct px_req *r, const struct rc_rule *rule,
                    const char *head, size_t len)
{
    (void)w, (void)r, (void)rule, (void)head, (void)len;
}

/* --- a listener ------------------------------------------------------------ */

static struct rc_server_group g_model = {.upstream_keepalive = true};
static struct px_group group = {.model = &g_model};
static struct rc_listener l_model;
static struct px_listener lis = {
    .model = &l_model, .default_group = &group, .scheme = "http", .port_str = "8080"};
static struct px_client client = {.ip = "192.0.2.7", .port = "40000"};

#define H(n, v)                                                                                    \
    {                                                                                              \
        n, sizeof(n) - 1, v, sizeof(v) - 1                                                         \
    }

static struct px_buf hout, tgt;
static struct px_hdr hdrs[PX_HDR_MAX];

static int setup(void **state)
{
    (void)state;
    memset(&l_model, 0, sizeof l_model);
    l_model.xff_mode = RC_XFF_APPEND;
    l_model.request_timeout_s = 60;
    begun = connected = 0;
    px_buf_init(&hout, 64 * 1024);
    px_buf_init(&tgt, 1024);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    px_buf_cleanup(&hout);
    px_buf_cleanup(&tgt);
    return 0;
}

static char *head(void)
{
    px_buf_append(&hout, "", 1);
    hout.len--;
    return hout.data;
}

static struct px_req req_get(size_t n)
{
    return (struct px_req){.lis = &lis,
                           .client = &client,
                           .method = "GET",
                           .scheme = "http",
                           .scheme_len = 4,
                           .target = "/a?b",
                           .target_len = 4,
                           .path = "/a?b",
                           .path_len = 4,
                           .hdrs = hdrs,
                           .n_hdrs = n,
                           .minor = 1};
}

static int s_head(void *o, const struct px_resp_head *rh)
{
    (void)o;
    (void)rh;
    return 0;
}

static const struct px_sink proto_sink = {.head = s_head};

static void default_route_forwards_to_the_listener_group(void **state)
{
    (void)state;
    struct px_req r = req_get(0);
    struct px_action a;
    px_route(&r, &a);
    assert_int_equal(a.kind, PX_ACTION_FORWARD);
    assert_ptr_equal(a.group, &group);
    /* No Accept-Encoding: no filter, the protocol's sink and owner. */
    struct px_exchange x = {.owner = &r};
    const struct px_sink *sink = NULL;
    l_model.gzip = l_model.brotli = true;
    assert_int_equal(px_filters_attach(&r, &x, &a, &proto_sink, &sink), 0);
    assert_ptr_equal(sink, &proto_sink);
    assert_ptr_equal(x.sink_owner, &r);
    /* A client that accepts br gets the compression filter in front. */
    hdrs[0] = (struct px_hdr)H("Accept-Encoding", "gzip, br");
    r = req_get(1);
    assert_int_equal(px_filters_attach(&r, &x, &a, &proto_sink, &sink), 0);
    assert_ptr_not_equal(sink, &proto_sink);
    assert_ptr_not_equal(x.sink_owner, &r);
    assert_non_null(x.cz);
    /* ... but not when the listener compresses nothing, nor for HEAD. */
    l_model.gzip = l_model.brotli = false;
    assert_int_equal(px_filters_attach(&r, &x, &a, &proto_sink, &sink), 0);
    assert_ptr_equal(sink, &proto_sink);
    l_model.gzip = l_model.brotli = true;
    r.is_head = true;
    assert_int_equal(px_filters_attach(&r, &x, &a, &proto_sink, &sink), 0);
    assert_ptr_equal(sink, &proto_sink);
    px_compress_release(&x);
    assert_null(x.cz);
    l_model.gzip = l_model.brotli = false;
}

static void forward_builds_the_backend_head_and_connects(void **state)
{
    (void)state;
    hdrs[0] = (struct px_hdr)H("Host", "a.example");
    hdrs[1] = (struct px_hdr)H("Expect", "100-continue");
    hdrs[2] = (struct px_hdr)H("X-Forwarded-Clientcert-subjectdn", "CN=forged");
    hdrs[3] = (struct px_hdr)H("Accept", "*/*");
    struct px_req r = req_get(4);
    struct px_exchange x = {0};
    const struct px_sink *sink = NULL;
    assert_int_equal(px_req_start(&r, &x, &hout, &tgt, &proto_sink, &sink), 0);
    assert_int_equal(begun, 1);
    assert_int_equal(connected, 1);
    assert_ptr_equal(begun_on, &lis);
    assert_ptr_equal(x.group, &group);
    assert_true(x.idempotent);
    assert_false(x.body_sent);
    assert_ptr_equal(sink, &proto_sink);
    /* Expect and a forged client-certificate header never reach the
     * backend; X-Forwarded-For carries the client's address. */
    assert_string_equal(head(), "GET /a?b HTTP/1.1\r\nHost: a.example\r\nAccept: */*\r\n"
                                "X-Forwarded-For: 192.0.2.7\r\n\r\n");
}

/* clientSourceIps: the retrieved address is r->client_ip / client_addr
 * (what SourceIp, Sch and access logs use); X-Forwarded-For Append still
 * adds the last hop, the peer (the reference's "IP address of the last
 * hop"). Off, or nothing usable in the header: the peer. */
static void client_ip_is_retrieved_from_x_forwarded_for(void **state)
{
    (void)state;
    struct cm_cidr trusted[1];
    assert_true(cm_cidr_parse("192.0.2.0/24", 12, &trusted[0]));
    l_model.client_ips.enabled = true;
    l_model.client_ips.trusted = trusted;
    l_model.client_ips.n_trusted = 1;
    hdrs[0] = (struct px_hdr)H("Host", "a.example");
    hdrs[1] = (struct px_hdr)H("X-Forwarded-For", "2001:db8::7, 192.0.2.9");
    struct px_req r = req_get(2);
    struct px_exchange x = {0};
    const struct px_sink *sink = NULL;
    assert_int_equal(px_req_start(&r, &x, &hout, &tgt, &proto_sink, &sink), 0);
    assert_string_equal(r.client_ip, "2001:db8::7");
    struct cm_ip want;
    assert_true(cm_ip_parse("2001:db8::7", 11, &want));
    assert_true(cm_ip_equal(&r.client_addr, &want));
    assert_string_equal(head(), "GET /a?b HTTP/1.1\r\nHost: a.example\r\n"
                                "X-Forwarded-For: 2001:db8::7, 192.0.2.9, 192.0.2.7\r\n\r\n");
    /* Garbage: the peer. */
    hdrs[1] = (struct px_hdr)H("X-Forwarded-For", "2001:db8::7, nonsense");
    r = req_get(2);
    px_req_client_ip(&r);
    assert_string_equal(r.client_ip, "192.0.2.7");
    /* Leftmost (0.0.0.0/0). */
    l_model.client_ips.leftmost = true;
    hdrs[1] = (struct px_hdr)H("X-Forwarded-For", "198.51.100.1, 203.0.113.5");
    r = req_get(2);
    px_req_client_ip(&r);
    assert_string_equal(r.client_ip, "198.51.100.1");
    /* Off: the peer, whatever the header says. */
    l_model.client_ips.enabled = false;
    r = req_get(2);
    px_req_client_ip(&r);
    assert_string_equal(r.client_ip, "192.0.2.7");
}

static void absolute_form_authority_replaces_host(void **state)
{
    (void)state;
    hdrs[0] = (struct px_hdr)H("Host", "other.example");
    struct px_req r = req_get(1);
    r.target = "http://a.example";
    r.target_len = 16;
    r.path = "";
    r.path_len = 0;
    r.path_slash = true;
    r.authority = "a.example";
    r.authority_len = 9;
    r.target_authority = true;
    r.method = "POST";
    r.body = PX_FRAME_LENGTH;
    struct px_exchange x = {0};
    const struct px_sink *sink;
    assert_int_equal(px_req_start(&r, &x, &hout, &tgt, &proto_sink, &sink), 0);
    assert_false(x.idempotent); /* POST: never sent twice */
    assert_string_equal(head(), "POST / HTTP/1.1\r\nHost: a.example\r\n"
                                "X-Forwarded-For: 192.0.2.7\r\n\r\n");
    /* No Host at all: the authority is added. */
    px_buf_reset(&hout);
    r.n_hdrs = 0;
    assert_int_equal(px_req_start(&r, &x, &hout, &tgt, &proto_sink, &sink), 0);
    assert_string_equal(head(), "POST / HTTP/1.1\r\nHost: a.example\r\n"
                                "X-Forwarded-For: 192.0.2.7\r\n\r\n");
}

static void listener_forwarding_headers_and_upgrade(void **state)
{
    (void)state;
    l_model.xff_mode = RC_XFF_REMOVE;
    l_model.headers.proto = l_model.headers.port = l_model.headers.client_src_port = true;
    hdrs[0] = (struct px_hdr)H("Host", "a.example");
    hdrs[1] = (struct px_hdr)H("X-Forwarded-For", "10.0.0.1");
    struct px_req r = req_get(2);
    r.upgrade = "websocket";
    struct px_exchange x = {0};
    const struct px_sink *sink;
    assert_int_equal(px_req_start(&r, &x, &hout, &tgt, &proto_sink, &sink), 0);
    assert_string_equal(head(), "GET /a?b HTTP/1.1\r\nHost: a.example\r\n"
                                "X-Forwarded-Proto: http\r\nX-Forwarded-Port: 8080\r\n"
                                "X-Forwarded-Client-srcport: 40000\r\n"
                                "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
}

static void keepalive_follows_the_group_and_the_version(void **state)
{
    (void)state;
    hdrs[0] = (struct px_hdr)H("Host", "a.example");
    struct px_req r = req_get(1);
    struct px_exchange x = {0};
    const struct px_sink *sink;
    g_model.upstream_keepalive = false;
    assert_int_equal(px_req_start(&r, &x, &hout, &tgt, &proto_sink, &sink), 0);
    assert_non_null(strstr(head(), "\r\nConnection: close\r\n"));
    g_model.upstream_keepalive = true;
    px_buf_reset(&hout);
    r.minor = 0; /* an HTTP/1.0 client: 1.0 to the backend, asking to keep it */
    assert_int_equal(px_req_start(&r, &x, &hout, &tgt, &proto_sink, &sink), 0);
    assert_non_null(strstr(head(), "GET /a?b HTTP/1.0\r\n"));
    assert_non_null(strstr(head(), "\r\nConnection: keep-alive\r\n"));
    g_model.upstream_keepalive = false; /* 1.0 closes by default: nothing to say */
    px_buf_reset(&hout);
    assert_int_equal(px_req_start(&r, &x, &hout, &tgt, &proto_sink, &sink), 0);
    assert_non_null(strstr(head(), "GET /a?b HTTP/1.0\r\n"));
    assert_null(strstr(head(), "Connection"));
    g_model.upstream_keepalive = true;
}

static void a_head_too_large_is_431_and_connects_nothing(void **state)
{
    (void)state;
    hdrs[0] = (struct px_hdr)H("Host", "a.example");
    struct px_req r = req_get(1);
    struct px_exchange x = {0};
    const struct px_sink *sink;
    struct px_buf small;
    px_buf_init(&small, 20);
    assert_int_equal(px_req_start(&r, &x, &small, &tgt, &proto_sink, &sink), 431);
    assert_int_equal(connected, 0);
    px_buf_cleanup(&small);
}

static void idempotent_methods(void **state)
{
    (void)state;
    const char *yes[] = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"};
    const char *no[] = {"POST", "PATCH", "get", "LOCK"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        assert_true(px_method_idempotent(yes[i]));
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        assert_false(px_method_idempotent(no[i]));
}

static void body_meter_limit_and_rate(void **state)
{
    (void)state;
    struct px_body_meter m;
    px_body_meter_reset(&m);
    l_model.limits.max_request_body_bytes = 100;
    assert_int_equal(px_body_meter_add(&m, &l_model, 1000, 60), 0);
    assert_int_equal(px_body_meter_add(&m, &l_model, 1001, 41), 413);
    /* 256 bytes/s over a full window, else 408. */
    l_model.limits.max_request_body_bytes = 0;
    l_model.limits.min_body_rate = 256;
    px_body_meter_reset(&m);
    assert_int_equal(px_body_meter_add(&m, &l_model, 1000, 10), 0);
    assert_int_equal(px_body_meter_add(&m, &l_model, 1000 + PX_BODY_RATE_WINDOW_MS, 10), 408);
    /* Fast enough: the window starts again. */
    px_body_meter_reset(&m);
    assert_int_equal(px_body_meter_add(&m, &l_model, 1000, 2000), 0);
    assert_int_equal(px_body_meter_add(&m, &l_model, 1000 + PX_BODY_RATE_WINDOW_MS, 0), 0);
    /* albd held the body back: the window restarts, the slow part is not
     * the client's. */
    px_body_meter_reset(&m);
    assert_int_equal(px_body_meter_add(&m, &l_model, 1000, 10), 0);
    px_body_meter_restart(&m);
    assert_int_equal(px_body_meter_add(&m, &l_model, 1000 + PX_BODY_RATE_WINDOW_MS, 10), 0);
}

static void responses_are_counted_by_class(void **state)
{
    (void)state;
    static struct px_worker w;
    px_req_count_response(&w, 204);
    px_req_count_response(&w, 502);
    px_req_count_response(&w, 999);
    assert_int_equal(atomic_load(&w.stats.responses_by_class[2]), 1);
    assert_int_equal(atomic_load(&w.stats.responses_by_class[5]), 1);
}

static void client_facts_of_a_plain_connection(void **state)
{
    (void)state;
    static struct px_conn c;
    snprintf(c.client_ip, sizeof c.client_ip, "198.51.100.1");
    snprintf(c.client_port, sizeof c.client_port, "1234");
    struct px_client cl;
    px_client_init(&cl, &c);
    assert_string_equal(cl.ip, "198.51.100.1");
    assert_string_equal(cl.port, "1234");
    assert_null(cl.ssl);
    assert_null(cl.tls_version);
    /* No TLS: no certificate facts, nothing allocated. */
    assert_int_equal(px_client_cert_load(&cl, &l_model), 0);
    assert_null(cl.cc);
    px_client_cleanup(&cl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(default_route_forwards_to_the_listener_group, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(forward_builds_the_backend_head_and_connects, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(absolute_form_authority_replaces_host, setup, teardown),
        cmocka_unit_test_setup_teardown(client_ip_is_retrieved_from_x_forwarded_for, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(listener_forwarding_headers_and_upgrade, setup, teardown),
        cmocka_unit_test_setup_teardown(keepalive_follows_the_group_and_the_version, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_head_too_large_is_431_and_connects_nothing, setup,
                                        teardown),
        cmocka_unit_test(idempotent_methods),
        cmocka_unit_test_setup_teardown(body_meter_limit_and_rate, setup, teardown),
        cmocka_unit_test(responses_are_counted_by_class),
        cmocka_unit_test_setup_teardown(client_facts_of_a_plain_connection, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
