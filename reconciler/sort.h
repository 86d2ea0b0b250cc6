/* Sorting arrays that are usually sorted already: a reload sees the same
 * names in the same order as the load before it, so checking first makes
 * the common case one comparison per element instead of n log n. Internal
 * to the reconciler. */
#ifndef ALBD_RECONCILER_SORT_H
#define ALBD_RECONCILER_SORT_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

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

/* Sorts base (stable) by merging the ascending runs it already has: the
 * documents of a reload arrive as a few sorted runs (one per kind and
 * file, the running model's resources as one), so this costs n log(runs)
 * comparisons instead of n log n. Input with many short runs goes to
 * qsort. Returns 0, or -1 when out of memory (base unchanged). */
static inline int rc_sort_runs(void *base, size_t n, size_t size,
                               int (*cmp)(const void *, const void *))
{
    if (n < 2)
        return 0;
    char *p = base;
    size_t *runs = malloc((n + 1) * sizeof(*runs));
    if (runs == NULL)
        return -1;
    size_t nr = 0;
    runs[nr++] = 0;
    for (size_t i = 1; i < n; i++)
        if (cmp(p + (i - 1) * size, p + i * size) > 0)
            runs[nr++] = i;
    if (nr == 1 || (nr > 64 && nr > n / 16)) {
        free(runs);
        if (nr > 1)
            qsort(base, n, size, cmp);
        return 0;
    }
    char *tmp = malloc(n * size);
    if (tmp == NULL) {
        free(runs);
        return -1;
    }
    char *src = p, *dst = tmp;
    while (nr > 1) {
        runs[nr] = n;
        size_t w = 0;
        for (size_t r = 0; r < nr; r += 2) {
            size_t lo = runs[r], mid = runs[r + 1], hi = r + 2 <= nr ? runs[r + 2] : n;
            size_t i = lo, j = mid, o = lo;
            while (i < mid && j < hi) {
                bool right = cmp(src + j * size, src + i * size) < 0; /* ties: left, stable */
                memcpy(dst + o++ * size, src + (right ? j++ : i++) * size, size);
            }
            memcpy(dst + o * size, src + i * size, (mid - i) * size);
            o += mid - i;
            memcpy(dst + o * size, src + j * size, (hi - j) * size);
            runs[w++] = lo;
        }
        nr = w;
        char *t = src;
        src = dst;
        dst = t;
    }
    if (src != p)
        memcpy(p, src, n * size);
    free(tmp);
    free(runs);
    return 0;
}

#endif
