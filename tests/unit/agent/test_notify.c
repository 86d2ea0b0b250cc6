/* agent/notify.c: one datagram to $NOTIFY_SOCKET (a path or an abstract
 * "@name"), nothing when it is unset, an error for a malformed value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/notify.h"

/* A datagram socket bound to name (abstract when it starts with '@'). */
static int listen_at(const char *name)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(name);
    memcpy(sa.sun_path, name, len);
    if (name[0] == '@')
        sa.sun_path[0] = '\0';
    assert_int_equal(
        bind(fd, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)),
        0);
    return fd;
}

static void received(int fd, const char *want)
{
    char buf[256];
    ssize_t n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_string_equal(buf, want);
}

static void sends_one_datagram_to_a_path(void **state)
{
    char path[] = "/tmp/albd-notify-XXXXXX";
    assert_non_null(mkdtemp(path));
    char sock[128];
    snprintf(sock, sizeof sock, "%s/s", path);
    int fd = listen_at(sock);
    setenv("NOTIFY_SOCKET", sock, 1);
    assert_int_equal(ag_notify("READY=1\nSTATUS=serving generation 1"), 1);
    received(fd, "READY=1\nSTATUS=serving generation 1");
    close(fd);
    unlink(sock);
    rmdir(path);
}

static void sends_to_an_abstract_socket(void **state)
{
    char name[64];
    snprintf(name, sizeof name, "@albd-notify-test-%d", (int)getpid());
    int fd = listen_at(name);
    setenv("NOTIFY_SOCKET", name, 1);
    assert_int_equal(ag_notify("STOPPING=1"), 1);
    received(fd, "STOPPING=1");
    close(fd);
}

static void unset_is_a_no_op_and_bad_values_are_errors(void **state)
{
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(ag_notify("READY=1"), 0);
    setenv("NOTIFY_SOCKET", "", 1);
    assert_int_equal(ag_notify("READY=1"), 0);
    setenv("NOTIFY_SOCKET", "relative/path", 1);
    assert_true(ag_notify("READY=1") < 0);
    char longp[200];
    memset(longp, 'a', sizeof longp - 1);
    longp[0] = '/';
    longp[sizeof longp - 1] = '\0';
    setenv("NOTIFY_SOCKET", longp, 1);
    assert_true(ag_notify("READY=1") < 0);
    setenv("NOTIFY_SOCKET", "/nonexistent/albd-notify", 1);
    assert_true(ag_notify("READY=1") < 0); /* nobody listens: an error, never a block */
    unsetenv("NOTIFY_SOCKET");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sends_one_datagram_to_a_path),
        cmocka_unit_test(sends_to_an_abstract_socket),
        cmocka_unit_test(unset_is_a_no_op_and_bad_values_are_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
