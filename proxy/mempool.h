/* A small-object pool owned by one connection: blocks of up to 4 KiB come
 * back to per-size free lists instead of to malloc, so a library that
 * allocates per request (nghttp2: stream objects, header copies) reuses
 * the connection's memory. Single-threaded, like the connection. */
#ifndef ALBD_PROXY_MEMPOOL_H
#define ALBD_PROXY_MEMPOOL_H

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

#endif
