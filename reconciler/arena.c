/* The model's bump allocator: a chain of blocks, each carved front to back.
 * Large requests get a block of their own so small ones do not waste it.
 * A request that does not fit the current block starts a new one, and the
 * old block's room is not given up: the block with the most room left
 * among those replaced (spare) takes the requests that fit there. Without
 * it, a load mixing 2 KiB certificate PEMs with 400-byte structs and short
 * strings left ~700 bytes of every 16 KiB block unused: 0.9 MiB of 10,000
 * certificates' 20 MiB. */
#include "reconciler/arena.h"

#include <openssl/crypto.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK_SIZE 16384

struct block {
    struct block *next;
    size_t used, size;
    alignas(max_align_t) unsigned char data[];
};

/* A copy of secret bytes, wiped when the arena is freed. */
struct secret {
    struct secret *next;
    void *p;
    size_t n;
};

struct rc_arena {
    struct block *head;
    struct block *spare; /* a replaced block with room left, or NULL */
    struct secret *secrets;
    void *user;
    int refs;               /* atomic */
    struct rc_arena **held; /* arenas this one keeps alive (malloc'd) */
    size_t n_held, cap_held;
    /* Bytes of its blocks (headers included), and of the allocations made
     * in them so far (rounded up as allocated): see rc_arena_footprint. */
    size_t footprint, used;
};

struct rc_arena *rc_arena_new(void)
{
    struct rc_arena *a = calloc(1, sizeof(struct rc_arena));
    if (a)
        a->refs = 1;
    return a;
}

struct rc_arena *rc_arena_ref(struct rc_arena *a)
{
    if (a)
        __atomic_fetch_add(&a->refs, 1, __ATOMIC_RELAXED);
    return a;
}

int rc_arena_hold(struct rc_arena *a, struct rc_arena *other)
{
    if (other == NULL || other == a)
        return 0;
    for (size_t i = 0; i < a->n_held; i++)
        if (a->held[i] == other)
            return 0;
    if (a->n_held == a->cap_held) {
        size_t cap = a->cap_held ? a->cap_held * 2 : 4;
        struct rc_arena **p = realloc(a->held, cap * sizeof(*p));
        if (p == NULL)
            return -1;
        a->held = p;
        a->cap_held = cap;
    }
    a->held[a->n_held++] = rc_arena_ref(other);
    return 0;
}

void rc_arena_free(struct rc_arena *a)
{
    if (a == NULL || __atomic_fetch_sub(&a->refs, 1, __ATOMIC_ACQ_REL) != 1)
        return;
    for (size_t i = 0; i < a->n_held; i++)
        rc_arena_free(a->held[i]);
    free(a->held);
    for (struct secret *s = a->secrets; s != NULL; s = s->next)
        OPENSSL_cleanse(s->p, s->n);
    struct block *b = a->head;
    while (b != NULL) {
        struct block *next = b->next;
        free(b);
        b = next;
    }
    free(a);
}

static struct block *block_new(struct rc_arena *a, size_t size)
{
    struct block *b = malloc(sizeof(*b) + size);
    if (b == NULL)
        return NULL;
    a->footprint += sizeof(*b) + size;
    b->next = NULL;
    b->used = 0;
    b->size = size;
    return b;
}

void *rc_arena_alloc(struct rc_arena *a, size_t n)
{
    const size_t align = alignof(max_align_t);
    n = (n + align - 1) / align * align;
    if (n == 0)
        n = align;
    struct block *b = a->head;
    if ((b == NULL || b->size - b->used < n) && a->spare && a->spare->size - a->spare->used >= n)
        b = a->spare;
    else if (b == NULL || b->size - b->used < n) {
        if (n > BLOCK_SIZE / 4) {
            /* A block of its own, linked behind the current one so the
             * current block keeps serving small requests. */
            struct block *big = block_new(a, n);
            if (big == NULL)
                return NULL;
            big->used = n;
            if (b == NULL) {
                a->head = big;
            } else {
                big->next = b->next;
                b->next = big;
            }
            memset(big->data, 0, n);
            a->used += n;
            return big->data;
        }
        b = block_new(a, BLOCK_SIZE);
        if (b == NULL)
            return NULL;
        struct block *old = a->head;
        if (old && (a->spare == NULL || old->size - old->used > a->spare->size - a->spare->used))
            a->spare = old;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    a->used += n;
    memset(p, 0, n);
    return p;
}

char *rc_arena_strndup(struct rc_arena *a, const char *s, size_t n)
{
    if (s == NULL)
        return NULL;
    char *p = rc_arena_alloc(a, n + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *rc_arena_strndup_secret(struct rc_arena *a, const char *s, size_t n)
{
    struct secret *rec = s ? rc_arena_alloc(a, sizeof(*rec)) : NULL;
    char *p = rec ? rc_arena_strndup(a, s, n) : NULL;
    if (p == NULL)
        return NULL;
    *rec = (struct secret){a->secrets, p, n + 1};
    a->secrets = rec;
    return p;
}

char *rc_arena_strdup(struct rc_arena *a, const char *s)
{
    return s == NULL ? NULL : rc_arena_strndup(a, s, strlen(s));
}

size_t rc_arena_footprint(const struct rc_arena *a)
{
    return a ? sizeof(*a) + a->cap_held * sizeof(*a->held) + a->footprint : 0;
}

size_t rc_arena_used(const struct rc_arena *a)
{
    return a ? a->used : 0;
}

size_t rc_arena_footprint_held(const struct rc_arena *a)
{
    size_t n = rc_arena_footprint(a);
    for (size_t i = 0; a && i < a->n_held; i++)
        n += rc_arena_footprint(a->held[i]);
    return n;
}

void rc_arena_set_user(struct rc_arena *a, void *p)
{
    a->user = p;
}

void *rc_arena_user(const struct rc_arena *a)
{
    return a ? a->user : NULL;
}
