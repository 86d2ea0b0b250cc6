#include "proxy/mempool.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Block sizes: four steps per power of two (32, 48, 64, 80, 96, 112, 128,
 * 160, ..., 3072, 3584, 4096), so a block is rounded up by less than a
 * quarter: the blocks a connection keeps for its whole life (nghttp2's
 * 2.9 KiB session, its HPACK entries) would waste up to half their size
 * in power-of-two classes. */
static const uint16_t class_sizes[] = {32,   48,   64,   80,   96,   112,  128,  160,  192,
                                       224,  256,  320,  384,  448,  512,  640,  768,  896,
                                       1024, 1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096};
enum {
    N_CLASSES = sizeof class_sizes / sizeof class_sizes[0],
    CACHE_PER_CLASS = 64, /* free blocks kept per class; more go to free() */
    LARGE = 0xff,
};

_Static_assert(CACHE_PER_CLASS <= UINT8_MAX, "n_free counts in a byte");

/* In front of every block: its class (or LARGE) and, for large blocks, the
 * size. 16 bytes keep the payload as aligned as malloc's. */
struct hdr {
    uint32_t cls;
    uint32_t pad;
    size_t size;
};

struct free_block {
    struct free_block *next;
};

struct px_mempool {
    struct free_block *free[N_CLASSES];
    uint8_t n_free[N_CLASSES]; /* at most CACHE_PER_CLASS */
    /* px_mempool_capture: sizes watched for, and the page-aligned blocks
     * found (no header: recognized by address), while they live. */
    struct capture {
        size_t want;  /* 0: not watching */
        bool dead;    /* contents dead whenever the owner discards */
        void *block;  /* NULL: none */
        size_t bytes; /* its size, whole pages */
    } cap[PX_MEMPOOL_CAPTURES];
};

static size_t page_size(void)
{
    long pg = sysconf(_SC_PAGESIZE);
    return pg > 0 ? (size_t)pg : 4096;
}

static struct capture *captured(struct px_mempool *p, void *ptr)
{
    for (int i = 0; i < PX_MEMPOOL_CAPTURES; i++)
        if (p->cap[i].block && p->cap[i].block == ptr)
            return &p->cap[i];
    return NULL;
}

static int class_of(size_t n)
{
    for (int c = 0; c < N_CLASSES; c++)
        if (n <= class_sizes[c])
            return c;
    return -1;
}

static size_t class_size(int c)
{
    return class_sizes[c];
}

struct px_mempool *px_mempool_new(void)
{
    return calloc(1, sizeof(struct px_mempool));
}

void px_mempool_free(struct px_mempool *p)
{
    px_mempool_trim(p);
    free(p);
}

void *px_mempool_alloc(struct px_mempool *p, size_t n)
{
    for (int i = 0; i < PX_MEMPOOL_CAPTURES; i++) {
        struct capture *k = &p->cap[i];
        if (k->want && n == k->want && !k->block) {
            size_t pg = page_size(), bytes = (n + pg - 1) / pg * pg;
            k->block = aligned_alloc(pg, bytes);
            if (!k->block)
                return NULL;
            k->bytes = bytes;
            return k->block;
        }
    }
    int c = class_of(n);
    if (c >= 0 && p->free[c]) {
        struct free_block *b = p->free[c];
        p->free[c] = b->next;
        p->n_free[c]--;
        return b;
    }
    size_t body = c >= 0 ? class_size(c) : n;
    if (body < sizeof(struct free_block))
        body = sizeof(struct free_block);
    struct hdr *h = malloc(sizeof *h + body);
    if (!h)
        return NULL;
    h->cls = c >= 0 ? (uint32_t)c : LARGE;
    h->size = body;
    return h + 1;
}

void *px_mempool_calloc(struct px_mempool *p, size_t nmemb, size_t size)
{
    if (size && nmemb > SIZE_MAX / size)
        return NULL;
    void *v = px_mempool_alloc(p, nmemb * size);
    if (v)
        memset(v, 0, nmemb * size);
    return v;
}

void px_mempool_release(struct px_mempool *p, void *ptr)
{
    if (!ptr)
        return;
    struct capture *k = captured(p, ptr);
    if (k) {
        free(k->block);
        k->block = NULL;
        return;
    }
    struct hdr *h = (struct hdr *)ptr - 1;
    if (h->cls == LARGE || p->n_free[h->cls] >= CACHE_PER_CLASS) {
        free(h);
        return;
    }
    struct free_block *b = ptr;
    b->next = p->free[h->cls];
    p->free[h->cls] = b;
    p->n_free[h->cls]++;
}

void *px_mempool_realloc(struct px_mempool *p, void *ptr, size_t n)
{
    if (!ptr)
        return px_mempool_alloc(p, n);
    struct capture *k = captured(p, ptr);
    if (k) {
        if (n <= k->bytes)
            return ptr;
        void *v = px_mempool_alloc(p, n);
        if (!v)
            return NULL;
        memcpy(v, ptr, k->bytes);
        px_mempool_release(p, ptr);
        return v;
    }
    struct hdr *h = (struct hdr *)ptr - 1;
    if (n <= h->size)
        return ptr;
    void *v = px_mempool_alloc(p, n);
    if (!v)
        return NULL;
    memcpy(v, ptr, h->size);
    px_mempool_release(p, ptr);
    return v;
}

void px_mempool_capture(struct px_mempool *p, int slot, size_t size, bool dead)
{
    if (slot < 0 || slot >= PX_MEMPOOL_CAPTURES)
        return;
    p->cap[slot].want = size > 4096 || (size && !dead) ? size : 0;
    p->cap[slot].dead = dead;
}

static bool page_zero(const unsigned char *q, size_t n)
{
    for (size_t i = 0; i < n; i += sizeof(uint64_t)) {
        uint64_t v;
        memcpy(&v, q + i, sizeof v);
        if (v)
            return false;
    }
    return true;
}

size_t px_mempool_discard_captured(struct px_mempool *p)
{
    if (!p)
        return 0;
    size_t pg = page_size(), released = 0;
    for (int i = 0; i < PX_MEMPOOL_CAPTURES; i++) {
        struct capture *k = &p->cap[i];
        if (!k->block)
            continue;
        /* Whole pages of one live block of ours: nothing of malloc's lies
         * there. They read as zeros afterwards and cost memory again only
         * when written: for a dead block any content may go, for another
         * only pages that are zeros already (nothing changes for its
         * reader). */
        for (size_t off = 0; off < k->bytes; off += pg) {
            unsigned char *q = (unsigned char *)k->block + off;
            if (!k->dead && !page_zero(q, pg))
                continue;
            if (madvise(q, pg, MADV_DONTNEED) == 0)
                released += pg;
        }
    }
    return released;
}

void px_mempool_trim(struct px_mempool *p)
{
    if (!p)
        return;
    for (int c = 0; c < N_CLASSES; c++) {
        while (p->free[c]) {
            struct free_block *b = p->free[c];
            p->free[c] = b->next;
            free((struct hdr *)b - 1);
        }
        p->n_free[c] = 0;
    }
}

void px_bufpool_init(struct px_bufpool *p, size_t size, unsigned max)
{
    *p = (struct px_bufpool){.size = size < sizeof(void *) ? sizeof(void *) : size, .max = max};
}

void *px_bufpool_get(struct px_bufpool *p)
{
    void *b = p->free;
    if (b) {
        memcpy(&p->free, b, sizeof p->free);
        p->n_free--;
    } else {
        b = malloc(p->size);
        if (!b)
            return NULL;
    }
    p->out++;
    return b;
}

void px_bufpool_put(struct px_bufpool *p, void *b)
{
    if (!b)
        return;
    p->out--;
    if (p->n_free >= p->max) {
        free(b);
        return;
    }
    memcpy(b, &p->free, sizeof p->free);
    p->free = b;
    p->n_free++;
}

void px_bufpool_cleanup(struct px_bufpool *p)
{
    while (p->free) {
        void *b = p->free;
        memcpy(&p->free, b, sizeof p->free);
        free(b);
    }
    p->n_free = 0;
}
