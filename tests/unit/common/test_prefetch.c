/* common/prefetch.c: reading ahead counts the regular files it advised
 * (skipping NULL entries, missing files and folders), stops when asked,
 * and does bring a file's pages into the page cache: a file evicted with
 * POSIX_FADV_DONTNEED is resident again (mincore) once read ahead, where
 * the file system can evict at all (not tmpfs). */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/prefetch.h"

#define FILE_SIZE (256 * 1024)

/* A file of FILE_SIZE bytes in the working folder (the build tree, on a
 * real file system), synced so that its pages can be evicted. */
static void make_file(char *path)
{
    strcpy(path, "prefetch-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    char *buf = malloc(FILE_SIZE);
    assert_non_null(buf);
    memset(buf, 'x', FILE_SIZE);
    assert_int_equal(write(fd, buf, FILE_SIZE), FILE_SIZE);
    free(buf);
    assert_int_equal(fsync(fd), 0);
    close(fd);
}

/* How many of the file's pages are in the page cache. */
static size_t resident_pages(const char *path)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    void *m = mmap(NULL, FILE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
    assert_true(m != MAP_FAILED);
    long page = sysconf(_SC_PAGESIZE);
    size_t n = FILE_SIZE / (size_t)page, in = 0;
    unsigned char vec[FILE_SIZE / 4096];
    assert_true(n <= sizeof vec);
    assert_int_equal(mincore(m, FILE_SIZE, vec), 0);
    for (size_t i = 0; i < n; i++)
        in += vec[i] & 1;
    munmap(m, FILE_SIZE);
    close(fd);
    return in;
}

static void evict(const char *path)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    close(fd);
}

static void counts_regular_files(void **state)
{
    (void)state;
    char a[32], b[32];
    make_file(a);
    make_file(b);
    const char *paths[] = {a, NULL, "prefetch-no-such-file", ".", b};
    struct cm_prefetch *p = cm_prefetch_start(paths, 5);
    assert_non_null(p);
    /* Ending waits for the thread: it may have stopped early, never
     * counted more than the two files. */
    size_t n = cm_prefetch_end(p);
    assert_true(n <= 2);
    p = cm_prefetch_start(paths, 5);
    assert_non_null(p);
    struct timespec nap = {0, 200 * 1000 * 1000};
    nanosleep(&nap, NULL); /* five paths: long done */
    assert_int_equal(cm_prefetch_end(p), 2);
    assert_null(cm_prefetch_start(paths, 0));
    assert_int_equal(cm_prefetch_end(NULL), 0);
    unlink(a);
    unlink(b);
}

static void brings_pages_in(void **state)
{
    (void)state;
    char a[32];
    make_file(a);
    evict(a);
    size_t total = FILE_SIZE / (size_t)sysconf(_SC_PAGESIZE);
    if (resident_pages(a) == total) {
        /* tmpfs and the like keep every page: nothing to show here. */
        fprintf(stderr, "the working folder's file system does not evict pages: skipped\n");
        unlink(a);
        skip();
    }
    const char *paths[] = {a};
    struct cm_prefetch *p = cm_prefetch_start(paths, 1);
    assert_non_null(p);
    size_t in = 0;
    for (int i = 0; i < 200 && (in = resident_pages(a)) < total; i++) {
        struct timespec nap = {0, 10 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    assert_int_equal(cm_prefetch_end(p), 1);
    assert_int_equal(in, total);
    unlink(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counts_regular_files),
        cmocka_unit_test(brings_pages_in),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
