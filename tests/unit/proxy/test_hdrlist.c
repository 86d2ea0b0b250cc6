/* proxy/hdrlist.c: header fields assembled from the pieces llhttp hands
 * over, with the head-size limit and the field-count limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/hdrlist.h"

static struct px_hdr_ent ents[PX_HDR_MAX];
static struct px_hdr out[PX_HDR_MAX];

static void fields_arrive_in_pieces(void **state)
{
    struct px_buf b;
    px_buf_init(&b, 4096);
    struct px_hdrlist l = {.ents = ents};
    px_hdrlist_reset(&l);
    assert_int_equal(px_hdrlist_add(&l, &b, "Ho", 2, false, 1000), 0);
    assert_int_equal(px_hdrlist_add(&l, &b, "st", 2, false, 1000), 0);
    px_hdrlist_name_done(&l, &b);
    assert_int_equal(px_hdrlist_add(&l, &b, "a.example", 9, true, 1000), 0);
    assert_int_equal(px_hdrlist_add(&l, &b, "X-Empty", 7, false, 1000), 0);
    px_hdrlist_name_done(&l, &b); /* an empty value */
    assert_int_equal(px_hdrlist_get(&l, &b, out), 2);
    assert_int_equal(out[0].name_len, 4);
    assert_memory_equal(out[0].name, "Host", 4);
    assert_int_equal(out[0].value_len, 9);
    assert_memory_equal(out[0].value, "a.example", 9);
    assert_memory_equal(out[1].name, "X-Empty", 7);
    assert_int_equal(out[1].value_len, 0);
    assert_int_equal(l.bytes, 4 + 4 + 9 + 4 + 7);
    px_buf_cleanup(&b);
}

static void limits_and_order_are_enforced(void **state)
{
    struct px_buf b;
    px_buf_init(&b, 4096);
    struct px_hdrlist l = {.ents = ents};
    px_hdrlist_reset(&l);
    /* A value before any name is out of order. */
    assert_int_equal(px_hdrlist_add(&l, &b, "v", 1, true, 1000), -1);
    /* The head limit counts ": " and CRLF too. */
    px_hdrlist_reset(&l);
    assert_int_equal(px_hdrlist_add(&l, &b, "abcdef", 6, false, 10), 0);
    px_hdrlist_name_done(&l, &b);
    assert_int_equal(px_hdrlist_add(&l, &b, "x", 1, true, 10), -1);
    /* At most PX_HDR_MAX fields. */
    px_hdrlist_reset(&l);
    for (int i = 0; i < PX_HDR_MAX; i++) {
        assert_int_equal(px_hdrlist_add(&l, &b, "n", 1, false, 1 << 20), 0);
        px_hdrlist_name_done(&l, &b);
    }
    assert_int_equal(px_hdrlist_add(&l, &b, "n", 1, false, 1 << 20), -1);
    px_buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fields_arrive_in_pieces),
        cmocka_unit_test(limits_and_order_are_enforced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
