/* The model's lifetime (reference count over one arena) and its lookups. */
#include <stdatomic.h>
#include <string.h>

#include "reconciler/arena.h"
#include "reconciler/model.h"
#include "reconciler/rc.h"

/* model-t.h declares refs as a plain int so that the type header needs no
 * <stdatomic.h>; every access goes through these atomic builtins. */
struct rc_model *rc_model_ref(struct rc_model *m)
{
    if (m)
        __atomic_fetch_add(&m->refs, 1, __ATOMIC_RELAXED);
    return m;
}

void rc_model_unref(struct rc_model *m)
{
    if (m == NULL)
        return;
    if (__atomic_fetch_sub(&m->refs, 1, __ATOMIC_ACQ_REL) == 1)
        rc_arena_free(m->arena); /* the model itself lives in its arena */
}

const struct rc_tls_policy *rc_model_policy(const struct rc_model *m, const char *name)
{
    for (size_t i = 0; m && name && i < m->n_policies; i++)
        if (!strcmp(m->policies[i].meta.name, name))
            return &m->policies[i];
    return NULL;
}

/* Arrays are sorted by meta.name (model-t.h): a binary search. */
static const void *by_name(const void *base, size_t n, size_t size, const char *name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct rc_meta *meta = (const void *)((const char *)base + mid * size);
        int c = strcmp(meta->name, name);
        if (c == 0)
            return meta;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const struct rc_server_group *rc_model_group(const struct rc_model *m, const char *name)
{
    if (m == NULL || name == NULL || m->n_groups == 0)
        return NULL;
    return by_name(m->groups, m->n_groups, sizeof(*m->groups), name);
}

const struct rc_certificate *rc_model_certificate(const struct rc_model *m, const char *name)
{
    size_t lo = 0, hi = m && name ? m->n_certificates : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->certificates[mid]->meta.name, name);
        if (c == 0)
            return m->certificates[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

size_t rc_model_footprint(const struct rc_model *m)
{
    return m ? rc_arena_footprint_held(m->arena) : 0;
}
