/* A growable byte buffer with a hard size limit, owned by one connection and
 * reused request after request (no per-request allocation once grown). */
#ifndef ALBD_PROXY_BUF_H
#define ALBD_PROXY_BUF_H

#include <stddef.h>
#include <string.h>

struct px_buf {
    char *data;
    size_t len, cap;
    size_t max; /* appends that would grow past max fail with -ENOBUFS */
};

/* Sets up an empty buffer that may grow to max bytes; allocates nothing. */
void px_buf_init(struct px_buf *b, size_t max);
/* Frees the storage; the buffer is empty and usable again afterwards. */
void px_buf_cleanup(struct px_buf *b);
/* Empties the buffer, keeping its storage. */
static inline void px_buf_reset(struct px_buf *b)
{
    b->len = 0;
}
/* px_buf_append when the bytes do not fit in the storage it has. */
int px_buf_append_grow(struct px_buf *b, const void *p, size_t n);
/* Appends n bytes from p. p may point into the buffer's own bytes (a copy
 * of what it holds is appended, even when the storage moves). Returns 0,
 * -ENOMEM or -ENOBUFS (limit reached); on failure the buffer is unchanged.
 * Inline for the common case, bytes that fit (cap never exceeds max):
 * heads are built from many short appends. */
static inline int px_buf_append(struct px_buf *b, const void *p, size_t n)
{
    if (n > b->cap - b->len)
        return px_buf_append_grow(b, p, n);
    /* No growth: p stays valid even inside the buffer, and the source
     * (the first len bytes at most) never overlaps the destination. */
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}
static inline int px_buf_puts(struct px_buf *b, const char *s)
{
    return px_buf_append(b, s, strlen(s));
}
/* Appends an unsigned number in decimal (or lowercase hex when hex != 0). */
int px_buf_num(struct px_buf *b, unsigned long long v, int hex);
/* Writes v in decimal (or lowercase hex when hex != 0) at out, which has
 * room for PX_NUM_MAX bytes, without a terminating NUL; returns the number
 * of digits. */
enum { PX_NUM_MAX = 20 };
size_t px_num_fmt(char *out, unsigned long long v, int hex);

#endif
