/* proxy/mirror.c: which requests are mirrored, the copy's round trip to a
 * real loopback socket (the head arrives as given, the response is read
 * and dropped, the connection pooled), a mirror that closes without
 * answering, the cap, and the cut at worker stop (no leak, the snapshot
 * reference given back). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/backend.h"
#include "proxy/lb.h"
#include "proxy/mirror.h"
#include "proxy/snapshot-t.h"
#include "proxy/upstream.h"

static const char HEAD[] =
    "GET /m?x=1 HTTP/1.1\r\nHost: a.example\r\nX-Forwarded-For: 192.0.2.7\r\n\r\n";

static struct px_worker w; /* id 0 */
static struct px_snapshot snap;
static struct rc_server_group g_model;
static struct px_group group;
static struct px_server server;
static struct rc_listener l_model;
static struct px_listener lis;
static struct rc_rule rule;
static struct px_client client = {.ip = "192.0.2.7", .port = "40000"};
static int lfd;

static struct px_req req(void)
{
    /* An HTTP/1.1 request, as HEAD says (minor 1). */
    return (struct px_req){
        .lis = &lis, .client = &client, .method = "GET", .minor = 1, .body = PX_FRAME_NONE};
}

static uint64_t count_of(atomic_uint_fast64_t *c)
{
    return atomic_load(c);
}

static int setup(void **state)
{
    (void)state;
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lfd, 8), 0);
    socklen_t sl = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    fcntl(lfd, F_SETFL, O_NONBLOCK);

    memset(&w, 0, sizeof w);
    assert_int_equal(uv_loop_init(&w.loop), 0);
    w.registry = px_registry_new(1);
    struct px_backend_id id;
    px_backend_id_init(&id, "127.0.0.1", ntohs(sa.sin_port));
    g_model = (struct rc_server_group){.meta.name = "shadow", .fail_open = true};
    server = (struct px_server){.backend = px_backend_get(w.registry, &id), .weight = 1};
    server.key = server.backend->id.key;
    group = (struct px_group){.model = &g_model, .servers = &server, .n_servers = 1};
    group.lb = px_lb_state_get(w.registry, &group);
    assert_non_null(group.lb);
    snap = (struct px_snapshot){.groups = &group, .n_groups = 1};
    atomic_init(&snap.refs, 1); /* the worker's */
    w.snap = &snap;
    lis = (struct px_listener){.model = &l_model, .groups = &group, .model_groups = &g_model};
    rule = (struct rc_rule){.name = "r", .mirror_group = &g_model};
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    px_upstream_close_idle(&w);
    uv_run(&w.loop, UV_RUN_DEFAULT);
    px_lb_state_unref(group.lb);
    px_backend_unref(server.backend);
    assert_int_equal(px_registry_free(w.registry), 0);
    assert_int_equal(uv_loop_close(&w.loop), 0);
    free(w.up_rbuf); /* the backend read buffer (px_worker_join frees it in albd) */
    w.up_rbuf = NULL;
    close(lfd);
    return 0;
}

/* Runs the loop until the mirror connected: the accepted socket. */
static int accept_copy(void)
{
    for (int i = 0; i < 2000; i++) {
        uv_run(&w.loop, UV_RUN_NOWAIT);
        int fd = accept(lfd, NULL, NULL);
        if (fd >= 0)
            return fd;
        usleep(1000);
    }
    fail_msg("the mirror never connected");
    return -1;
}

/* Reads what the mirror sent on fd (the loop runs meanwhile). */
static size_t read_copy(int fd, char *buf, size_t cap, size_t want)
{
    size_t n = 0;
    fcntl(fd, F_SETFL, O_NONBLOCK);
    for (int i = 0; i < 2000 && n < want; i++) {
        uv_run(&w.loop, UV_RUN_NOWAIT);
        ssize_t k = read(fd, buf + n, cap - n);
        if (k > 0)
            n += (size_t)k;
        else
            usleep(1000);
    }
    return n;
}

static void run_until_idle(void)
{
    for (int i = 0; i < 2000 && w.n_mirrors; i++) {
        uv_run(&w.loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
}

static void only_bodiless_requests_are_mirrored(void **state)
{
    (void)state;
    struct px_req r = req();
    assert_true(px_mirror_eligible(&r));
    r.body = PX_FRAME_LENGTH;
    assert_false(px_mirror_eligible(&r));
    r.body = PX_FRAME_CHUNKED;
    assert_false(px_mirror_eligible(&r));
    r = req();
    r.upgrade = "websocket";
    assert_false(px_mirror_eligible(&r));
}

static void copy_goes_to_the_group_and_its_answer_is_dropped(void **state)
{
    (void)state;
    struct px_req r = req();
    px_mirror_send(&w, &r, &rule, HEAD, sizeof HEAD - 1);
    assert_int_equal(w.n_mirrors, 1);
    assert_int_equal(atomic_load(&snap.refs), 2); /* the copy holds the snapshot */
    int fd = accept_copy();
    char buf[512];
    size_t n = read_copy(fd, buf, sizeof buf, sizeof HEAD - 1);
    assert_int_equal(n, sizeof HEAD - 1);
    assert_memory_equal(buf, HEAD, n);
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    assert_int_equal(write(fd, resp, sizeof resp - 1), (ssize_t)(sizeof resp - 1));
    run_until_idle();
    assert_int_equal(w.n_mirrors, 0);
    assert_int_equal(count_of(&w.stats.mirror_sent), 1);
    assert_int_equal(count_of(&w.stats.mirror_failed), 0);
    assert_int_equal(atomic_load(&snap.refs), 1);
    assert_int_equal(server.backend->pools[0].n_idle, 1); /* kept alive */

    /* The next copy reuses it; the mirror closes without answering. */
    px_mirror_send(&w, &r, &rule, HEAD, sizeof HEAD - 1);
    assert_int_equal(server.backend->pools[0].n_idle, 0);
    n = read_copy(fd, buf, sizeof buf, sizeof HEAD - 1);
    assert_int_equal(n, sizeof HEAD - 1);
    close(fd);
    run_until_idle();
    assert_int_equal(w.n_mirrors, 0);
    assert_int_equal(count_of(&w.stats.mirror_sent), 1);
    assert_int_equal(count_of(&w.stats.mirror_failed), 1);
    assert_int_equal(atomic_load(&snap.refs), 1);
}

static void over_the_cap_or_without_a_server_is_dropped(void **state)
{
    (void)state;
    struct px_req r = req();
    px_mirror_send(NULL, &r, &rule, HEAD, sizeof HEAD - 1); /* no worker: nothing */
    w.n_mirrors = PX_MIRROR_MAX_INFLIGHT;
    px_mirror_send(&w, &r, &rule, HEAD, sizeof HEAD - 1);
    assert_int_equal(w.n_mirrors, PX_MIRROR_MAX_INFLIGHT);
    assert_int_equal(count_of(&w.stats.mirror_dropped), 1);
    w.n_mirrors = 0;
    server.weight = 0; /* no server to pick */
    px_mirror_send(&w, &r, &rule, HEAD, sizeof HEAD - 1);
    server.weight = 1;
    assert_int_equal(count_of(&w.stats.mirror_dropped), 2);
    assert_int_equal(w.n_mirrors, 0);
    assert_int_equal(atomic_load(&snap.refs), 1);
}

static void worker_stop_cuts_copies_in_flight(void **state)
{
    (void)state;
    struct px_req r = req();
    px_mirror_send(&w, &r, &rule, HEAD, sizeof HEAD - 1);
    int fd = accept_copy(); /* connected, never answered */
    char buf[512];
    read_copy(fd, buf, sizeof buf, sizeof HEAD - 1);
    px_mirror_send(&w, &r, &rule, HEAD, sizeof HEAD - 1); /* a second, connecting */
    assert_int_equal(w.n_mirrors, 2);
    px_mirror_abort_all(&w);
    assert_int_equal(w.n_mirrors, 0);
    assert_null(w.mirrors);
    uv_run(&w.loop, UV_RUN_NOWAIT);
    assert_int_equal(count_of(&w.stats.mirror_failed), 2);
    assert_int_equal(atomic_load(&snap.refs), 1);
    close(fd);
    int fd2 = accept(lfd, NULL, NULL);
    if (fd2 >= 0)
        close(fd2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(only_bodiless_requests_are_mirrored),
        cmocka_unit_test_setup_teardown(copy_goes_to_the_group_and_its_answer_is_dropped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(over_the_cap_or_without_a_server_is_dropped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(worker_stop_cuts_copies_in_flight, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
