/* proxy/buf.c: appends, the size limit, and appends whose source lies
 * inside the buffer itself (the storage may move while the bytes are
 * copied). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/buf.h"

static void appends_grow_up_to_the_limit(void **state)
{
    (void)state;
    struct px_buf b;
    px_buf_init(&b, 2048);
    assert_null(b.data);
    assert_int_equal(px_buf_append(&b, "", 0), 0);
    assert_null(b.data); /* nothing allocated for an empty append */
    assert_int_equal(px_buf_puts(&b, "abc"), 0);
    assert_int_equal(px_buf_num(&b, 255, 1), 0);
    assert_int_equal(px_buf_num(&b, 0, 0), 0);
    assert_int_equal(b.len, 6);
    assert_memory_equal(b.data, "abcff0", 6);
    char big[2048];
    memset(big, 'x', sizeof big);
    /* Past the limit: refused, and the buffer is unchanged. */
    assert_int_equal(px_buf_append(&b, big, sizeof big - 5), -ENOBUFS);
    assert_int_equal(b.len, 6);
    assert_memory_equal(b.data, "abcff0", 6);
    assert_int_equal(px_buf_append(&b, big, sizeof big - 6), 0);
    assert_int_equal(b.len, 2048);
    assert_int_equal(px_buf_append(&b, "y", 1), -ENOBUFS);
    px_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(px_buf_puts(&b, "again"), 0);
    assert_memory_equal(b.data, "again", 5);
    px_buf_cleanup(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
}

/* Appending the buffer's own bytes when that makes the storage grow: the
 * bytes appended are the old contents (ASan would see a read of the freed
 * block if the source pointer were used after the move). */
static void self_append_survives_a_move(void **state)
{
    (void)state;
    struct px_buf b;
    px_buf_init(&b, 1 << 20);
    char v[700];
    for (size_t i = 0; i < sizeof v; i++)
        v[i] = (char)('a' + i % 26);
    assert_int_equal(px_buf_append(&b, v, sizeof v), 0);
    size_t cap = b.cap;
    assert_int_equal(cap, 1024);
    /* The whole buffer onto itself: 1400 bytes need a new block. */
    assert_int_equal(px_buf_append(&b, b.data, b.len), 0);
    assert_true(b.cap > cap);
    assert_int_equal(b.len, 2 * sizeof v);
    assert_memory_equal(b.data, v, sizeof v);
    assert_memory_equal(b.data + sizeof v, v, sizeof v);
    /* A piece from the middle, again across a growth. */
    while (b.len + 100 <= b.cap)
        assert_int_equal(px_buf_append(&b, "-", 1), 0);
    cap = b.cap;
    assert_int_equal(px_buf_append(&b, b.data + 10, 200), 0);
    assert_true(b.cap > cap);
    assert_memory_equal(b.data + b.len - 200, v + 10, 200);
    px_buf_cleanup(&b);
}

/* The way HTTP/2 joins cookie fields: each value, held in the buffer,
 * appended after "; " to the end of the same buffer. */
static void joining_fields_held_in_the_buffer(void **state)
{
    (void)state;
    struct px_buf b;
    px_buf_init(&b, 1 << 20);
    char c1[900], c2[900];
    memset(c1, '1', sizeof c1);
    memset(c2, '2', sizeof c2);
    assert_int_equal(px_buf_append(&b, c1, sizeof c1), 0);
    assert_int_equal(px_buf_append(&b, c2, sizeof c2), 0);
    size_t joined = b.len;
    assert_int_equal(px_buf_append(&b, b.data, sizeof c1), 0);
    assert_int_equal(px_buf_append(&b, "; ", 2), 0);
    assert_int_equal(px_buf_append(&b, b.data + sizeof c1, sizeof c2), 0);
    assert_int_equal(b.len - joined, sizeof c1 + 2 + sizeof c2);
    assert_memory_equal(b.data + joined, c1, sizeof c1);
    assert_memory_equal(b.data + joined + sizeof c1, "; ", 2);
    assert_memory_equal(b.data + joined + sizeof c1 + 2, c2, sizeof c2);
    /* A self-append over the limit fails and changes nothing. */
    struct px_buf s;
    px_buf_init(&s, 1500);
    assert_int_equal(px_buf_append(&s, c1, sizeof c1), 0);
    assert_int_equal(px_buf_append(&s, s.data, s.len), -ENOBUFS);
    assert_int_equal(s.len, sizeof c1);
    assert_memory_equal(s.data, c1, sizeof c1);
    px_buf_cleanup(&s);
    px_buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(appends_grow_up_to_the_limit),
        cmocka_unit_test(self_append_survives_a_move),
        cmocka_unit_test(joining_fields_held_in_the_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
