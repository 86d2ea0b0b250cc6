#include "proxy/outq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/mempool.h"

/* Chunks kept for reuse per queue; more are freed on completion. */
#define FREE_MAX 8

struct px_outq_chunk {
    uv_write_t req;
    struct px_outq *q;
    struct px_outq_chunk *next;
    size_t len;
    char data[PX_OUTQ_CHUNK];
};

void px_outq_init(struct px_outq *q, uv_stream_t *stream, px_outq_cb on_written)
{
    memset(q, 0, sizeof *q);
    q->stream = stream;
    q->on_written = on_written;
}

void px_outq_set_pool(struct px_outq *q, struct px_bufpool *pool)
{
    q->pool = pool;
}

size_t px_outq_chunk_size(void)
{
    return sizeof(struct px_outq_chunk);
}

static struct px_outq_chunk *chunk_get(struct px_outq *q)
{
    struct px_outq_chunk *ch = q->free_chunks;
    if (q->pool) {
        ch = px_bufpool_get(q->pool);
        if (!ch)
            return NULL;
    } else if (ch) {
        q->free_chunks = ch->next;
        q->n_free--;
    } else {
        ch = malloc(sizeof *ch);
        if (!ch)
            return NULL;
    }
    ch->q = q;
    ch->next = NULL;
    ch->len = 0;
    return ch;
}

static void chunk_put(struct px_outq *q, struct px_outq_chunk *ch)
{
    if (q->pool) {
        px_bufpool_put(q->pool, ch);
        return;
    }
    if (q->n_free >= FREE_MAX) {
        free(ch);
        return;
    }
    ch->next = q->free_chunks;
    q->free_chunks = ch;
    q->n_free++;
}

static void write_cb(uv_write_t *req, int status)
{
    struct px_outq_chunk *ch = (struct px_outq_chunk *)req;
    struct px_outq *q = ch->q;
    q->queued -= ch->len;
    q->inflight--;
    chunk_put(q, ch);
    if (q->on_written)
        q->on_written(q, status);
}

/* Queues a chunk with uv_write (something is in flight, or the socket
 * took only part). */
static int chunk_queue(struct px_outq *q, struct px_outq_chunk *ch)
{
    uv_buf_t b = uv_buf_init(ch->data, (unsigned)ch->len);
    int rc = uv_write(&ch->req, q->stream, &b, 1, write_cb);
    if (rc < 0) {
        chunk_put(q, ch);
        return rc;
    }
    q->queued += ch->len;
    q->inflight++;
    return 0;
}

static int chunk_send(struct px_outq *q, struct px_outq_chunk *ch)
{
    size_t off = 0;
    if (q->inflight == 0) {
        /* Try the socket first: a uv_write that completes at once still
         * costs an epoll_ctl when libuv drops its POLLOUT interest. */
        uv_buf_t t = uv_buf_init(ch->data, (unsigned)ch->len);
        int w = uv_try_write(q->stream, &t, 1);
        if (w < 0 && w != UV_EAGAIN && w != UV_ENOSYS) {
            chunk_put(q, ch);
            return w;
        }
        if (w > 0)
            off = (size_t)w;
        if (off == ch->len) {
            chunk_put(q, ch);
            return 0;
        }
        if (off) {
            memmove(ch->data, ch->data + off, ch->len - off);
            ch->len -= off;
        }
    }
    return chunk_queue(q, ch);
}

int px_outq_writev(struct px_outq *q, const uv_buf_t *bufs, unsigned n)
{
    size_t skip = 0;
    if (q->held || q->open) {
        int rc = px_outq_flush(q);
        if (rc < 0)
            return rc;
    }
    if (q->inflight == 0) {
        int w = uv_try_write(q->stream, bufs, n);
        if (w < 0 && w != UV_EAGAIN && w != UV_ENOSYS)
            return w;
        if (w > 0)
            skip = (size_t)w;
    }
    for (unsigned i = 0; i < n; i++) { /* the rest, copied and queued */
        size_t len = bufs[i].len;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        int rc = px_outq_append(q, bufs[i].base + skip, len - skip);
        if (rc < 0)
            return rc;
        skip = 0;
    }
    return px_outq_flush(q);
}

/* Writes the held chunks and then last (if any): one writev while nothing
 * is in flight; what the socket does not take is queued chunk by chunk. */
static int send_held(struct px_outq *q, struct px_outq_chunk *last)
{
    if (last) {
        if (q->held)
            q->held_tail->next = last;
        else
            q->held = last;
        q->held_tail = last;
    }
    struct px_outq_chunk *ch = q->held;
    q->held = q->held_tail = NULL;
    size_t done = 0;
    if (q->inflight == 0) {
        uv_buf_t v[16];
        unsigned k = 0;
        for (struct px_outq_chunk *c = ch; c && k < 16; c = c->next)
            v[k++] = uv_buf_init(c->data, (unsigned)c->len);
        int w = uv_try_write(q->stream, v, k);
        if (w < 0 && w != UV_EAGAIN && w != UV_ENOSYS) {
            while (ch) {
                struct px_outq_chunk *next = ch->next;
                chunk_put(q, ch);
                ch = next;
            }
            return w;
        }
        done = w > 0 ? (size_t)w : 0;
    }
    int rc = 0;
    while (ch) {
        struct px_outq_chunk *next = ch->next;
        ch->next = NULL;
        if (done >= ch->len) {
            done -= ch->len;
            chunk_put(q, ch);
        } else if (rc < 0) {
            chunk_put(q, ch);
        } else {
            if (done) {
                memmove(ch->data, ch->data + done, ch->len - done);
                ch->len -= done;
                done = 0;
            }
            rc = chunk_queue(q, ch);
        }
        ch = next;
    }
    return rc;
}

int px_outq_append(struct px_outq *q, const char *p, size_t n)
{
    while (n) {
        struct px_outq_chunk *ch = q->open;
        if (!ch && !(ch = q->open = chunk_get(q)))
            return UV_ENOMEM;
        size_t take = PX_OUTQ_CHUNK - ch->len;
        if (take > n)
            take = n;
        memcpy(ch->data + ch->len, p, take);
        ch->len += take;
        p += take;
        n -= take;
        if (ch->len == PX_OUTQ_CHUNK) { /* full: held for the flush */
            q->open = NULL;
            if (q->held)
                q->held_tail->next = ch;
            else
                q->held = ch;
            q->held_tail = ch;
        }
    }
    return 0;
}

int px_outq_append_to(void *q, const char *p, size_t n)
{
    return px_outq_append(q, p, n);
}

int px_outq_flush(struct px_outq *q)
{
    struct px_outq_chunk *last = q->open;
    q->open = NULL;
    if (!last && !q->held)
        return 0;
    if (!q->held)
        return chunk_send(q, last);
    return send_held(q, last);
}

void px_outq_cleanup(struct px_outq *q)
{
    if (q->open) {
        chunk_put(q, q->open);
        q->open = NULL;
    }
    while (q->held) {
        struct px_outq_chunk *ch = q->held;
        q->held = ch->next;
        chunk_put(q, ch);
    }
    q->held_tail = NULL;
    while (q->free_chunks) {
        struct px_outq_chunk *ch = q->free_chunks;
        q->free_chunks = ch->next;
        free(ch);
    }
    q->n_free = 0;
}
