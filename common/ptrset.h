/* A set of addresses sized once for at most n of them (open addressing,
 * half full at most): "seen this one already?" over a listener's 10,000
 * certificates (proxy/tls_ctx.c), "is this one of the model's?" for the
 * copy check (reconciler/reuse.c). Header only; used by reconciler/ and
 * proxy/, so it lives in common/. */
#ifndef ALBD_COMMON_PTRSET_H
#define ALBD_COMMON_PTRSET_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

struct cm_ptrset {
    const void **v; /* NULL = empty slot */
    size_t mask;
};

/* Room for n addresses. Returns 0, or -ENOMEM. */
static inline int cm_ptrset_init(struct cm_ptrset *s, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap <<= 1;
    s->v = calloc(cap, sizeof *s->v);
    s->mask = cap - 1;
    return s->v ? 0 : -ENOMEM;
}

static inline void cm_ptrset_cleanup(struct cm_ptrset *s)
{
    free(s->v);
    s->v = NULL;
}

static inline size_t cm_ptrset_slot(const struct cm_ptrset *s, const void *p)
{
    uint64_t h = (uint64_t)(uintptr_t)p * 0x9e3779b97f4a7c15ull;
    size_t i = (size_t)(h >> 32) & s->mask;
    while (s->v[i] != NULL && s->v[i] != p)
        i = (i + 1) & s->mask;
    return i;
}

/* Adds p (not NULL; at most n in all); false when it was there already. */
static inline bool cm_ptrset_add(struct cm_ptrset *s, const void *p)
{
    size_t i = cm_ptrset_slot(s, p);
    if (s->v[i] == p)
        return false;
    s->v[i] = p;
    return true;
}

static inline bool cm_ptrset_has(const struct cm_ptrset *s, const void *p)
{
    return s->v != NULL && p != NULL && s->v[cm_ptrset_slot(s, p)] == p;
}

#endif
