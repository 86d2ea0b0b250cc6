/* proxy/mempool.c: blocks are reused per size class, realloc keeps the
 * content, calloc zeroes, large blocks bypass the cache; trim empties the
 * cache; captured blocks are page-aligned and give back only what they
 * may; the per-worker buffer pool counts and caps what it keeps. */
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
    void *b = px_mempool_alloc(p, 110); /* same 112-byte class */
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

/* Sizes are rounded up by less than a quarter: nghttp2's 2928-byte
 * session takes a 3072-byte block, not a 4096-byte one. A block's class is
 * visible through realloc: growing within it keeps the block. */
static void blocks_are_rounded_up_by_less_than_a_quarter(void **state)
{
    struct px_mempool *p = px_mempool_new();
    void *a = px_mempool_alloc(p, 2928);
    assert_ptr_equal(px_mempool_realloc(p, a, 3072), a);
    void *b = px_mempool_realloc(p, a, 3073); /* past its class: moves */
    assert_non_null(b);
    assert_ptr_not_equal(b, a);
    void *c = px_mempool_alloc(p, 65);
    assert_ptr_equal(px_mempool_realloc(p, c, 80), c);
    void *d = px_mempool_realloc(p, c, 81);
    assert_ptr_not_equal(d, c);
    px_mempool_release(p, b);
    px_mempool_release(p, d);
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

static void trim_frees_the_cache_and_blocks_in_use_stay(void **state)
{
    struct px_mempool *p = px_mempool_new();
    char *kept = px_mempool_alloc(p, 100);
    strcpy(kept, "still mine");
    void *a = px_mempool_alloc(p, 100);
    px_mempool_release(p, a);
    px_mempool_trim(p);
    void *b = px_mempool_alloc(p, 100); /* the cache is empty: a new block */
    assert_non_null(b);
    assert_string_equal(kept, "still mine");
    px_mempool_release(p, b);
    px_mempool_release(p, kept);
    px_mempool_free(p); /* ASan: nothing leaked, nothing freed twice */
}

static void captured_blocks_give_back_only_what_they_may(void **state)
{
    struct px_mempool *p = px_mempool_new();
    px_mempool_capture(p, 0, 16394, true);            /* dead between uses */
    px_mempool_capture(p, 1, 4096, false);            /* given back only while all zeros */
    unsigned char *other = px_mempool_alloc(p, 5000); /* not a watched size */
    unsigned char *dead = px_mempool_alloc(p, 16394);
    unsigned char *table = px_mempool_calloc(p, 256, 16);
    unsigned char *again = px_mempool_alloc(p, 16394); /* the slot is taken: an ordinary block */
    px_mempool_capture(p, 0, 0, true);
    px_mempool_capture(p, 1, 0, false);
    assert_non_null(dead);
    assert_non_null(table);
    assert_int_equal((uintptr_t)dead % 4096, 0);
    assert_int_equal((uintptr_t)table % 4096, 0);
    memset(other, 7, 5000);
    memset(dead, 0x5a, 16394);
    memset(again, 0x5a, 16394);
    /* All of the dead block's 5 pages go; the table holds a value: kept. */
    table[100] = 1;
    assert_int_equal(px_mempool_discard_captured(p), 5 * 4096);
    assert_int_equal(table[100], 1);
    assert_int_equal(dead[0], 0);     /* its pages read as zeros again */
    assert_int_equal(again[0], 0x5a); /* not captured: untouched */
    assert_int_equal(other[4999], 7);
    table[100] = 0; /* empty again: its page may go too */
    assert_int_equal(px_mempool_discard_captured(p), 6 * 4096);
    /* Captured blocks are released and reallocated like others. */
    unsigned char *grown = px_mempool_realloc(p, table, 8192);
    assert_non_null(grown);
    assert_int_equal(grown[100], 0);
    assert_int_equal(px_mempool_discard_captured(p), 5 * 4096);
    px_mempool_release(p, dead);
    assert_int_equal(px_mempool_discard_captured(p), 0);
    px_mempool_release(p, grown);
    px_mempool_release(p, again);
    px_mempool_release(p, other);
    px_mempool_free(p);
}

static void the_buffer_pool_counts_and_caps_what_it_keeps(void **state)
{
    struct px_bufpool bp;
    px_bufpool_init(&bp, 16384, 2);
    void *a = px_bufpool_get(&bp), *b = px_bufpool_get(&bp), *c = px_bufpool_get(&bp);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_int_equal(bp.out, 3);
    memset(c, 1, 16384);
    px_bufpool_put(&bp, a);
    px_bufpool_put(&bp, b);
    px_bufpool_put(&bp, c); /* over the cap of 2: freed */
    px_bufpool_put(&bp, NULL);
    assert_int_equal(bp.out, 0);
    assert_int_equal(bp.n_free, 2);
    void *d = px_bufpool_get(&bp); /* the last one kept comes back first */
    assert_ptr_equal(d, b);
    assert_int_equal(bp.out, 1);
    px_bufpool_put(&bp, d);
    px_bufpool_cleanup(&bp);
    assert_int_equal(bp.n_free, 0);
    assert_null(bp.free);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_released_block_is_reused_for_the_same_class),
        cmocka_unit_test(realloc_keeps_the_content_and_calloc_zeroes),
        cmocka_unit_test(blocks_are_rounded_up_by_less_than_a_quarter),
        cmocka_unit_test(many_blocks_come_and_go_without_leaks),
        cmocka_unit_test(trim_frees_the_cache_and_blocks_in_use_stay),
        cmocka_unit_test(captured_blocks_give_back_only_what_they_may),
        cmocka_unit_test(the_buffer_pool_counts_and_caps_what_it_keeps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
