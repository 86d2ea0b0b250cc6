/* File helpers shared by the reconciler tests that load manifest folders:
 * a temp folder per test, files written into it, fixtures copied in, and
 * one load of it. A failure fails the test (cmocka assertions). */
#ifndef ALBD_TESTS_TEST_FILES_H
#define ALBD_TESTS_TEST_FILES_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "reconciler/filecache.h"
#include "reconciler/load.h"
#include "reconciler/rc.h"

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

/* The loads' clock (rc_load_opts.realtime). Until tf_settle() is first
 * called it is the real one; from then on it stands still at a time when
 * every file written before tf_settle() had been quiet for
 * RC_FID_SETTLE_NS, and every file written or changed after it had not. So
 * a test's "read within the settle window" holds however slowly the
 * machine runs, and no test waits out the window. */
static bool tf_frozen;
static struct timespec tf_now;

static inline void tf_clock(struct timespec *now)
{
    if (tf_frozen)
        *now = tf_now;
    else
        clock_gettime(CLOCK_REALTIME, now);
}

/* Everything written so far is settled for the following loads, and
 * anything written from now on is not (until the next call). The short
 * sleep only has to outlast one file timestamp tick (at most 10 ms), so
 * that a later write's timestamp is past the frozen window; sleeping
 * longer changes nothing. */
static inline void tf_settle(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    long long ns = (long long)t.tv_sec * 1000000000LL + t.tv_nsec + RC_FID_SETTLE_NS + 1000000LL;
    tf_now.tv_sec = (time_t)(ns / 1000000000LL);
    tf_now.tv_nsec = (long)(ns % 1000000000LL);
    tf_frozen = true;
    usleep(30000);
}

/* One load of a manifest folder, as the agent does it (containment on),
 * and what it says. */
struct tf_result {
    int rc;
    struct rc_model *m;
    struct rc_status st;
};

/* Loads dir with prev as the running model and the watcher's changes (may
 * be NULL). errs (rc_errs_init'ed) receives the problems; NULL: they are
 * printed when the load is not clean, then dropped. */
static inline struct tf_result tf_load(const char *dir, const struct rc_model *prev,
                                       const struct rc_changes *changes, struct rc_errs *errs)
{
    struct tf_result r = {0};
    struct rc_errs own;
    rc_errs_init(&own);
    rc_status_init(&r.st);
    struct rc_load_opts o = {
        .now = time(NULL), .prev = prev, .changes = changes, .realtime = tf_clock};
    r.rc = rc_load_dir_ex(dir, &o, &r.m, errs ? errs : &own, &r.st);
    if (errs == NULL && r.rc != 0)
        rc_errs_print(&own, stderr);
    rc_errs_cleanup(&own);
    return r;
}

static inline void tf_done(struct tf_result *r)
{
    rc_model_unref(r->m);
    rc_status_cleanup(&r->st);
}

#endif
