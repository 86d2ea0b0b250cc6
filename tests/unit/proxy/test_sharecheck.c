/* proxy/sharecheck.c: a listening socket of another process on the same
 * port (SO_REUSEPORT, so binding succeeded) is found; our own sockets, other
 * ports and non-overlapping addresses are not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proxy/sharecheck.h"

/* A listening SO_REUSEPORT socket on ip:port (port 0: any); the port in *port. */
static int listen_on(const char *ip, unsigned short *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(*port)};
    inet_pton(AF_INET, ip, &sa.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 8), 0);
    socklen_t l = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &l);
    *port = ntohs(sa.sin_port);
    return fd;
}

static struct sockaddr_in addr(const char *ip, unsigned short port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, ip, &sa.sin_addr);
    return sa;
}

/* A child process holding a listening socket on ip:*port until killed. */
static pid_t other_process_listens(const char *ip, unsigned short *port)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        unsigned short pt = *port;
        listen_on(ip, &pt);
        (void)!write(p[1], &pt, sizeof pt);
        pause();
        _exit(0);
    }
    close(p[1]);
    assert_int_equal(read(p[0], port, sizeof *port), (ssize_t)sizeof *port);
    close(p[0]);
    return pid;
}

static void stop(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static void own_sockets_are_not_another_process(void **state)
{
    unsigned short port = 0;
    int a = listen_on("127.0.0.1", &port);
    int b = listen_on("127.0.0.1", &port);
    int fds[] = {a, b};
    struct sockaddr_in sa = addr("127.0.0.1", port);
    assert_int_equal(px_sharecheck_others((struct sockaddr *)&sa, fds, 2), 0);
    /* Not among fds, but still this process's (a listener being replaced). */
    assert_int_equal(px_sharecheck_others((struct sockaddr *)&sa, fds, 1), 0);
    close(a);
    close(b);
}

static void another_process_on_the_port_is_found(void **state)
{
    unsigned short port = 0;
    pid_t pid = other_process_listens("127.0.0.1", &port);
    int mine = listen_on("127.0.0.1", &port); /* binds: SO_REUSEPORT, same user */
    struct sockaddr_in sa = addr("127.0.0.1", port);
    assert_int_equal(px_sharecheck_others((struct sockaddr *)&sa, &mine, 1), 1);
    struct sockaddr_in any = addr("0.0.0.0", port); /* overlaps 127.0.0.1 */
    assert_int_equal(px_sharecheck_others((struct sockaddr *)&any, &mine, 1), 1);
    struct sockaddr_in other_ip = addr("127.0.0.2", port); /* does not overlap */
    assert_int_equal(px_sharecheck_others((struct sockaddr *)&other_ip, &mine, 1), 0);
    struct sockaddr_in other_port =
        addr("127.0.0.1", (unsigned short)(port == 65535 ? 1 : port + 1));
    assert_int_equal(px_sharecheck_others((struct sockaddr *)&other_port, &mine, 1), 0);
    stop(pid);
    assert_int_equal(px_sharecheck_others((struct sockaddr *)&sa, &mine, 1), 0);
    close(mine);
}

static void a_wildcard_listener_of_another_process_overlaps(void **state)
{
    unsigned short port = 0;
    pid_t pid = other_process_listens("0.0.0.0", &port);
    struct sockaddr_in sa = addr("127.0.0.1", port);
    assert_int_equal(px_sharecheck_others((struct sockaddr *)&sa, NULL, 0), 1);
    stop(pid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(own_sockets_are_not_another_process),
        cmocka_unit_test(another_process_on_the_port_is_found),
        cmocka_unit_test(a_wildcard_listener_of_another_process_overlaps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
