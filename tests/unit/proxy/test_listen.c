/* proxy/listen.c: one TCP or UDP socket per worker on the same address
 * (SO_REUSEPORT), bound, listening for TCP, non-blocking and
 * close-on-exec; each accepts / receives; a port held by a socket without
 * SO_REUSEPORT is reported as -EADDRINUSE with nothing left open. TCP
 * sockets carry TCP_NODELAY, and the connections they accept inherit it
 * (albd sets it nowhere else). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/listen.h"

enum { WORKERS = 3 };

static struct sockaddr_in loopback(unsigned short port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    return sa;
}

static int opt(int fd, int level, int name)
{
    int v = -1;
    socklen_t l = sizeof v;
    assert_int_equal(getsockopt(fd, level, name, &v, &l), 0);
    return v;
}

static unsigned short port_of(int fd)
{
    struct sockaddr_in sa;
    socklen_t l = sizeof sa;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &l), 0);
    return ntohs(sa.sin_port);
}

/* A free loopback port (of that type), found by binding port 0. */
static unsigned short free_port(int type)
{
    struct sockaddr_in sa = loopback(0);
    int fd = px_listen_socket(type, (struct sockaddr *)&sa, sizeof sa);
    assert_true(fd >= 0);
    unsigned short p = port_of(fd);
    close(fd);
    return p;
}

static void check_fd(int fd, int type, unsigned short port)
{
    assert_true(fd >= 0);
    assert_int_equal(opt(fd, SOL_SOCKET, SO_TYPE), type);
    assert_int_equal(opt(fd, SOL_SOCKET, SO_REUSEPORT), 1);
    assert_int_equal(opt(fd, SOL_SOCKET, SO_ACCEPTCONN), type == SOCK_STREAM);
    assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    assert_int_equal(port_of(fd), port);
    if (type == SOCK_STREAM)
        assert_int_equal(opt(fd, IPPROTO_TCP, TCP_NODELAY), 1);
}

static void tcp_socket_per_worker(void **state)
{
    (void)state;
    unsigned short port = free_port(SOCK_STREAM);
    struct sockaddr_in sa = loopback(port);
    int fds[WORKERS];
    assert_int_equal(
        px_listen_sockets(SOCK_STREAM, (struct sockaddr *)&sa, sizeof sa, fds, WORKERS), 0);
    for (int i = 0; i < WORKERS; i++)
        check_fd(fds[i], SOCK_STREAM, port);

    /* Connections arrive on the workers' sockets (the kernel spreads them). */
    int accepted = 0;
    for (int n = 0; n < 12; n++) {
        int c = socket(AF_INET, SOCK_STREAM, 0);
        assert_int_equal(connect(c, (struct sockaddr *)&sa, sizeof sa), 0);
        struct pollfd p[WORKERS];
        for (int i = 0; i < WORKERS; i++)
            p[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
        assert_true(poll(p, WORKERS, 2000) > 0);
        for (int i = 0; i < WORKERS; i++) {
            if (p[i].revents & POLLIN) {
                int a = accept(fds[i], NULL, NULL);
                if (a >= 0) {
                    accepted++;
                    assert_int_equal(opt(a, IPPROTO_TCP, TCP_NODELAY), 1);
                    close(a);
                }
            }
        }
        close(c);
    }
    assert_int_equal(accepted, 12);
    for (int i = 0; i < WORKERS; i++)
        close(fds[i]);
}

static void udp_socket_per_worker(void **state)
{
    (void)state;
    unsigned short port = free_port(SOCK_DGRAM);
    struct sockaddr_in sa = loopback(port);
    int fds[WORKERS];
    assert_int_equal(px_listen_sockets(SOCK_DGRAM, (struct sockaddr *)&sa, sizeof sa, fds, WORKERS),
                     0);
    for (int i = 0; i < WORKERS; i++)
        check_fd(fds[i], SOCK_DGRAM, port);

    int c = socket(AF_INET, SOCK_DGRAM, 0);
    assert_int_equal(sendto(c, "quic?", 5, 0, (struct sockaddr *)&sa, sizeof sa), 5);
    struct pollfd p[WORKERS];
    for (int i = 0; i < WORKERS; i++)
        p[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
    assert_int_equal(poll(p, WORKERS, 2000), 1); /* exactly one worker gets it */
    char buf[16];
    ssize_t got = -1;
    for (int i = 0; i < WORKERS; i++)
        if (p[i].revents & POLLIN)
            got = recv(fds[i], buf, sizeof buf, 0);
    assert_int_equal(got, 5);
    assert_memory_equal(buf, "quic?", 5);
    close(c);
    for (int i = 0; i < WORKERS; i++)
        close(fds[i]);
}

/* A port held without SO_REUSEPORT cannot be shared: -EADDRINUSE, and the
 * sockets already opened for earlier workers are closed again. */
static void port_in_use_is_eaddrinuse(void **state)
{
    (void)state;
    for (int type = SOCK_STREAM; type <= SOCK_DGRAM; type++) {
        int holder = socket(AF_INET, type, 0);
        struct sockaddr_in sa = loopback(0);
        assert_int_equal(bind(holder, (struct sockaddr *)&sa, sizeof sa), 0);
        if (type == SOCK_STREAM)
            assert_int_equal(listen(holder, 4), 0);
        sa = loopback(port_of(holder));
        assert_int_equal(px_listen_socket(type, (struct sockaddr *)&sa, sizeof sa), -EADDRINUSE);
        int fds[WORKERS] = {7, 7, 7};
        assert_int_equal(px_listen_sockets(type, (struct sockaddr *)&sa, sizeof sa, fds, WORKERS),
                         -EADDRINUSE);
        for (int i = 0; i < WORKERS; i++)
            assert_int_equal(fds[i], -1);
        close(holder);
    }
}

static void other_types_are_einval(void **state)
{
    (void)state;
    struct sockaddr_in sa = loopback(0);
    assert_int_equal(px_listen_socket(SOCK_RAW, (struct sockaddr *)&sa, sizeof sa), -EINVAL);
    int fds[1];
    assert_int_equal(px_listen_sockets(SOCK_SEQPACKET, (struct sockaddr *)&sa, sizeof sa, fds, 1),
                     -EINVAL);
    assert_int_equal(fds[0], -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tcp_socket_per_worker),
        cmocka_unit_test(udp_socket_per_worker),
        cmocka_unit_test(port_in_use_is_eaddrinuse),
        cmocka_unit_test(other_types_are_einval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
