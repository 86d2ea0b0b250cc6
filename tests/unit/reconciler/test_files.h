/* File helpers shared by the reconciler tests that load manifest folders:
 * a temp folder per test, files written into it, fixtures copied in. A
 * failure fails the test (cmocka assertions). */
#ifndef ALBD_TESTS_TEST_FILES_H
#define ALBD_TESTS_TEST_FILES_H

#include <stdio.h>
#include <stdlib.h>

/* The whole file (at most 1 MiB), NUL-terminated, malloc'd. */
static inline char *tf_read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

/* Writes text to dir/name. */
static inline void tf_put(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Copies the file from into dir/name. */
static inline void tf_copy_in(const char *dir, const char *from, const char *name)
{
    char *text = tf_read_all(from, NULL);
    tf_put(dir, name, text);
    free(text);
}

/* dir: a new /tmp/albd-test-<tag>-XXXXXX folder. 0 or -1. */
static inline int tf_mkdtemp(char *dir, size_t size, const char *tag)
{
    snprintf(dir, size, "/tmp/albd-test-%s-XXXXXX", tag);
    return mkdtemp(dir) ? 0 : -1;
}

/* Removes dir and everything in it. 0 or -1. */
static inline int tf_rm_rf(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

#endif
