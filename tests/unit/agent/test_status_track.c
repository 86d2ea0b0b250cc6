/* agent/status_track.c: observedGeneration and lastTransitionTime across
 * reloads, records moved from one reconcile's table to the next. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "agent/status_track.h"

static const char D1[] = "1111111111111111111111111111111111111111111111111111111111111111";
static const char D2[] = "2222222222222222222222222222222222222222222222222222222222222222";

static void test_generation_follows_the_digest(void **state)
{
    (void)state;
    struct ag_track *t1 = ag_track_new(4);
    assert_non_null(t1);
    struct ag_track_entry *e = ag_track_carry(t1, NULL, "Certificate/a", D1);
    assert_non_null(e);
    assert_int_equal(ag_track_generation(e), 1);

    /* The next reconcile, same digest: the record moves, same generation. */
    struct ag_track *t2 = ag_track_new(4);
    struct ag_track_entry *e2 = ag_track_carry(t2, t1, "Certificate/a", D1);
    assert_ptr_equal(e2, e);
    assert_int_equal(ag_track_generation(e2), 1);
    assert_null(ag_track_get(t1, "Certificate/a"));
    assert_int_equal(ag_track_count(t1), 0);
    assert_ptr_equal(ag_track_get(t2, "Certificate/a"), e2);
    ag_track_free(t1);

    /* Then a changed spec: one generation up, once. */
    struct ag_track *t3 = ag_track_new(4);
    e = ag_track_carry(t3, t2, "Certificate/a", D2);
    assert_int_equal(ag_track_generation(e), 2);
    ag_track_free(t2);
    struct ag_track *t4 = ag_track_new(4);
    e = ag_track_carry(t4, t3, "Certificate/a", D2);
    assert_int_equal(ag_track_generation(e), 2);
    ag_track_free(t3);

    /* A resource gone for one reconcile comes back as new. */
    struct ag_track *t5 = ag_track_new(4);
    ag_track_free(t4);
    e = ag_track_carry(t5, NULL, "Certificate/a", D2);
    assert_int_equal(ag_track_generation(e), 1);
    ag_track_free(t5);
}

static void test_transition_time_moves_only_on_change(void **state)
{
    (void)state;
    struct ag_track *t = ag_track_new(1);
    struct ag_track_entry *e = ag_track_carry(t, NULL, "Listener/web", D1);
    assert_int_equal(ag_track_condition(e, AG_COND_READY, "False", 100), 100);
    assert_int_equal(ag_track_condition(e, AG_COND_READY, "False", 200), 100);
    assert_int_equal(ag_track_condition(e, AG_COND_READY, "True", 300), 300);
    assert_int_equal(ag_track_condition(e, AG_COND_READY, "True", 400), 300);
    /* Each type is its own. */
    assert_int_equal(ag_track_condition(e, AG_COND_ACCEPTED, "True", 500), 500);
    assert_int_equal(ag_track_condition(e, AG_COND_READY, "True", 600), 300);
    assert_int_equal(ag_track_condition(e, AG_COND_DEGRADED, "Unknown", 700), 700);
    assert_int_equal(ag_track_condition(e, AG_COND_DEGRADED, "False", 800), 800);
    /* A type it does not know is not recorded. */
    assert_int_equal(ag_track_condition(e, ag_cond_type_of("Healthy"), "True", 900), 900);
    assert_int_equal(ag_track_condition(e, ag_cond_type_of("Healthy"), "True", 950), 950);
    assert_int_equal(ag_cond_type_of("Programmed"), AG_COND_PROGRAMMED);
    /* Times travel with the record to the next reconcile's table. */
    struct ag_track *t2 = ag_track_new(1);
    e = ag_track_carry(t2, t, "Listener/web", D1);
    assert_int_equal(ag_track_condition(e, AG_COND_READY, "True", 1000), 300);
    ag_track_free(t);
    ag_track_free(t2);
}

static void test_a_key_listed_twice_is_one_record(void **state)
{
    (void)state;
    struct ag_track *t = ag_track_new(2);
    struct ag_track_entry *a = ag_track_carry(t, NULL, "ServerGroup/g", D1);
    struct ag_track_entry *b = ag_track_carry(t, NULL, "ServerGroup/g", D1);
    assert_ptr_equal(a, b);
    assert_int_equal(ag_track_count(t), 1);
    assert_int_equal(ag_track_generation(b), 1);
    ag_track_free(t);
}

/* 10,000 records through a table sized for none (it grows), then half of
 * them moved to the next table: the other half is still found in the old
 * one past the slots the moves left, and freeing both frees each record
 * once (ASan would see a double free or a leak). */
static void test_ten_thousand_records(void **state)
{
    (void)state;
    enum { N = 10000 };
    char key[64];
    struct ag_track *t = ag_track_new(0);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "Certificate/h%d", i);
        struct ag_track_entry *e = ag_track_carry(t, NULL, key, D1);
        assert_non_null(e);
        ag_track_condition(e, AG_COND_READY, "True", i);
    }
    assert_int_equal(ag_track_count(t), N);
    struct ag_track *t2 = ag_track_new(N);
    for (int i = 0; i < N; i += 2) {
        snprintf(key, sizeof key, "Certificate/h%d", i);
        struct ag_track_entry *e = ag_track_carry(t2, t, key, i % 4 ? D1 : D2);
        assert_int_equal(ag_track_generation(e), i % 4 ? 1 : 2);
        assert_int_equal(ag_track_condition(e, AG_COND_READY, "True", N + i), i);
    }
    assert_int_equal(ag_track_count(t), N / 2);
    assert_int_equal(ag_track_count(t2), N / 2);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "Certificate/h%d", i);
        struct ag_track_entry *old = ag_track_get(t, key), *now = ag_track_get(t2, key);
        if (i % 2) {
            assert_non_null(old);
            assert_null(now);
            assert_int_equal(ag_track_condition(old, AG_COND_READY, "True", 3 * N), i);
        } else {
            assert_null(old);
            assert_non_null(now);
        }
    }
    assert_null(ag_track_get(t2, "Certificate/none"));
    assert_null(ag_track_get(NULL, "Certificate/h1"));
    ag_track_free(t);
    ag_track_free(t2);
    ag_track_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generation_follows_the_digest),
        cmocka_unit_test(test_transition_time_moves_only_on_change),
        cmocka_unit_test(test_a_key_listed_twice_is_one_record),
        cmocka_unit_test(test_ten_thousand_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
