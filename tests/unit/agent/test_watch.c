/* agent/watch.c: when the callback runs after a change. A file renamed
 * into place is complete by construction: the load starts after a few
 * milliseconds, not the debounce. A file written in place, deleted or
 * moved aside (an editor's save: the new file comes next), or a rename
 * followed by a write begun, waits for the debounce (and for its writer to
 * close it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <cmocka.h>

#include "agent/watch.h"

/* Long enough that no test run on a loaded machine mistakes it for the
 * short wait after a rename. */
enum { LONG_DEBOUNCE_MS = 10000 };

struct fixture {
    char dir[64];
    uv_loop_t loop;
    uv_timer_t limit;
    struct ag_watch *w;
    int calls;
    uint64_t started, called_at;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/albd-watch-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    uv_timer_init(&fx->loop, &fx->limit);
    fx->limit.data = fx;
    *state = fx;
    return 0;
}

static void rm_tree(const char *dir)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    ag_watch_close(fx->w);
    uv_close((uv_handle_t *)&fx->limit, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    rm_tree(fx->dir);
    free(fx);
    return 0;
}

static void on_change(struct ag_watch *w, void *arg)
{
    struct fixture *fx = arg;
    if (fx->calls++ == 0)
        fx->called_at = uv_now(&fx->loop);
    uv_stop(&fx->loop);
}

static void on_limit(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static void start(struct fixture *fx, unsigned debounce_ms)
{
    assert_int_equal(ag_watch_start(&fx->loop, fx->dir, debounce_ms, on_change, fx, &fx->w), 0);
}

/* Runs the loop until the callback or limit_ms; returns the calls so far. */
static int run_for(struct fixture *fx, uint64_t limit_ms)
{
    uv_update_time(&fx->loop);
    fx->started = uv_now(&fx->loop);
    uv_timer_start(&fx->limit, on_limit, limit_ms, 0);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    uv_timer_stop(&fx->limit);
    return fx->calls;
}

static void write_file(const struct fixture *fx, const char *name, const char *text)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%s", fx->dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static void rename_in(const struct fixture *fx, const char *from, const char *to)
{
    char a[128], b[128];
    snprintf(a, sizeof a, "%s/%s", fx->dir, from);
    snprintf(b, sizeof b, "%s/%s", fx->dir, to);
    assert_int_equal(rename(a, b), 0);
}

/* Write-then-rename: the callback comes long before the debounce. */
static void test_rename_into_place_loads_at_once(void **state)
{
    struct fixture *fx = *state;
    start(fx, LONG_DEBOUNCE_MS);
    write_file(fx, "a.yaml.tmp", "kind: Instance\n");
    rename_in(fx, "a.yaml.tmp", "a.yaml");
    assert_int_equal(run_for(fx, 2000), 1);
    assert_true(fx->called_at - fx->started < 2000);
}

/* Two renames of one burst (a Certificate, then the Listener naming it):
 * one callback. */
static void test_renames_of_one_burst_load_once(void **state)
{
    struct fixture *fx = *state;
    start(fx, LONG_DEBOUNCE_MS);
    write_file(fx, "c.yaml.tmp", "kind: Certificate\n");
    write_file(fx, "l.yaml.tmp", "kind: Listener\n");
    rename_in(fx, "c.yaml.tmp", "c.yaml");
    rename_in(fx, "l.yaml.tmp", "l.yaml");
    assert_int_equal(run_for(fx, 2000), 1);
    assert_int_equal(run_for(fx, 200), 1); /* no second callback */
}

/* A file deleted keeps the debounce: an editor may be about to write it
 * again (and the delete still loads, after the debounce). */
static void test_delete_waits_for_debounce(void **state)
{
    struct fixture *fx = *state;
    write_file(fx, "a.yaml", "kind: Instance\n");
    start(fx, 600);
    char p[128];
    snprintf(p, sizeof p, "%s/a.yaml", fx->dir);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(run_for(fx, 300), 0);
    assert_int_equal(run_for(fx, 5000), 1);
}

/* vim's save (backupcopy=auto): the file moved aside, then written anew.
 * No load may come between the two, when the file is missing. */
static void test_moved_aside_waits_for_debounce(void **state)
{
    struct fixture *fx = *state;
    write_file(fx, "a.yaml", "kind: Instance\n");
    start(fx, 600);
    rename_in(fx, "a.yaml", "a.yaml~");
    assert_int_equal(run_for(fx, 300), 0);
    write_file(fx, "a.yaml", "kind: ServerGroup\n");
    assert_int_equal(run_for(fx, 5000), 1);
    assert_int_equal(run_for(fx, 200), 1); /* one load, with the new file */
}

/* An in-place save keeps the debounce. */
static void test_in_place_write_waits_for_debounce(void **state)
{
    struct fixture *fx = *state;
    write_file(fx, "a.yaml", "kind: Instance\n");
    start(fx, 600);
    write_file(fx, "a.yaml", "kind: ServerGroup\n");
    assert_int_equal(run_for(fx, 300), 0);
    assert_int_equal(run_for(fx, 5000), 1);
}

/* A rename followed by a write begun: the write decides, the debounce
 * applies (the rename's short wait does not cut the write short). */
static void test_write_after_rename_waits_for_debounce(void **state)
{
    struct fixture *fx = *state;
    start(fx, 600);
    write_file(fx, "c.yaml.tmp", "kind: Certificate\n");
    rename_in(fx, "c.yaml.tmp", "c.yaml");
    write_file(fx, "l.yaml.tmp", "kind: Listener\n");
    assert_int_equal(run_for(fx, 300), 0);
    assert_int_equal(run_for(fx, 5000), 1);
}

/* A file still open for writing when a rename lands: its writer is
 * waited for (up to the 2 s bound), not the rename's short wait. */
static void test_open_writer_holds_a_rename(void **state)
{
    struct fixture *fx = *state;
    start(fx, 50);
    char p[128];
    snprintf(p, sizeof p, "%s/b.yaml", fx->dir);
    FILE *open_one = fopen(p, "w");
    assert_non_null(open_one);
    fputs("kind: Instance\n", open_one);
    assert_int_equal(fflush(open_one), 0); /* IN_MODIFY, not closed */
    write_file(fx, "a.yaml.tmp", "kind: Instance\n");
    rename_in(fx, "a.yaml.tmp", "a.yaml");
    assert_int_equal(run_for(fx, 400), 0);
    assert_int_equal(fclose(open_one), 0);
    assert_int_equal(run_for(fx, 5000), 1);
}

/* What the loader is told: a file renamed into place is a change of the
 * tree by a file's name alone (the list of manifests can be patched); a
 * folder created needs the walk. */
static void test_changes_say_whether_a_folder_came(void **state)
{
    struct fixture *fx = *state;
    start(fx, 50);
    write_file(fx, "a.yaml.tmp", "kind: Instance\n");
    rename_in(fx, "a.yaml.tmp", "a.yaml");
    assert_int_equal(run_for(fx, 5000), 1);
    struct ag_changes ch = {0};
    ag_watch_take_changes(fx->w, &ch);
    assert_false(ch.all);
    assert_true(ch.tree);
    assert_false(ch.dirs);
    ag_changes_clear(&ch);
    char p[128];
    snprintf(p, sizeof p, "%s/sub", fx->dir);
    assert_int_equal(mkdir(p, 0700), 0);
    assert_int_equal(run_for(fx, 5000), 2);
    ag_watch_take_changes(fx->w, &ch);
    assert_true(ch.tree);
    assert_true(ch.dirs);
    ag_changes_clear(&ch);
    free(ch.v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rename_into_place_loads_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_renames_of_one_burst_load_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_waits_for_debounce, setup, teardown),
        cmocka_unit_test_setup_teardown(test_moved_aside_waits_for_debounce, setup, teardown),
        cmocka_unit_test_setup_teardown(test_in_place_write_waits_for_debounce, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_after_rename_waits_for_debounce, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_open_writer_holds_a_rename, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changes_say_whether_a_folder_came, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
