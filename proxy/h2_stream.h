/* A stream's forwarding exchange (proxy/h2_stream.c), for the HTTP/2
 * session (proxy/h2.c): its allocation and release, the backend side
 * (request bytes up, with HTTP/2 flow control) and the response sink
 * (HEADERS, DATA, trailers). Call only on the connection's worker loop,
 * never from inside an nghttp2 callback where a comment says so. */
#ifndef ALBD_PROXY_H2_STREAM_H
#define ALBD_PROXY_H2_STREAM_H

#include <uv.h>

#include "proxy/h2-t.h"

/* A stream for id (recycled from h->free_streams or allocated), linked to
 * h->active, holding a reference on the connection's snapshot; NULL when
 * out of memory. */
struct h2_stream *px_h2_stream_new(struct h2 *h, int32_t id);

/* nghttp2 forgot the stream: its backend connection is dropped, it goes
 * back to the free list (or is freed). */
void px_h2_stream_release(struct h2_stream *s);

/* Frees s and its buffers (connection teardown). */
void px_h2_stream_free(struct h2_stream *s);

/* Ends the stream's access-log line (status: s->status; reason: albd's,
 * or NULL for the one recorded earlier); idempotent. */
void px_h2_stream_log_end(struct h2_stream *s, const char *reason);

/* Gives the stream's backend connection back (to its pool when keep). */
void px_h2_stream_drop_upstream(struct h2_stream *s, bool keep);

/* Answers the stream with albd's own error response (status), or resets
 * it when the response has begun. */
void px_h2_stream_error(struct h2_stream *s, int status);

/* Gives n consumed request bytes back to the client's stream window. */
void px_h2_give_window(struct h2_stream *s, size_t n);

/* Sends framed request bytes to the backend, or keeps them until it is
 * connected. data_len is how many of them are DATA payload (for flow
 * control). Returns 0, or -1 when the stream was answered with an error. */
int px_h2_send_up(struct h2_stream *s, const uv_buf_t *b, unsigned n, size_t data_len);

/* Runs the pipeline (proxy/req.c) for a request whose header block is
 * complete and checked; method is NUL-terminated. */
void px_h2_stream_forward(struct h2_stream *s, struct px_req *r);

/* nghttp2's send_data callback for a DATA frame body_read marked NO_COPY:
 * writes the frame (header framehd, length bytes of s's response) to the
 * client from the response buffer itself. 0 or a negative errno. */
int px_h2_stream_send_data(struct h2_stream *s, const uint8_t *framehd, size_t length);

/* Serializes what nghttp2 has to send (proxy/h2.c). Never from inside an
 * nghttp2 callback (it checks). */
void px_h2_flush(struct h2 *h);

/* px_h2_flush, at the end of the loop iteration (px_h2_flush_pending):
 * for output produced by a backend read, so that the responses that
 * several streams of the session receive in one iteration share frames'
 * TLS records and writes instead of one each. */
void px_h2_flush_later(struct h2 *h);

static inline uint64_t px_h2_now_ms(const struct h2 *h)
{
    return uv_now(&h->c->w->loop);
}

/* The stream made progress: its request timeout starts again. */
static inline void px_h2_touch(struct h2_stream *s)
{
    s->deadline = px_h2_now_ms(s->h) + (uint64_t)s->lis->model->request_timeout_s * 1000;
}

#endif
