/* A small-object pool owned by one connection: blocks of up to 4 KiB come
 * back to per-size free lists instead of to malloc, so a library that
 * allocates per request (nghttp2: stream objects, header copies) reuses
 * the connection's memory. Single-threaded, like the connection. */
#ifndef ALBD_PROXY_MEMPOOL_H
#define ALBD_PROXY_MEMPOOL_H

#include <stdbool.h>
#include <stddef.h>

struct px_mempool;

/* A new, empty pool, or NULL when out of memory. */
struct px_mempool *px_mempool_new(void);

/* Frees the pool and every block cached in it. Blocks still handed out
 * must have been given back first. NULL is a no-op. */
void px_mempool_free(struct px_mempool *p);

/* malloc / calloc / realloc / free semantics; blocks from one pool go back
 * to the same pool. NULL on allocation failure. */
void *px_mempool_alloc(struct px_mempool *p, size_t n);
void *px_mempool_calloc(struct px_mempool *p, size_t nmemb, size_t size);
void *px_mempool_realloc(struct px_mempool *p, void *ptr, size_t n);
void px_mempool_release(struct px_mempool *p, void *ptr);

/* A per-worker cache of equal-sized buffers (a connection's read, staging
 * and decrypt buffers, output-queue chunks): a connection takes one while
 * bytes are in flight and gives it back as soon as they are consumed, so
 * an idle connection holds none and a busy one reuses warm memory without
 * calling malloc. Single-threaded, like the worker. */
struct px_bufpool {
    void *free;      /* cached buffers, linked through their first bytes */
    unsigned n_free; /* how many are cached */
    unsigned max;    /* more than this many given back go to free() */
    size_t size;     /* bytes per buffer (at least a pointer) */
    size_t out;      /* buffers handed out and not yet given back */
};

/* Sets up an empty pool of size-byte buffers keeping at most max cached. */
void px_bufpool_init(struct px_bufpool *p, size_t size, unsigned max);
/* A buffer of p->size bytes (uninitialized), or NULL when out of memory. */
void *px_bufpool_get(struct px_bufpool *p);
/* Gives b (from px_bufpool_get on p) back. NULL is a no-op. */
void px_bufpool_put(struct px_bufpool *p, void *b);
/* Frees the cached buffers (those handed out stay the caller's). */
void px_bufpool_cleanup(struct px_bufpool *p);

/* Capture slots per pool (px_mempool_capture). */
#define PX_MEMPOOL_CAPTURES 2

/* Watches, in slot, for the next block of exactly size bytes allocated
 * from p (0: stop watching): it is given whole pages of its own,
 * page-aligned, and remembered while it lives. For a library's few big
 * blocks whose memory the owner can give back at times: dead, the
 * contents are known to be dead then (nghttp2's frame buffer between
 * frames; sizes over 4 KiB only); else only pages that are all zeros are
 * given back (an empty table), which changes nothing for the reader. */
void px_mempool_capture(struct px_mempool *p, int slot, size_t size, bool dead);
/* Returns the captured blocks' pages to the kernel (madvise MADV_DONTNEED:
 * they read as zeros afterwards, and cost memory again only when
 * written), as px_mempool_capture allows. Call only when dead blocks'
 * contents are dead. Returns the bytes released. */
size_t px_mempool_discard_captured(struct px_mempool *p);

/* Frees every block cached in p (blocks handed out are untouched): an idle
 * connection gives its pool's spare memory back. */
void px_mempool_trim(struct px_mempool *p);

#endif
