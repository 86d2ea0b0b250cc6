/* Connection draining (see drain.h). */
#include "proxy/drain.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "proxy/backend-t.h"
#include "proxy/snapshot.h"

static int ptr_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
    return (x > y) - (x < y);
}

void px_drain_mark(const struct px_snapshot *now, const struct px_snapshot *before)
{
    size_t n = 0;
    for (size_t i = 0; i < now->n_groups; i++)
        n += now->groups[i].n_servers;
    struct px_backend **serving = malloc((n ? n : 1) * sizeof *serving);
    size_t k = 0;
    for (size_t i = 0; i < now->n_groups; i++)
        for (size_t j = 0; j < now->groups[i].n_servers; j++) {
            const struct px_server *s = &now->groups[i].servers[j];
            if (s->weight <= 0)
                continue;
            atomic_store_explicit(&s->backend->drain_at, 0, memory_order_relaxed);
            if (serving)
                serving[k++] = s->backend;
        }
    if (!serving || !before)
        goto out; /* out of memory: nothing drains early, connections end on their own */
    qsort(serving, k, sizeof *serving, ptr_cmp);
    uint64_t ms = uv_hrtime() / 1000000u;
    for (size_t i = 0; i < before->n_groups; i++) {
        const struct px_group *old = &before->groups[i];
        const struct px_group *g = px_snapshot_group(now, old->model->meta.name);
        const struct rc_server_group *m = g ? g->model : old->model;
        for (size_t j = 0; j < old->n_servers; j++) {
            struct px_backend *b = old->servers[j].backend;
            if (old->servers[j].weight <= 0 || bsearch(&b, serving, k, sizeof *serving, ptr_cmp))
                continue;
            uint64_t at =
                m->drain.enabled ? ms + (uint64_t)m->drain.timeout_s * 1000u : PX_DRAIN_NO_DEADLINE;
            /* An earlier deadline stays; a drain without one gets one
             * when a later configuration enables connectionDrain. */
            uint64_t cur = atomic_load_explicit(&b->drain_at, memory_order_relaxed);
            if (cur == 0 || (cur == PX_DRAIN_NO_DEADLINE && at != PX_DRAIN_NO_DEADLINE))
                atomic_compare_exchange_strong(&b->drain_at, &cur, at ? at : 1);
        }
    }
out:
    free(serving);
}
