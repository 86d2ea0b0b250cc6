/* proxy/outq.c: output appended piece by piece (px_outq_append: TLS
 * records crossing chunk boundaries), then flushed, reaches the peer whole
 * and in order, also when the socket takes only part of it at once, and
 * appended bytes go before anything written after them. */
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

/* The byte at offset i of the test stream. */
static char pattern(size_t i)
{
    return (char)('a' + (i / 1000 + i) % 26);
}

/* Appends len bytes of the pattern from offset *off, in pieces of piece
 * bytes (the last one shorter). */
static void append_pattern(struct px_outq *q, size_t *off, size_t len, size_t piece)
{
    char *buf = malloc(piece);
    assert_non_null(buf);
    while (len) {
        size_t n = len < piece ? len : piece;
        for (size_t i = 0; i < n; i++)
            buf[i] = pattern(*off + i);
        assert_int_equal(px_outq_append(q, buf, n), 0);
        *off += n;
        len -= n;
    }
    free(buf);
}

static void appended_pieces_arrive_whole_and_in_order(void **state)
{
    (void)state;
    struct rig r;
    rig_open(&r);
    /* More than a UNIX socket takes at once (part of it is queued), in
     * pieces the size of a TLS record: they cross chunk boundaries. */
    const size_t total = 6 * PX_OUTQ_CHUNK + 100;
    size_t off = 0;
    append_pattern(&r.q, &off, total, 16406);
    assert_int_equal(r.q.queued, 0); /* nothing written before the flush */
    assert_int_equal(r.q.inflight, 0);
    assert_non_null(r.q.held);
    assert_non_null(r.q.open);
    assert_int_equal(px_outq_flush(&r.q), 0);
    assert_null(r.q.held);
    assert_null(r.q.open);
    char *got = rig_read(&r, total);
    for (size_t i = 0; i < total; i++)
        if (got[i] != pattern(i))
            fail_msg("byte %zu: %c, not %c", i, got[i], pattern(i));
    free(got);
    assert_int_equal(r.q.queued, 0);
    assert_int_equal(r.q.inflight, 0);
    if (r.done)
        assert_int_equal(r.last_status, 0);
    rig_close(&r);
}

static void appended_bytes_go_before_later_writes(void **state)
{
    (void)state;
    struct rig r;
    rig_open(&r);
    size_t off = 0;
    append_pattern(&r.q, &off, 1000, 300);
    uv_buf_t b = uv_buf_init("later", 5);
    assert_int_equal(px_outq_writev(&r.q, &b, 1), 0);
    assert_null(r.q.open);
    char *got = rig_read(&r, 1005);
    for (size_t i = 0; i < 1000; i++)
        assert_int_equal(got[i], pattern(i));
    assert_memory_equal(got + 1000, "later", 5);
    free(got);
    /* A flush with nothing appended writes nothing. */
    assert_int_equal(px_outq_flush(&r.q), 0);
    char extra;
    assert_int_equal(read(r.peer, &extra, 1), -1);
    /* Nor does an append without a flush. */
    assert_int_equal(px_outq_append(&r.q, "kkkkkkkkkk", 10), 0);
    uv_run(&r.loop, UV_RUN_NOWAIT);
    assert_int_equal(read(r.peer, &extra, 1), -1);
    assert_int_equal(px_outq_flush(&r.q), 0);
    got = rig_read(&r, 10);
    assert_memory_equal(got, "kkkkkkkkkk", 10);
    free(got);
    rig_close(&r);
}

static void cleanup_frees_appended_chunks(void **state)
{
    (void)state;
    struct rig r;
    rig_open(&r);
    size_t off = 0;
    append_pattern(&r.q, &off, PX_OUTQ_CHUNK + 10, 4096); /* one held, one open */
    assert_non_null(r.q.held);
    assert_non_null(r.q.open);
    rig_close(&r); /* ASan: nothing leaks */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(appended_pieces_arrive_whole_and_in_order),
        cmocka_unit_test(appended_bytes_go_before_later_writes),
        cmocka_unit_test(cleanup_frees_appended_chunks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
