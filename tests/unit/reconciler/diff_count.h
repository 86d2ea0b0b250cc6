/* Change counts between exports, for the tests of the change log's exports
 * (test_export, test_reuse). Include after <cmocka.h>. */
#ifndef ALBD_TEST_DIFF_COUNT_H
#define ALBD_TEST_DIFF_COUNT_H

#include <jansson.h>
#include <stddef.h>

#include "reconciler/diff.h"
#include "reconciler/export.h"

/* The changes rc_diff_compute finds between a and b. */
static inline size_t tf_n_changes(const json_t *a, const json_t *b)
{
    struct rc_diff d;
    rc_diff_init(&d);
    assert_int_equal(rc_diff_compute(a, b, &d), 0);
    size_t n = d.n_changes;
    rc_diff_cleanup(&d);
    return n;
}

/* a and b, rc_export_pair's exports of ma and mb, differ in want changes,
 * and so do the two models' whole exports: leaving out what did not
 * change loses no change. Frees a and b. */
static inline void tf_assert_pair_changes(json_t *a, json_t *b, const struct rc_model *ma,
                                          const struct rc_model *mb, size_t want)
{
    json_t *wa = rc_export_model(ma), *wb = rc_export_model(mb);
    assert_int_equal(tf_n_changes(a, b), want);
    assert_int_equal(tf_n_changes(wa, wb), want);
    json_decref(a);
    json_decref(b);
    json_decref(wa);
    json_decref(wb);
}

#endif
