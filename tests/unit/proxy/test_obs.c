/* proxy/obs.c: metric slots by name, their limit, histograms, reasons. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/obs.h"

static void slots_are_stable_and_bounded(void **state)
{
    (void)state;
    int a = px_obs_slot(PX_OBS_LISTENER, "a"), b = px_obs_slot(PX_OBS_LISTENER, "b");
    assert_int_not_equal(a, b);
    assert_int_equal(px_obs_slot(PX_OBS_LISTENER, "a"), a);
    assert_string_equal(px_obs_name(PX_OBS_LISTENER, b), "b");
    assert_int_equal(px_obs_slot(PX_OBS_GROUP, "a"), 0); /* kinds are apart */
    char name[32];
    int last = -1;
    for (int i = 0; i < PX_OBS_LISTENERS + 10; i++) {
        snprintf(name, sizeof name, "l%d", i);
        last = px_obs_slot(PX_OBS_LISTENER, name);
    }
    assert_int_equal(last, PX_OBS_LISTENERS - 1);
    assert_string_equal(px_obs_name(PX_OBS_LISTENER, last), "_other");
    assert_int_equal(px_obs_used(PX_OBS_LISTENER), PX_OBS_LISTENERS - 1);
    px_obs_cleanup();
    assert_int_equal(px_obs_used(PX_OBS_LISTENER), 0);
}

static void histogram_and_workers(void **state)
{
    (void)state;
    assert_null(px_obs_worker(0)); /* before init: nothing is recorded */
    px_obs_conn(0, 0, 1);
    assert_int_equal(px_obs_init(2), 0);
    assert_int_equal(px_obs_n_workers(), 2);
    struct px_obs_worker *w = px_obs_worker(1);
    assert_non_null(w);
    assert_null(px_obs_worker(2));
    px_obs_observe(&w->lis[0].duration, 3000000);     /* 3 ms: first bucket */
    px_obs_observe(&w->lis[0].duration, 700000000);   /* 0.7 s: the 1 s bucket */
    px_obs_observe(&w->lis[0].duration, 20000000000); /* 20 s: only +Inf */
    assert_int_equal(w->lis[0].duration.bucket[0], 1);
    assert_int_equal(w->lis[0].duration.bucket[7], 1);
    assert_int_equal(w->lis[0].duration.count, 3);
    assert_int_equal(w->lis[0].duration.sum_ns, 20703000000ull);
    px_obs_conn(1, 0, 1);
    px_obs_conn(1, 0, 1);
    px_obs_conn(1, 0, -1);
    assert_int_equal(w->lis[0].conns_active, 1);
    px_obs_cleanup();
}

static void reasons_round_trip(void **state)
{
    (void)state;
    for (int r = 0; r < PX_OBS_REASONS; r++)
        assert_int_equal(px_obs_reason_index(px_obs_reason_name(r)), r);
    assert_int_equal(px_obs_reason_index(NULL), PX_OBS_REASONS);
    assert_int_equal(px_obs_reason_index("nonsense"), PX_OBS_REASONS);
    assert_string_equal(px_obs_tls_fail_name(PX_OBS_TLSF_HTTP_REQUEST), "http_request");
    assert_string_equal(px_obs_connect_fail_name(PX_OBS_CF_TIMEOUT), "timeout");
}

static void tls_failures_by_version(void **state)
{
    (void)state;
    assert_int_equal(px_obs_init(1), 0);
    struct px_obs_worker *w = px_obs_worker(0);
    px_obs_tls_fail(0, 0, PX_OBS_TLSF_PROTOCOL_VERSION, 0x0301); /* TLS 1.0 */
    px_obs_tls_fail(0, 0, PX_OBS_TLSF_NO_SHARED_CIPHER, 0x0303); /* TLS 1.2 */
    px_obs_tls_fail(0, 0, PX_OBS_TLSF_EOF, 0);                   /* before a ClientHello */
    px_obs_tls_fail(0, 0, PX_OBS_TLSF_EOF, 0x10000);             /* not a version */
    px_obs_tls_fail(0, 0, PX_OBS_TLS_FAILS, 0x0303);             /* out of range: ignored */
    assert_int_equal(w->lis[0].tls_fail[PX_OBS_TLSF_PROTOCOL_VERSION][PX_OBS_TLS10], 1);
    assert_int_equal(w->lis[0].tls_fail[PX_OBS_TLSF_NO_SHARED_CIPHER][PX_OBS_TLS12], 1);
    assert_int_equal(w->lis[0].tls_fail[PX_OBS_TLSF_EOF][PX_OBS_TLS_VERSIONS], 2);
    assert_string_equal(px_obs_tls_version_name(PX_OBS_TLS_VERSIONS), "unknown");
    px_obs_cleanup();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(slots_are_stable_and_bounded),
        cmocka_unit_test(histogram_and_workers),
        cmocka_unit_test(reasons_round_trip),
        cmocka_unit_test(tls_failures_by_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
