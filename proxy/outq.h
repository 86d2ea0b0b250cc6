/* The output side of one uv stream: copies what it is given into pooled
 * chunks, hands them to uv_write, and counts the bytes still queued so the
 * owner can apply backpressure. Used by client connections (plain or TLS)
 * and by upstream connections. */
#ifndef ALBD_PROXY_OUTQ_H
#define ALBD_PROXY_OUTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

/* Bytes per chunk: one TLS record with its overhead fits. */
#define PX_OUTQ_CHUNK (32 * 1024)
/* Backpressure thresholds shared by the data plane: stop reading the
 * source above HIGH queued bytes, resume below LOW. */
#define PX_OUTQ_HIGH (256 * 1024)
#define PX_OUTQ_LOW (64 * 1024)

struct px_outq;
struct px_outq_chunk;

/* Called after each uv_write completion (status < 0: the write failed or
 * was cancelled because the stream is closing). */
typedef void (*px_outq_cb)(struct px_outq *q, int status);

struct px_outq {
    uv_stream_t *stream;
    px_outq_cb on_written;
    size_t queued;     /* bytes given to uv_write and not yet completed */
    unsigned inflight; /* uv_write requests not yet completed */
    struct px_outq_chunk *free_chunks;
    unsigned n_free;
    /* Appended and not yet flushed (px_outq_append): the chunk being
     * filled, and the full ones before it. */
    struct px_outq_chunk *open;
    struct px_outq_chunk *held, *held_tail;
    /* When set (px_outq_set_pool), chunks come from and go back to this
     * per-worker pool at once instead of a per-queue cache: an idle queue
     * holds no chunk. */
    struct px_bufpool *pool;
};

void px_outq_init(struct px_outq *q, uv_stream_t *stream, px_outq_cb on_written);

/* Takes chunks from pool (created with px_outq_chunk_size() bytes per
 * buffer, proxy/mempool.h) from now on. Call right after px_outq_init. */
struct px_bufpool;
void px_outq_set_pool(struct px_outq *q, struct px_bufpool *pool);
/* The buffer size a chunk pool must have. */
size_t px_outq_chunk_size(void);

/* Writes the buffers in order: directly with uv_try_write when nothing is
 * queued, the rest copied and queued. Returns 0 or a negative uv error
 * (the stream is then unusable). */
int px_outq_writev(struct px_outq *q, const uv_buf_t *bufs, unsigned n);

/* For producers that hand over their output piece by piece and send it
 * in one go (TLS: OpenSSL writes each record through a BIO that appends
 * here, tls_io.c). append copies n bytes after what earlier appends left,
 * into pooled chunks, and sends nothing; flush writes everything appended
 * — in one writev while nothing is in flight — and appends hold the chunk
 * they fill until then. 0 or a negative uv error (append: UV_ENOMEM). A
 * px_outq_writev flushes first, so the output keeps its order. */
int px_outq_append(struct px_outq *q, const char *p, size_t n);
int px_outq_flush(struct px_outq *q);
/* px_outq_append for a callback that takes the queue as void * (a TLS
 * sink, px_tls_io_new). */
int px_outq_append_to(void *q, const char *p, size_t n);

/* Frees the cached chunks. Call from the stream's close callback: libuv has
 * completed (cancelled) every write by then. */
void px_outq_cleanup(struct px_outq *q);

#endif
