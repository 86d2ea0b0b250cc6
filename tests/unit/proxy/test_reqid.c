/* proxy/reqid.c: request IDs made, kept, replaced and echoed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/reqid.h"

static void new_ids_are_unique_and_name_the_worker(void **state)
{
    (void)state;
    char a[PX_REQID_SIZE], b[PX_REQID_SIZE], c[PX_REQID_SIZE];
    size_t la = px_reqid_new(a, 3), lb = px_reqid_new(b, 3), lc = px_reqid_new(c, 7);
    assert_int_equal(la, strlen(a));
    assert_true(lb > 0 && lc > 0);
    assert_string_not_equal(a, b);
    /* The same per-process prefix, then the worker, then a counter. */
    assert_int_equal(strchr(a, '-') - a, 16);
    assert_memory_equal(a, c, 17);
    assert_non_null(strstr(a, "-3-"));
    assert_non_null(strstr(c, "-7-"));
    assert_true(px_reqid_valid(a, la));
    /* The counter is lowercase hex, one more per ID on this thread; the
     * worker is hex too. */
    unsigned long long na = strtoull(strrchr(a, '-') + 1, NULL, 16);
    unsigned long long nb = strtoull(strrchr(b, '-') + 1, NULL, 16);
    assert_int_equal(nb, na + 1);
    assert_int_equal(strspn(strrchr(a, '-') + 1, "0123456789abcdef"), strlen(strrchr(a, '-') + 1));
    char d[PX_REQID_SIZE];
    size_t ld = px_reqid_new(d, 255);
    assert_int_equal(ld, strlen(d));
    assert_non_null(strstr(d, "-ff-"));
}

static void validity(void **state)
{
    (void)state;
    assert_true(px_reqid_valid("abc-123", 7));
    assert_false(px_reqid_valid("", 0));
    assert_false(px_reqid_valid("a b", 3));
    assert_false(px_reqid_valid("a\x7f", 2));
    char longer[PX_REQID_CLIENT_MAX + 2];
    memset(longer, 'x', sizeof longer);
    assert_true(px_reqid_valid(longer, PX_REQID_CLIENT_MAX));
    assert_false(px_reqid_valid(longer, PX_REQID_CLIENT_MAX + 1));
}

static struct px_hdr H(const char *n, const char *v) {
    return (struct px_hdr){n, strlen(n), v, strlen(v)};
}

static void
apply_replaces_or_keeps(void **state)
{
    (void)state;
    char id[PX_REQID_SIZE];
    struct px_hdr h[PX_HDR_MAX];
    h[0] = H("Host", "a");
    h[1] = H("x-request-id", "client-1");
    h[2] = H("X-Request-Id", "client-2");
    size_t n = px_reqid_apply(h, 3, false, 1, id);
    assert_int_equal(n, 2); /* both client values gone, albd's added */
    assert_string_equal(h[1].name, "X-Request-Id");
    assert_string_equal(h[1].value, id);
    assert_string_not_equal(id, "client-1");

    h[0] = H("Host", "a");
    h[1] = H("x-request-id", "bad value");
    h[2] = H("X-Request-Id", "client-2");
    n = px_reqid_apply(h, 3, true, 1, id);
    assert_int_equal(n, 2);
    assert_string_equal(id, "client-2"); /* the first valid one, when trusted */
    assert_memory_equal(h[1].value, "client-2", 8);

    h[0] = H("Host", "a");
    n = px_reqid_apply(h, 1, true, 1, id);
    assert_int_equal(n, 2); /* none sent: one made even when trusting */
    assert_true(px_reqid_valid(id, strlen(id)));
}

static void echo_goes_before_the_empty_line(void **state)
{
    (void)state;
    struct px_buf b;
    px_buf_init(&b, 4096);
    assert_int_equal(px_buf_puts(&b, "HTTP/1.1 200 OK\r\nA: b\r\n\r\n"), 0);
    assert_int_equal(px_reqid_echo_h1(&b, "id-1"), 0);
    assert_int_equal(b.len, strlen("HTTP/1.1 200 OK\r\nA: b\r\nX-Request-Id: id-1\r\n\r\n"));
    assert_memory_equal(b.data, "HTTP/1.1 200 OK\r\nA: b\r\nX-Request-Id: id-1\r\n\r\n", b.len);
    px_buf_reset(&b);
    assert_int_equal(px_buf_puts(&b, "HTTP/1.1 200 OK\r\n"), 0);
    assert_int_equal(px_reqid_echo_h1(&b, "id-1"), -1); /* not a complete head */
    px_buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(new_ids_are_unique_and_name_the_worker),
        cmocka_unit_test(validity),
        cmocka_unit_test(apply_replaces_or_keeps),
        cmocka_unit_test(echo_goes_before_the_empty_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
