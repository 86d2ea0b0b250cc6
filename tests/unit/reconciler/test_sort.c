/* rc_sort_runs (sort.h): sorts like qsort, stably, whatever the runs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "reconciler/sort.h"

struct item {
    int key, seq;
};

static int by_key(const void *a, const void *b)
{
    const struct item *x = a, *y = b;
    return (x->key > y->key) - (x->key < y->key);
}

static void check_sorted_and_stable(const struct item *v, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        assert_true(v[i - 1].key <= v[i].key);
        if (v[i - 1].key == v[i].key)
            assert_true(v[i - 1].seq < v[i].seq); /* equal keys keep their order */
    }
}

static void sorts_any_shape(void **state)
{
    (void)state;
    enum { N = 5000 };
    struct item *v = malloc(N * sizeof(*v));
    assert_non_null(v);
    unsigned seed = 12345;
    /* runs = 1 (sorted), 2, 3 (odd), 7, many short (the qsort path), and
     * descending (every element its own run). */
    size_t shapes[] = {1, 2, 3, 7, 40, 1000, N};
    for (size_t s = 0; s < sizeof(shapes) / sizeof(*shapes); s++) {
        size_t runs = shapes[s], len = (N + runs - 1) / runs;
        int base = 0;
        for (size_t i = 0; i < N; i++) {
            if (i % len == 0) { /* a new ascending run from a random start */
                seed = seed * 1103515245u + 12345u;
                base = (int)((seed >> 8) % 50);
            }
            int key = runs == N ? (int)(N - i) / 3 : base + (int)(i % len) / 4;
            v[i] = (struct item){.key = key, .seq = (int)i};
        }
        assert_int_equal(rc_sort_runs(v, N, sizeof(*v), by_key), 0);
        if (runs <= 64) /* merged, not handed to qsort: stable */
            check_sorted_and_stable(v, N);
        else
            for (size_t i = 1; i < N; i++)
                assert_true(v[i - 1].key <= v[i].key);
    }
    free(v);
}

static void tiny_inputs(void **state)
{
    (void)state;
    struct item v[2] = {{2, 0}, {1, 1}};
    assert_int_equal(rc_sort_runs(v, 0, sizeof(*v), by_key), 0);
    assert_int_equal(rc_sort_runs(v, 1, sizeof(*v), by_key), 0);
    assert_int_equal(v[0].key, 2);
    assert_int_equal(rc_sort_runs(v, 2, sizeof(*v), by_key), 0);
    assert_int_equal(v[0].key, 1);
    assert_int_equal(v[1].key, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sorts_any_shape),
        cmocka_unit_test(tiny_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
