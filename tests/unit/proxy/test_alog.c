/* proxy/alog.c: the access-log line of a request (fields, escaping,
 * sampling) and its sink (written by the writer thread; drops counted). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "proxy/alog.h"

static char path[64];

static char *slurp(const char *p)
{
    FILE *f = fopen(p, "rb");
    if (!f)
        return NULL;
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* A listener named "web" logging to sink s, sampling share. */
struct fixture {
    struct rc_listener model;
    struct px_listener lis;
    struct rc_server_group gm;
    struct px_group g;
    struct px_server srv;
    struct px_client cl;
};

static void fixture_init(struct fixture *fx, struct px_alog_sink *s, double share)
{
    memset(fx, 0, sizeof *fx);
    fx->model.meta.name = "web";
    fx->model.access_log.sample2xx = share;
    fx->lis.model = &fx->model;
    fx->lis.alog = s;
    fx->gm.meta.name = "grp";
    fx->g.model = &fx->gm;
    fx->srv.key = "10.0.0.1:80";
    fx->cl.ip = "192.0.2.1";
    fx->cl.port = "4242";
}

static void one_request(struct fixture *fx, const char *path_q, const char *ua, int status,
                        const char *reason)
{
    struct px_hdr h[2] = {{"User-Agent", 10, ua, strlen(ua)}, {"Referer", 7, "r", 1}};
    struct px_req r = {.lis = &fx->lis,
                       .client = &fx->cl,
                       .method = "GET",
                       .authority = "example.test",
                       .authority_len = 12,
                       .path = path_q,
                       .path_len = strlen(path_q),
                       .hdrs = h,
                       .n_hdrs = 2};
    snprintf(r.client_ip, sizeof r.client_ip, "%s", "198.51.100.7");
    const char *q = strchr(path_q, '?');
    if (q) {
        r.query = q + 1;
        r.query_len = strlen(q + 1);
    }
    struct px_alog_rec rec = {0};
    px_alog_begin(&rec, &fx->lis, 0, &fx->cl, "1.1", &r);
    px_alog_request_id(&rec, "id-1");
    px_alog_group(&rec, &fx->g);
    if (!reason) {
        px_alog_upstream_ready(&rec, &fx->srv);
        px_alog_upstream_head(&rec, status);
        rec.bytes_out = 5;
        px_alog_upstream_end(&rec);
    }
    px_alog_end(&rec, status, reason);
    assert_null(rec.line);             /* freed */
    px_alog_end(&rec, status, reason); /* idempotent */
}

static void line_fields_and_escaping(void **state)
{
    (void)state;
    char err[256];
    struct px_alog_sink *s;
    assert_int_equal(px_alog_sink_get(path, 1, &s, err, sizeof err), 0);
    struct fixture fx;
    fixture_init(&fx, s, 1.0);
    one_request(&fx, "/a/b?x=1", "ua \"q\" \\ \x01 \xc3\xa9 \xff", 200, NULL);
    one_request(&fx, "/fail", "u", 502, px_alog_reason(502));
    px_alog_sink_unref(s); /* the writer flushes, closes and ends */
    px_alog_shutdown(3000);
    char *text = slurp(path);
    assert_non_null(text);
    char *second = strchr(text, '\n');
    assert_non_null(second);
    *second++ = '\0';
    assert_non_null(strstr(text, "\"client_ip\":\"198.51.100.7\",\"client_port\":4242,"
                                 "\"listener\":\"web\",\"sni\":null"));
    assert_non_null(strstr(text, "\"method\":\"GET\",\"host\":\"example.test\",\"path\":\"/a/b\","
                                 "\"query\":\"x=1\""));
    /* Quotes and backslashes escaped, control bytes as \u, valid UTF-8
     * kept, an invalid byte replaced. */
    assert_non_null(strstr(text, "\"user_agent\":\"ua \\\"q\\\" \\\\ \\u0001 \xc3\xa9 \\ufffd\""));
    assert_non_null(strstr(text,
                           "\"request_id\":\"id-1\",\"server_group\":\"grp\",\"rule\":null,"
                           "\"status\":200,\"albd_reason\":null,\"bytes_in\":0,\"bytes_out\":5,"
                           "\"upstream_addr\":\"10.0.0.1:80\",\"upstream_status\":200,"));
    assert_non_null(strstr(second, "\"path\":\"/fail\",\"query\":null"));
    assert_non_null(strstr(second, "\"status\":502,\"albd_reason\":\"upstream_error\""));
    assert_non_null(strstr(second, "\"upstream_addr\":null,\"upstream_status\":null,"
                                   "\"upstream_connect_s\":null"));
    assert_int_equal(second[strlen(second) - 1], '\n');
    free(text);
    unlink(path);
}

static void sampling_keeps_errors(void **state)
{
    (void)state;
    char err[256];
    struct px_alog_sink *s;
    assert_int_equal(px_alog_sink_get(path, 1, &s, err, sizeof err), 0);
    struct fixture fx;
    fixture_init(&fx, s, 0.0);
    for (int i = 0; i < 20; i++)
        one_request(&fx, "/ok", "u", 200, NULL);
    one_request(&fx, "/nf", "u", 404, NULL);
    one_request(&fx, "/albd", "u", 503, px_alog_reason(503));
    px_alog_sink_unref(s);
    px_alog_shutdown(3000);
    char *text = slurp(path);
    assert_non_null(text);
    assert_null(strstr(text, "\"/ok\""));
    assert_non_null(strstr(text, "\"/nf\""));
    assert_non_null(strstr(text, "\"/albd\""));
    free(text);
    unlink(path);
}

static void a_failing_destination_drops_and_counts(void **state)
{
    (void)state;
    char err[256];
    struct px_alog_sink *s;
    assert_int_equal(px_alog_sink_get("/dev/full", 1, &s, err, sizeof err), 0);
    uint64_t before = px_alog_dropped_total();
    struct fixture fx;
    fixture_init(&fx, s, 1.0);
    for (int i = 0; i < 3; i++)
        one_request(&fx, "/x", "u", 200, NULL);
    px_alog_sink_unref(s);
    px_alog_shutdown(3000);
    assert_int_equal(px_alog_dropped_total() - before, 3);
    assert_int_equal(px_alog_sink_get("/nonexistent-dir/x.log", 1, &s, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "/nonexistent-dir/x.log"));
}

static void a_listener_without_log_counts_only(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_init(&fx, NULL, 1.0);
    struct px_alog_rec rec = {0};
    px_alog_begin(&rec, &fx.lis, 0, &fx.cl, "1.1", NULL);
    assert_true(rec.on);
    assert_null(rec.line);
    px_alog_end(&rec, 200, NULL);
    assert_false(rec.on);
}

int main(void)
{
    snprintf(path, sizeof path, "/tmp/albd-test-alog-%d.log", (int)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(line_fields_and_escaping),
        cmocka_unit_test(sampling_keeps_errors),
        cmocka_unit_test(a_failing_destination_drops_and_counts),
        cmocka_unit_test(a_listener_without_log_counts_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
