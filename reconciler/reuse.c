/* Copies of unchanged resources (reuse.h). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconciler/arena.h"
#include "reconciler/build.h"
#include "reconciler/reuse.h"
#include "reconciler/source.h"

static bool evacuating(const struct rc_reuse_plan *p, const struct rc_arena *a)
{
    size_t lo = 0, hi = p->n_evacuate;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->evacuate[mid] == a)
            return true;
        if ((uintptr_t)p->evacuate[mid] < (uintptr_t)a)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

bool rc_reuse_from(struct rc_load *L, const struct rc_doc *d)
{
    const struct rc_source *s = d->prev_src;
    if (!(s && s->res && s->origin && L->prev && L->files))
        return false;
    if (L->plan && L->plan->n_evacuate > 0 && evacuating(L->plan, s->origin)) {
        if (L->pass == 1)
            L->compacted++;
        return false;
    }
    return true;
}

/* ---- compaction ---- */

/* An origin of the running model's resources and the bytes they use in it. */
struct origin {
    struct rc_arena *a;
    size_t used;
};

static size_t slot_of(const struct origin *t, size_t cap, const struct rc_arena *a)
{
    size_t h = (size_t)((((uintptr_t)a >> 4) * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & (cap - 1);
    while (t[h].a != NULL && t[h].a != a)
        h = (h + 1) & (cap - 1);
    return h;
}

static int by_address(const void *x, const void *y)
{
    uintptr_t a = (uintptr_t) * (struct rc_arena *const *)x;
    uintptr_t b = (uintptr_t) * (struct rc_arena *const *)y;
    return (a > b) - (a < b);
}

int rc_reuse_plan(const struct rc_sources *prev, struct rc_reuse_plan *plan)
{
    *plan = (struct rc_reuse_plan){0};
    if (prev == NULL || prev->n == 0)
        return 0;
    size_t cap = 16, n = 0, last = SIZE_MAX;
    struct origin *t = calloc(cap, sizeof(*t));
    if (t == NULL)
        return -1;
    for (size_t i = 0; i < prev->n; i++) {
        const struct rc_source *s = prev->v[i];
        if (s->origin == NULL)
            continue;
        if (last != SIZE_MAX && t[last].a == s->origin) { /* runs are common */
            t[last].used += s->bytes;
            continue;
        }
        if (2 * (n + 1) > cap) {
            struct origin *g = calloc(2 * cap, sizeof(*g));
            if (g == NULL) {
                free(t);
                return -1;
            }
            for (size_t k = 0; k < cap; k++)
                if (t[k].a != NULL)
                    g[slot_of(g, 2 * cap, t[k].a)] = t[k];
            free(t);
            t = g;
            cap *= 2;
        }
        last = slot_of(t, cap, s->origin);
        if (t[last].a == NULL) {
            t[last].a = s->origin;
            n++;
        }
        t[last].used += s->bytes;
    }
    size_t sparse = 0;
    for (size_t k = 0; k < cap; k++) {
        if (t[k].a == NULL)
            continue;
        size_t fp = rc_arena_footprint(t[k].a);
        if (t[k].used > fp)
            t[k].used = fp; /* an estimate: never more than all of it */
        plan->footprint += fp;
        plan->used += t[k].used;
        sparse += 2 * t[k].used < fp;
    }
    size_t waste = plan->footprint - plan->used;
    if (sparse > 0 && waste > RC_COMPACT_MIN_WASTE && waste > plan->used / 4) {
        plan->evacuate = malloc(sparse * sizeof(*plan->evacuate));
        if (plan->evacuate == NULL) {
            free(t);
            return -1;
        }
        for (size_t k = 0; k < cap; k++)
            if (t[k].a != NULL && 2 * t[k].used < rc_arena_footprint(t[k].a))
                plan->evacuate[plan->n_evacuate++] = t[k].a;
        qsort(plan->evacuate, plan->n_evacuate, sizeof(*plan->evacuate), by_address);
    }
    free(t);
    return 0;
}

void rc_reuse_plan_cleanup(struct rc_reuse_plan *plan)
{
    free(plan->evacuate);
    *plan = (struct rc_reuse_plan){0};
}

const void *rc_copy_of(const void *old, const void *pbase, size_t pn, const void *base, size_t n,
                       size_t size, bool sorted)
{
    const char *o = old, *pb = pbase, *b = base;
    if (o < pb || o >= pb + pn * size || (size_t)(o - pb) % size != 0)
        return NULL;
    const char *name = ((const struct rc_meta *)(const void *)o)->name;
#define NAME_AT(k) (((const struct rc_meta *)(const void *)(b + (k)*size))->name)
    size_t i = (size_t)(o - pb) / size;
    if (i < n && NAME_AT(i) == name)
        return b + i * size;
    if (!sorted) {
        for (size_t k = 0; k < n; k++)
            if (NAME_AT(k) == name)
                return b + k * size;
        return NULL;
    }
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(NAME_AT(mid), name);
        if (c == 0)
            return NAME_AT(mid) == name ? b + mid * size : NULL;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
#undef NAME_AT
}

/* ---- sets of certificate addresses ---- */

static int cert_set_of(struct cm_ptrset *s, const struct rc_model *m)
{
    if (cm_ptrset_init(s, m->n_certificates) != 0)
        return -1;
    for (size_t i = 0; i < m->n_certificates; i++)
        cm_ptrset_add(s, m->certificates[i]);
    return 0;
}

void rc_copy_ctx_init(struct rc_copy_ctx *x, const struct rc_model *m, const struct rc_model *prev)
{
    *x = (struct rc_copy_ctx){.m = m, .prev = prev};
}

void rc_copy_ctx_cleanup(struct rc_copy_ctx *x)
{
    cm_ptrset_cleanup(&x->certs);
    cm_ptrset_cleanup(&x->prev_certs);
    x->built = false;
}

/* Builds the sets on first use; false when out of memory. */
static bool sets_ready(struct rc_copy_ctx *x)
{
    if (!x->built && !x->failed) {
        x->failed = cert_set_of(&x->certs, x->m) != 0 ||
                    (x->prev && cert_set_of(&x->prev_certs, x->prev) != 0);
        x->built = !x->failed;
    }
    return x->built;
}

bool rc_copy_ctx_has_cert(struct rc_copy_ctx *x, const struct rc_certificate *c)
{
    return sets_ready(x) && cm_ptrset_has(&x->certs, c);
}

/* The bounds of one model array, as addresses. */
struct span {
    uintptr_t lo, hi; /* [lo, hi) */
    size_t size;      /* of one element */
};

static struct span span_of(const struct rc_model *m, enum rc_ref_target t)
{
    const void *base = NULL;
    size_t n = 0, size = 1;
    switch (t) {
    case RC_REF_INSTANCE:
        base = m->instances, n = m->n_instances, size = sizeof(*m->instances);
        break;
    case RC_REF_CERTIFICATE:
        break; /* no array of structs: rc_copy_ctx's sets */
    case RC_REF_POLICY:
        base = m->policies, n = m->n_policies, size = sizeof(*m->policies);
        break;
    case RC_REF_GROUP:
        base = m->groups, n = m->n_groups, size = sizeof(*m->groups);
        break;
    }
    uintptr_t lo = (uintptr_t)base;
    return (struct span){lo, lo + n * size, size};
}

/* Whether p is the address of an element of s. */
static bool points_into(uintptr_t p, struct span s)
{
    return p >= s.lo && p < s.hi && (p - s.lo) % s.size == 0;
}

/* Whether p points anywhere inside one of m's resource arrays (the
 * listeners' too: nothing may refer to a listener of another model), or
 * at one of its certificates (certs: m's set). */
static bool inside_model(uintptr_t p, const struct rc_model *m, const struct cm_ptrset *certs)
{
    if (cm_ptrset_has(certs, (const void *)p))
        return true;
    for (int t = RC_REF_INSTANCE; t <= RC_REF_GROUP; t++) {
        struct span s = span_of(m, (enum rc_ref_target)t);
        if (p >= s.lo && p < s.hi)
            return true;
    }
    uintptr_t lo = (uintptr_t)m->listeners;
    return p >= lo && p < lo + m->n_listeners * sizeof(*m->listeners);
}

static uintptr_t word_at(const void *obj, size_t offset)
{
    const void *p;
    memcpy(&p, (const char *)obj + offset, sizeof(p));
    return (uintptr_t)p;
}

/* Whether p is an element of m's array of target t. */
static bool member(uintptr_t p, enum rc_ref_target t, const struct rc_copy_ctx *x)
{
    if (t == RC_REF_CERTIFICATE)
        return cm_ptrset_has(&x->certs, (const void *)p);
    return points_into(p, span_of(x->m, t));
}

int rc_copy_check(const void *obj, size_t size, const struct rc_ref_field *table, size_t n,
                  struct rc_copy_ctx *x, char *why, size_t why_size)
{
    if (!sets_ready(x)) {
        snprintf(why, why_size, "out of memory");
        return -1;
    }
    const struct rc_model *m = x->m, *prev = x->prev;
    for (size_t i = 0; i < n; i++) {
        const struct rc_ref_field *f = &table[i];
        if (f->count_offset == RC_REF_ONE) {
            uintptr_t p = word_at(obj, f->offset);
            if (p != 0 && !member(p, f->target, x)) {
                snprintf(why, why_size, "%s does not point into the new model", f->name);
                return -1;
            }
            continue;
        }
        size_t count;
        memcpy(&count, (const char *)obj + f->count_offset, sizeof(count));
        const void *const *v = (const void *const *)word_at(obj, f->offset);
        for (size_t k = 0; k < count; k++) {
            if (!member((uintptr_t)v[k], f->target, x)) {
                snprintf(why, why_size, "%s[%zu] does not point into the new model", f->name, k);
                return -1;
            }
        }
    }
    /* Every other word: not a reference into either model (an unlisted
     * reference field, re-pointed or not). */
    for (size_t off = 0; off + sizeof(void *) <= size; off += _Alignof(void *)) {
        bool listed = false;
        for (size_t i = 0; i < n && !listed; i++)
            listed = table[i].offset == off;
        if (listed)
            continue;
        uintptr_t p = word_at(obj, off);
        if (p != 0 &&
            ((prev && inside_model(p, prev, &x->prev_certs)) || inside_model(p, m, &x->certs))) {
            snprintf(why, why_size,
                     "the word at offset %zu points into a model's resources and is not in the "
                     "table of reference fields",
                     off);
            return -1;
        }
    }
    return 0;
}
