/* proxy/health.c: the verdict state machine (thresholds, transitions,
 * a server without a verdict counting as healthy), the status line parser,
 * status classes, the probe request, and passive ejection on the registry's
 * atomics. The prober's sockets are covered by tests/integration
 * (health_checks_*.py). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "proxy/backend.h"
#include "proxy/health.h"

static void feed(struct px_hc_state *st, const char *results, int hthr, int uthr, int *changes)
{
    for (const char *p = results; *p; p++)
        *changes += px_hc_record(st, *p == '+', hthr, uthr);
}

static void unknown_is_up_after_one_success(void **state)
{
    (void)state;
    struct px_hc_state st = {0};
    assert_int_equal(st.verdict, PX_HEALTH_UNKNOWN);
    assert_true(px_hc_record(&st, true, 3, 3));
    assert_int_equal(st.verdict, PX_HEALTH_UP);
    assert_false(px_hc_record(&st, true, 3, 3));
    assert_int_equal(st.verdict, PX_HEALTH_UP);
}

static void unknown_goes_down_only_at_the_unhealthy_threshold(void **state)
{
    (void)state;
    struct px_hc_state st = {0};
    int changes = 0;
    feed(&st, "--", 2, 3, &changes);
    assert_int_equal(st.verdict, PX_HEALTH_UNKNOWN); /* still usable */
    assert_int_equal(changes, 0);
    feed(&st, "-", 2, 3, &changes);
    assert_int_equal(st.verdict, PX_HEALTH_DOWN);
    assert_int_equal(changes, 1);
}

static void up_needs_unhealthy_threshold_failures_in_a_row(void **state)
{
    (void)state;
    struct px_hc_state st = {.verdict = PX_HEALTH_UP};
    int changes = 0;
    /* A success in between starts the count again. */
    feed(&st, "--+--+-", 2, 3, &changes);
    assert_int_equal(st.verdict, PX_HEALTH_UP);
    assert_int_equal(changes, 0);
    feed(&st, "--", 2, 3, &changes);
    assert_int_equal(st.verdict, PX_HEALTH_DOWN);
    assert_int_equal(changes, 1);
    /* More failures change nothing. */
    feed(&st, "-----", 2, 3, &changes);
    assert_int_equal(st.verdict, PX_HEALTH_DOWN);
    assert_int_equal(changes, 1);
}

static void down_needs_healthy_threshold_successes_in_a_row(void **state)
{
    (void)state;
    struct px_hc_state st = {.verdict = PX_HEALTH_DOWN};
    int changes = 0;
    feed(&st, "++++-", 5, 2, &changes); /* four of five, then a failure */
    assert_int_equal(st.verdict, PX_HEALTH_DOWN);
    assert_int_equal(changes, 0);
    feed(&st, "++++", 5, 2, &changes);
    assert_int_equal(st.verdict, PX_HEALTH_DOWN);
    feed(&st, "+", 5, 2, &changes);
    assert_int_equal(st.verdict, PX_HEALTH_UP);
    assert_int_equal(changes, 1);
}

static void thresholds_at_both_ends_of_the_range(void **state)
{
    (void)state;
    for (int thr = 2; thr <= 10; thr += 8) {
        struct px_hc_state st = {.verdict = PX_HEALTH_UP};
        int changes = 0;
        for (int i = 1; i < thr; i++)
            feed(&st, "-", thr, thr, &changes);
        assert_int_equal(st.verdict, PX_HEALTH_UP);
        feed(&st, "-", thr, thr, &changes);
        assert_int_equal(st.verdict, PX_HEALTH_DOWN);
        for (int i = 1; i < thr; i++)
            feed(&st, "+", thr, thr, &changes);
        assert_int_equal(st.verdict, PX_HEALTH_DOWN);
        feed(&st, "+", thr, thr, &changes);
        assert_int_equal(st.verdict, PX_HEALTH_UP);
        assert_int_equal(changes, 2);
    }
}

static void flapping_server_changes_once_per_threshold(void **state)
{
    (void)state;
    struct px_hc_state st = {.verdict = PX_HEALTH_UP};
    int changes = 0;
    /* Alternating results never reach a threshold of 2. */
    feed(&st, "-+-+-+-+-+", 2, 2, &changes);
    assert_int_equal(changes, 0);
    assert_int_equal(st.verdict, PX_HEALTH_UP);
    feed(&st, "--++--++", 2, 2, &changes);
    assert_int_equal(changes, 4);
    assert_int_equal(st.verdict, PX_HEALTH_UP);
}

static void parses_status_lines(void **state)
{
    (void)state;
    assert_int_equal(px_hc_parse_status("HTTP/1.1 200 OK\r\n", 17), 200);
    assert_int_equal(px_hc_parse_status("HTTP/1.0 503\r\n", 14), 503);
    assert_int_equal(px_hc_parse_status("HTTP/1.1 404", 12), 404);
    assert_int_equal(px_hc_parse_status("HTTP/1.1 30", 11), 0); /* not complete */
    assert_int_equal(px_hc_parse_status("HTT", 3), 0);
    assert_int_equal(px_hc_parse_status("", 0), 0);
    assert_int_equal(px_hc_parse_status("SSH-2.0-OpenSSH\r\n", 17), -1);
    assert_int_equal(px_hc_parse_status("HTTP/2 200\r\n", 12), -1);
    assert_int_equal(px_hc_parse_status("HTTP/1.1 2000\r\n", 15), -1);
    assert_int_equal(px_hc_parse_status("HTTP/1.1 099 x\r\n", 16), -1);
    assert_int_equal(px_hc_parse_status("HTTP/1.1 600 x\r\n", 16), -1);
    assert_int_equal(px_hc_parse_status("HTTP/1.1 2x0 x\r\n", 16), -1);
}

static void status_classes(void **state)
{
    (void)state;
    unsigned def = 1u << 2 | 1u << 3; /* http_2xx, http_3xx */
    assert_true(px_hc_code_ok(def, 200));
    assert_true(px_hc_code_ok(def, 399));
    assert_false(px_hc_code_ok(def, 404));
    assert_false(px_hc_code_ok(def, 500));
    assert_false(px_hc_code_ok(def, 101));
    assert_true(px_hc_code_ok(1u << 5, 503));
    assert_false(px_hc_code_ok(1u << 5, 204));
    assert_false(px_hc_code_ok(0xffffffffu, 600));
}

static void builds_probe_requests(void **state)
{
    (void)state;
    char out[512];
    struct rc_health_check hc = {.method = "HEAD", .path = "/", .http_version = 11};
    int n = px_hc_request(out, sizeof out, &hc, "10.0.0.1");
    assert_true(n > 0);
    assert_string_equal(out,
                        "HEAD / HTTP/1.1\r\nHost: 10.0.0.1\r\nUser-Agent: albd-health-check\r\n"
                        "Connection: close\r\n\r\n");
    hc = (struct rc_health_check){
        .method = "POST", .path = "/hc?x=1", .host = "health.internal", .http_version = 10};
    n = px_hc_request(out, sizeof out, &hc, "10.0.0.1");
    assert_int_equal(n, (int)strlen(out));
    assert_string_equal(out, "POST /hc?x=1 HTTP/1.0\r\nHost: health.internal\r\n"
                             "User-Agent: albd-health-check\r\nConnection: close\r\n"
                             "Content-Length: 0\r\n\r\n");
    assert_int_equal(px_hc_request(out, 20, &hc, "10.0.0.1"), -1);
}

static void passive_ejection_after_the_threshold(void **state)
{
    (void)state;
    struct px_registry *r = px_registry_new(1);
    struct px_backend_id id;
    assert_int_equal(px_backend_id_init(&id, "10.0.0.1", 80), 0);
    struct px_backend *b = px_backend_get(r, &id);
    assert_non_null(b);

    /* No health check covers it: never ejected. */
    for (int i = 0; i < 20; i++)
        px_health_passive_failure(b, UV_ECONNREFUSED);
    assert_true(px_backend_usable(b));

    atomic_store(&b->passive_failures, 0);
    atomic_store(&b->eject_after, 3);
    px_health_passive_failure(b, UV_ECONNREFUSED);
    px_health_passive_failure(b, UV_ECONNREFUSED);
    px_health_passive_ok(b); /* a response byte: the run starts again */
    assert_int_equal(atomic_load(&b->passive_failures), 0);
    px_health_passive_failure(b, UV_ECONNREFUSED);
    px_health_passive_failure(b, UV_ECONNREFUSED);
    assert_true(px_backend_usable(b));
    px_health_passive_failure(b, UV_ECONNREFUSED);
    assert_false(px_backend_usable(b));
    assert_int_equal(atomic_load(&b->health), PX_HEALTH_DOWN);

    /* This process running out of descriptors says nothing of b. */
    atomic_store(&b->health, PX_HEALTH_UP);
    atomic_store(&b->passive_failures, 0);
    for (int i = 0; i < 10; i++)
        px_health_passive_failure(b, UV_EMFILE);
    assert_true(px_backend_usable(b));
    assert_int_equal(atomic_load(&b->passive_failures), 0);

    px_backend_unref(b);
    assert_int_equal(px_registry_free(r), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unknown_is_up_after_one_success),
        cmocka_unit_test(unknown_goes_down_only_at_the_unhealthy_threshold),
        cmocka_unit_test(up_needs_unhealthy_threshold_failures_in_a_row),
        cmocka_unit_test(down_needs_healthy_threshold_successes_in_a_row),
        cmocka_unit_test(thresholds_at_both_ends_of_the_range),
        cmocka_unit_test(flapping_server_changes_once_per_threshold),
        cmocka_unit_test(parses_status_lines),
        cmocka_unit_test(status_classes),
        cmocka_unit_test(builds_probe_requests),
        cmocka_unit_test(passive_ejection_after_the_threshold),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
