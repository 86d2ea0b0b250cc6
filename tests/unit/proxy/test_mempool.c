/* proxy/mempool.c: blocks are reused per size class, realloc keeps the
 * content, calloc zeroes, large blocks bypass the cache. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/mempool.h"

static void a_released_block_is_reused_for_the_same_class(void **state)
{
    struct px_mempool *p = px_mempool_new();
    assert_non_null(p);
    void *a = px_mempool_alloc(p, 100);
    assert_non_null(a);
    px_mempool_release(p, a);
    void *b = px_mempool_alloc(p, 120); /* same 128-byte class */
    assert_ptr_equal(a, b);
    void *c = px_mempool_alloc(p, 20); /* another class: a new block */
    assert_ptr_not_equal(b, c);
    px_mempool_release(p, b);
    px_mempool_release(p, c);
    px_mempool_free(p);
}

static void realloc_keeps_the_content_and_calloc_zeroes(void **state)
{
    struct px_mempool *p = px_mempool_new();
    unsigned char *a = px_mempool_alloc(p, 30);
    for (int i = 0; i < 30; i++)
        a[i] = (unsigned char)i;
    assert_ptr_equal(px_mempool_realloc(p, a, 32), a); /* still fits its class */
    unsigned char *b = px_mempool_realloc(p, a, 5000); /* grows past every class */
    assert_non_null(b);
    for (int i = 0; i < 30; i++)
        assert_int_equal(b[i], i);
    px_mempool_release(p, b);
    unsigned char *z = px_mempool_alloc(p, 64);
    memset(z, 0xab, 64);
    px_mempool_release(p, z);
    unsigned char *c = px_mempool_calloc(p, 8, 8); /* gets the dirty block back */
    assert_ptr_equal(c, z);
    for (int i = 0; i < 64; i++)
        assert_int_equal(c[i], 0);
    assert_null(px_mempool_calloc(p, SIZE_MAX / 2, 4)); /* overflow refused */
    px_mempool_release(p, c);
    px_mempool_release(p, NULL);
    px_mempool_free(p);
}

static void many_blocks_come_and_go_without_leaks(void **state)
{
    struct px_mempool *p = px_mempool_new();
    void *v[500];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 500; i++) {
            v[i] = px_mempool_alloc(p, (size_t)(i * 37 % 6000) + 1);
            assert_non_null(v[i]);
            memset(v[i], i, (size_t)(i * 37 % 6000) + 1);
        }
        for (int i = 0; i < 500; i++)
            px_mempool_release(p, v[i]);
    }
    px_mempool_free(p); /* ASan: the cache and the overflow were all freed */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_released_block_is_reused_for_the_same_class),
        cmocka_unit_test(realloc_keeps_the_content_and_calloc_zeroes),
        cmocka_unit_test(many_blocks_come_and_go_without_leaks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
