#include "proxy/buf.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void px_buf_init(struct px_buf *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max;
}

void px_buf_cleanup(struct px_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static int reserve(struct px_buf *b, size_t n)
{
    if (n > b->max || b->len > b->max - n)
        return -ENOBUFS;
    size_t need = b->len + n;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < need)
        cap *= 2;
    if (cap > b->max)
        cap = b->max;
    char *p = realloc(b->data, cap);
    if (!p)
        return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int px_buf_append_grow(struct px_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    /* The source may lie inside the buffer itself (joining fields it
     * holds): remember it as an offset, since reserve may move the storage.
     * Compared as integers: relational operators on pointers into different
     * objects are undefined. */
    uintptr_t src = (uintptr_t)p, start = (uintptr_t)b->data;
    bool inside = b->data && src >= start && src - start < b->len;
    size_t off = inside ? (size_t)(src - start) : 0;
    int rc = reserve(b, n);
    if (rc)
        return rc;
    if (inside)
        p = b->data + off;
    /* Source and destination never overlap: the source is the first len
     * bytes, the destination starts at len. */
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

size_t px_num_fmt(char *out, unsigned long long v, int hex)
{
    char tmp[PX_NUM_MAX];
    size_t i = sizeof tmp;
    unsigned base = hex ? 16 : 10;
    do {
        tmp[--i] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    memcpy(out, tmp + i, sizeof tmp - i);
    return sizeof tmp - i;
}

int px_buf_num(struct px_buf *b, unsigned long long v, int hex)
{
    char tmp[PX_NUM_MAX];
    return px_buf_append(b, tmp, px_num_fmt(tmp, v, hex));
}
