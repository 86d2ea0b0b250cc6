/* Error lists: formatting, sorting and counting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "reconciler/arena.h"
#include "reconciler/err.h"

static void test_format_and_sort(void **state)
{
    struct rc_errs e;
    rc_errs_init(&e);
    struct rc_loc b = {"b.yaml", 3, 7}, a2 = {"a.yaml", 10, 1}, a1 = {"a.yaml", 2, 5};
    rc_errs_add(&e, RC_ERROR, &b, "Listener", "web", "spec.port", "%d is above the maximum %d",
                70000, 65535);
    rc_errs_add(&e, RC_WARNING, &a2, "Certificate", "c", NULL, "expires soon");
    rc_errs_add(&e, RC_ERROR, &a1, NULL, NULL, NULL, "YAML syntax error: %s", "bad");
    rc_errs_add(&e, RC_ERROR, NULL, NULL, NULL, NULL, "out of memory");
    struct rc_loc whole = {"c.yaml", 0, 0};
    rc_errs_add(&e, RC_ERROR, &whole, NULL, NULL, "", "cannot read: %s", "Permission denied");
    assert_int_equal(e.n, 5);
    assert_int_equal(rc_errs_count_errors(&e), 4);
    rc_errs_sort(&e);
    char buf[256];
    const char *want[] = {
        "error: out of memory",
        "a.yaml:2:5: error: YAML syntax error: bad",
        "a.yaml:10:1: warning: expires soon (Certificate/c)",
        "b.yaml:3:7: error: spec.port: 70000 is above the maximum 65535 (Listener/web)",
        "c.yaml: error: cannot read: Permission denied",
    };
    for (size_t i = 0; i < 5; i++) {
        rc_err_format(&e.v[i], buf, sizeof(buf));
        assert_string_equal(buf, want[i]);
    }
    rc_err_format(&e.v[3], buf, 12); /* truncates, stays terminated */
    assert_string_equal(buf, "b.yaml:3:7:");
    FILE *f = tmpfile();
    assert_non_null(f);
    rc_errs_print(&e, f);
    assert_int_equal(ftell(f) > 100, 1);
    fclose(f);
    rc_errs_cleanup(&e);
    assert_int_equal(e.n, 0);
    assert_null(e.v);
}

/* Each entry is one block (message, then its other strings): a message
 * longer than the first formatting buffer is whole, every part is a copy
 * the caller may free, and room reserved up front holds the entries
 * without moving them. */
static void test_entries_own_their_strings(void **state)
{
    (void)state;
    struct rc_errs e;
    rc_errs_init(&e);
    rc_errs_reserve(&e, 100);
    assert_true(e.cap >= 100);
    struct rc_err *first = e.v;
    char *file = strdup("certs/a.yaml"), *kind = strdup("Certificate"), *name = strdup("a"),
         *path = strdup("spec.source.files.certificate");
    char long_text[1000];
    memset(long_text, 'x', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    struct rc_loc loc = {file, 4, 2};
    for (int i = 0; i < 100; i++)
        rc_errs_add(&e, RC_WARNING, &loc, kind, name, path, "%d %s", i,
                    i == 7 ? long_text : "short");
    assert_ptr_equal(e.v, first);
    free(file);
    free(kind);
    free(name);
    free(path);
    assert_int_equal(e.n, 100);
    assert_int_equal(strlen(e.v[7].msg), 2 + sizeof long_text - 1);
    assert_int_equal(strncmp(e.v[7].msg, "7 xxx", 5), 0);
    assert_string_equal(e.v[8].msg, "8 short");
    for (size_t i = 0; i < e.n; i++) {
        assert_string_equal(e.v[i].file, "certs/a.yaml");
        assert_string_equal(e.v[i].kind, "Certificate");
        assert_string_equal(e.v[i].name, "a");
        assert_string_equal(e.v[i].path, "spec.source.files.certificate");
    }
    rc_errs_add(&e, RC_NOTE, NULL, NULL, NULL, "", "bare");
    assert_null(e.v[100].file);
    assert_null(e.v[100].kind);
    assert_null(e.v[100].name);
    assert_null(e.v[100].path);
    rc_errs_reserve(&e, 10); /* never shrinks */
    assert_int_equal(e.n, 101);
    rc_errs_cleanup(&e);
}

/* Manifest text quoted in a message (a key, a value, a file name) cannot
 * start a new log line or drive the terminal: every control character is
 * escaped, and the entry stays one line. */
/* Thousands of entries (a reload's expiry warnings) and one larger than
 * the largest block: every entry keeps its own strings, none overlaps the
 * next, and a list moved by value (the agent keeps the last reload's)
 * still cleans up whole (under ASan: no leak, no overflow). */
static void test_many_entries_span_blocks(void **state)
{
    (void)state;
    struct rc_errs e;
    rc_errs_init(&e);
    enum { N = 20000 };
    size_t big = (2u << 20) + 3;
    char *huge = malloc(big + 1);
    assert_non_null(huge);
    memset(huge, 'y', big);
    huge[big] = '\0';
    for (int i = 0; i < N; i++) {
        char file[64], name[32];
        snprintf(file, sizeof file, "certs/h%d.yaml", i);
        snprintf(name, sizeof name, "h%d", i);
        struct rc_loc loc = {file, i + 1, 1};
        rc_errs_add(&e, RC_WARNING, &loc, "Certificate", name, NULL,
                    "certificate expires in %d days (%s)", i % 30,
                    i == N / 2 ? huge : "not after 2027-01-01T00:00:00Z");
    }
    free(huge);
    struct rc_errs moved = e;
    rc_errs_init(&e);
    assert_int_equal(moved.n, N);
    for (int i = 0; i < N; i++) {
        char want[64];
        snprintf(want, sizeof want, "certs/h%d.yaml", i);
        assert_string_equal(moved.v[i].file, want);
        snprintf(want, sizeof want, "h%d", i);
        assert_string_equal(moved.v[i].name, want);
        assert_string_equal(moved.v[i].kind, "Certificate");
        assert_null(moved.v[i].path);
        assert_int_equal(moved.v[i].line, i + 1);
        if (i == N / 2) {
            assert_int_equal(strlen(moved.v[i].msg),
                             strlen("certificate expires in 0 days ()") + big + (i % 30 >= 10));
        } else {
            snprintf(want, sizeof want,
                     "certificate expires in %d days (not after "
                     "2027-01-01T00:00:00Z)",
                     i % 30);
            assert_string_equal(moved.v[i].msg, want);
        }
    }
    rc_errs_cleanup(&moved);
    assert_int_equal(moved.n, 0);
    rc_errs_cleanup(&e); /* an empty list cleans up too */
}

static void test_format_escapes_control_characters(void **state)
{
    struct rc_errs e;
    rc_errs_init(&e);
    struct rc_loc loc = {"a\nb.yaml", 2, 3};
    rc_errs_add(&e, RC_ERROR, &loc, "Listener", "x\ty", "spec.k\re", "\"%s\" is not one of a, b",
                "v\n2026-01-01 INFO forged\x1b[31m\x7f\xc2\x85\xc3\xa9");
    char buf[512];
    rc_err_format(&e.v[0], buf, sizeof(buf));
    assert_string_equal(buf, "a\\nb.yaml:2:3: error: spec.k\\re: \"v\\n2026-01-01 INFO "
                             "forged\\x1b[31m\\x7f\\u0085\xc3\xa9\" is not one of a, b "
                             "(Listener/x\\ty)");
    for (const char *p = buf; *p; p++)
        assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
    /* Truncation never leaves half an escape or an unterminated buffer. */
    for (size_t size = 1; size < 40; size++) {
        char small[40];
        memset(small, 'Z', sizeof(small));
        rc_err_format(&e.v[0], small, size);
        assert_true(strlen(small) < size);
        size_t n = strlen(small);
        assert_false(n > 0 && small[n - 1] == '\\');
    }
    rc_errs_cleanup(&e);
}

static void test_arena(void **state)
{
    struct rc_arena *a = rc_arena_new();
    assert_non_null(a);
    char *s = rc_arena_strdup(a, "hello");
    assert_string_equal(s, "hello");
    assert_string_equal(rc_arena_strndup(a, "hello", 2), "he");
    assert_null(rc_arena_strdup(a, NULL));
    /* A secret copy is a copy like any other (wiped when a is freed). */
    assert_string_equal(rc_arena_strndup_secret(a, "PRIVATE KEY bytes", 11), "PRIVATE KEY");
    assert_null(rc_arena_strndup_secret(a, NULL, 3));
    for (int i = 0; i < 1000; i++) {
        unsigned char *p = rc_arena_alloc(a, (size_t)(i * 13 % 9000));
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
        if (i * 13 % 9000)
            assert_int_equal(p[0], 0);
    }
    assert_string_equal(s, "hello"); /* earlier allocations untouched */
    rc_arena_free(a);
    rc_arena_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_and_sort),
        cmocka_unit_test(test_entries_own_their_strings),
        cmocka_unit_test(test_many_entries_span_blocks),
        cmocka_unit_test(test_format_escapes_control_characters),
        cmocka_unit_test(test_arena),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
