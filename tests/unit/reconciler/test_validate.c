/* Data-driven invalid manifests: every tests/data/invalid/<case>/ holds
 * manifest files and expected.txt, the exact error lines (file paths
 * relative to the case folder); an optional now.txt gives the time used for
 * certificate validity. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "reconciler/rc.h"

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *buf = calloc(1, 1 << 20);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Formats every entry with the case folder stripped from file names. */
static char *actual_text(const struct rc_errs *errs, const char *dir)
{
    size_t cap = 1 << 16, n = 0;
    char *out = calloc(1, cap);
    assert_non_null(out);
    char prefix[1024];
    snprintf(prefix, sizeof(prefix), "%s/", dir);
    for (size_t i = 0; i < errs->n; i++) {
        char line[2048];
        rc_err_format(&errs->v[i], line, sizeof(line));
        char *p;
        while ((p = strstr(line, prefix)) != NULL)
            memmove(p, p + strlen(prefix), strlen(p + strlen(prefix)) + 1);
        n += (size_t)snprintf(out + n, cap - n, "%s\n", line);
    }
    return out;
}

static int run_case(const char *dir)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/expected.txt", dir);
    char *expected = read_text(path);
    if (expected == NULL) {
        fprintf(stderr, "%s: no expected.txt\n", dir);
        return 1;
    }
    snprintf(path, sizeof(path), "%s/now.txt", dir);
    char *now_text = read_text(path);
    time_t now = now_text ? (time_t)atoll(now_text) : time(NULL);
    free(now_text);

    struct rc_errs errs;
    rc_errs_init(&errs);
    struct rc_model *m = NULL;
    int rc = rc_load_dir(dir, now, &m, &errs);
    char *actual = actual_text(&errs, dir);
    int failed = 0;
    if (rc != -1 || m != NULL) {
        fprintf(stderr, "%s: expected rc_load_dir to fail\n", dir);
        failed = 1;
    }
    if (strcmp(actual, expected) != 0) {
        fprintf(stderr, "%s: errors differ\n--- expected\n%s--- actual\n%s", dir, expected, actual);
        failed = 1;
    }
    rc_model_unref(m);
    rc_errs_cleanup(&errs);
    free(actual);
    free(expected);
    return failed;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_invalid_cases(void **state)
{
    const char *root = ALBD_TEST_DATA "/invalid";
    DIR *d = opendir(root);
    assert_non_null(d);
    char *names[256];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 256)
        if (e->d_name[0] != '.')
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof(*names), name_cmp);
    assert_true(n >= 18);
    int failures = 0;
    for (size_t i = 0; i < n; i++) {
        char dir[1024];
        snprintf(dir, sizeof(dir), "%s/%s", root, names[i]);
        failures += run_case(dir);
        free(names[i]);
    }
    assert_int_equal(failures, 0);
}

/* The private key never appears in any message, even when it is wrong. */
static void test_no_secret_in_messages(void **state)
{
    char *key = read_text(ALBD_TEST_DATA "/certs/test-only-other.key");
    assert_non_null(key);
    const char *dirs[] = {ALBD_TEST_DATA "/invalid/key-mismatch", ALBD_TEST_DATA "/invalid/inline-key"};
    for (size_t k = 0; k < 2; k++) {
        struct rc_errs errs;
        rc_errs_init(&errs);
        struct rc_model *m = NULL;
        assert_int_equal(rc_load_dir(dirs[k], time(NULL), &m, &errs), -1);
        assert_true(errs.n > 0);
        for (size_t i = 0; i < errs.n; i++) {
            char line[2048];
            rc_err_format(&errs.v[i], line, sizeof(line));
            assert_null(strstr(line, "BEGIN"));
            assert_null(strstr(line, "MIIE"));
            /* a line of the key's base64 body */
            char body[40];
            const char *nl = strchr(key, '\n');
            snprintf(body, sizeof(body), "%.32s", nl + 1);
            assert_null(strstr(line, body));
        }
        rc_errs_cleanup(&errs);
    }
    free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invalid_cases),
        cmocka_unit_test(test_no_secret_in_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
