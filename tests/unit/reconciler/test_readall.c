/* Opening the files manifests name: never blocking, only regular files,
 * every read bounded. A FIFO or a device as a certificate path is refused
 * at once with a located error; before, the open of a FIFO waited for a
 * writer forever and the agent loop with it. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "reconciler/err.h"
#include "reconciler/rc.h"
#include "reconciler/readall.h"
#include "test_files.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    alarm(30); /* a blocking open fails the test instead of hanging it */
    return tf_mkdtemp(dir, sizeof(dir), "readall");
}

static int teardown(void **state)
{
    (void)state;
    alarm(0);
    return tf_rm_rf(dir);
}

static void only_regular_files_are_opened(void **state)
{
    (void)state;
    char fifo[512], file[512];
    snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    snprintf(file, sizeof(file), "%s/f.pem", dir);
    tf_put(dir, "f.pem", "bytes");
    struct stat st;
    assert_int_equal(rc_open_regular(fifo, &st), -RC_ENOTREG);
    assert_int_equal(rc_open_regular("/dev/zero", &st), -RC_ENOTREG);
    assert_int_equal(rc_open_regular(dir, &st), -RC_ENOTREG);
    assert_int_equal(rc_open_regular("/nonexistent/x", &st), -ENOENT);
    int fd = rc_open_regular(file, &st);
    assert_true(fd >= 0);
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(rc_read_all(fd, (size_t)st.st_size, 1 << 20, false, &out, &len), 0);
    assert_int_equal(len, 5);
    assert_string_equal(out, "bytes");
    free(out);
    close(fd);
    /* Every read is bounded: past max is -EFBIG, whatever the size hint. */
    fd = rc_open_regular(file, &st);
    assert_int_equal(rc_read_all(fd, 0, 3, true, &out, &len), -EFBIG);
    close(fd);
    assert_non_null(strstr(rc_read_strerror(RC_ENOTREG), "not a regular file"));
}

static void a_fifo_or_device_as_certificate_is_a_located_error(void **state)
{
    (void)state;
    char fifo[512], text[1024];
    snprintf(fifo, sizeof(fifo), "%s/cert.fifo", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    snprintf(text, sizeof(text),
             "apiVersion: albd/v1\nkind: Certificate\nmetadata: {name: site}\nspec:\n"
             "  source:\n    files:\n      certificate: %s\n      privateKey: /dev/zero\n",
             fifo);
    tf_put(dir, "c.yaml", text);
    /* A FIFO named like a manifest is not read either. */
    char mfifo[512];
    snprintf(mfifo, sizeof(mfifo), "%s/m.yaml", dir);
    assert_int_equal(mkfifo(mfifo, 0600), 0);
    struct rc_errs errs;
    rc_errs_init(&errs);
    struct rc_model *m = NULL;
    time_t t0 = time(NULL);
    assert_int_equal(rc_load_dir(dir, time(NULL), &m, &errs), -1);
    assert_true(time(NULL) - t0 < 10);
    assert_null(m);
    bool cert = false, key = false;
    for (size_t i = 0; i < errs.n; i++) {
        char line[1024];
        rc_err_format(&errs.v[i], line, sizeof(line));
        if (strstr(line, "c.yaml:7:20: error: spec.source.files.certificate: cannot read") &&
            strstr(line, "not a regular file"))
            cert = true;
        if (strstr(line, "c.yaml:8:19: error: spec.source.files.privateKey: cannot read") &&
            strstr(line, "not a regular file"))
            key = true;
    }
    if (!cert || !key)
        rc_errs_print(&errs, stderr);
    assert_true(cert);
    assert_true(key);
    rc_errs_cleanup(&errs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(only_regular_files_are_opened, setup, teardown),
        cmocka_unit_test_setup_teardown(a_fifo_or_device_as_certificate_is_a_located_error, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
