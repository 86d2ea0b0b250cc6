/* proxy/outq.c: TLS output larger than a chunk (px_outq_send_part, then
 * px_outq_send) reaches the peer whole and in order, also when the socket
 * takes only part of it at once, and held chunks go before anything
 * written after them. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "proxy/outq.h"

struct rig {
    uv_loop_t loop;
    uv_pipe_t pipe;
    struct px_outq q;
    int peer;      /* the other end, read here */
    unsigned done; /* on_written calls */
    int last_status;
};

static void on_written(struct px_outq *q, int status)
{
    struct rig *r = (struct rig *)((char *)q - offsetof(struct rig, q));
    r->done++;
    r->last_status = status;
}

static void rig_open(struct rig *r)
{
    memset(r, 0, sizeof *r);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
    r->peer = sv[1];
    assert_int_equal(uv_loop_init(&r->loop), 0);
    assert_int_equal(uv_pipe_init(&r->loop, &r->pipe, 0), 0);
    assert_int_equal(uv_pipe_open(&r->pipe, sv[0]), 0);
    px_outq_init(&r->q, (uv_stream_t *)&r->pipe, on_written);
}

static void rig_close(struct rig *r)
{
    uv_close((uv_handle_t *)&r->pipe, NULL);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    px_outq_cleanup(&r->q);
    assert_int_equal(uv_loop_close(&r->loop), 0);
    close(r->peer);
}

/* Reads n bytes from the peer, running the loop so queued writes go on. */
static char *rig_read(struct rig *r, size_t n)
{
    char *out = malloc(n + 1);
    assert_non_null(out);
    size_t got = 0;
    for (int i = 0; got < n && i < 100000; i++) {
        uv_run(&r->loop, UV_RUN_NOWAIT);
        ssize_t k = read(r->peer, out + got, n - got);
        if (k > 0)
            got += (size_t)k;
        else
            assert_true(k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
    }
    assert_int_equal(got, n);
    char extra;
    uv_run(&r->loop, UV_RUN_NOWAIT);
    assert_int_equal(read(r->peer, &extra, 1), -1); /* nothing more */
    return out;
}

/* Fills a reserved chunk with len bytes of c. */
static void fill(struct px_outq *q, char c, size_t len)
{
    size_t cap = 0;
    char *p = px_outq_reserve(q, &cap);
    assert_non_null(p);
    assert_true(len <= cap);
    memset(p, c, len);
}

static void parts_arrive_whole_and_in_order(void **state)
{
    (void)state;
    struct rig r;
    rig_open(&r);
    /* More than a UNIX socket takes at once: part of it is queued. */
    const size_t n = 6;
    for (size_t i = 0; i < n; i++) {
        fill(&r.q, (char)('a' + i), PX_OUTQ_CHUNK);
        assert_int_equal(px_outq_send_part(&r.q, PX_OUTQ_CHUNK), 0);
    }
    assert_int_equal(r.q.queued, 0); /* held, nothing written yet */
    fill(&r.q, 'z', 100);
    assert_int_equal(px_outq_send(&r.q, 100), 0);
    assert_null(r.q.held);
    char *got = rig_read(&r, n * PX_OUTQ_CHUNK + 100);
    for (size_t i = 0; i < n; i++) {
        const char *p = got + i * PX_OUTQ_CHUNK;
        assert_int_equal(p[0], 'a' + i);
        assert_int_equal(p[PX_OUTQ_CHUNK - 1], 'a' + i);
        assert_null(memchr(p, 'a' + i + 1, PX_OUTQ_CHUNK));
    }
    assert_int_equal(got[n * PX_OUTQ_CHUNK], 'z');
    assert_int_equal(got[n * PX_OUTQ_CHUNK + 99], 'z');
    free(got);
    assert_int_equal(r.q.queued, 0);
    assert_int_equal(r.q.inflight, 0);
    if (r.done)
        assert_int_equal(r.last_status, 0);
    rig_close(&r);
}

static void held_chunks_go_before_later_writes(void **state)
{
    (void)state;
    struct rig r;
    rig_open(&r);
    fill(&r.q, 'h', 1000);
    assert_int_equal(px_outq_send_part(&r.q, 1000), 0);
    uv_buf_t b = uv_buf_init("later", 5);
    assert_int_equal(px_outq_writev(&r.q, &b, 1), 0);
    assert_null(r.q.held);
    char *got = rig_read(&r, 1005);
    assert_int_equal(got[0], 'h');
    assert_int_equal(got[999], 'h');
    assert_memory_equal(got + 1000, "later", 5);
    free(got);
    /* A send of nothing still writes what is held. */
    fill(&r.q, 'k', 10);
    assert_int_equal(px_outq_send_part(&r.q, 10), 0);
    assert_int_equal(px_outq_send(&r.q, 0), 0);
    got = rig_read(&r, 10);
    assert_memory_equal(got, "kkkkkkkkkk", 10);
    free(got);
    rig_close(&r);
}

static void cleanup_frees_held_chunks(void **state)
{
    (void)state;
    struct rig r;
    rig_open(&r);
    fill(&r.q, 'x', 10);
    assert_int_equal(px_outq_send_part(&r.q, 10), 0);
    fill(&r.q, 'y', 10); /* reserved, never sent */
    rig_close(&r);       /* ASan: nothing leaks */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parts_arrive_whole_and_in_order),
        cmocka_unit_test(held_chunks_go_before_later_writes),
        cmocka_unit_test(cleanup_frees_held_chunks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
