/* Sorting arrays that are usually sorted already: a reload sees the same
 * names in the same order as the load before it, so checking first makes
 * the common case one comparison per element instead of n log n. Internal
 * to the reconciler. */
#ifndef ALBD_RECONCILER_SORT_H
#define ALBD_RECONCILER_SORT_H

#include <stdlib.h>

/* qsort(base, n, size, cmp), unless base is in order already. */
static inline void rc_sort(void *base, size_t n, size_t size,
                           int (*cmp)(const void *, const void *))
{
    const char *p = base;
    for (size_t i = 1; i < n; i++)
        if (cmp(p + (i - 1) * size, p + i * size) > 0) {
            qsort(base, n, size, cmp);
            return;
        }
}

#endif
