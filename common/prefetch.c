/* Reading ahead for cold loads (see prefetch.h). */
#include "common/prefetch.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct cm_prefetch {
    pthread_t tid;
    atomic_bool stop;
    size_t n, advised;
    char **paths;
};

static void *run(void *arg)
{
    struct cm_prefetch *p = arg;
    for (size_t i = 0; i < p->n && !atomic_load_explicit(&p->stop, memory_order_relaxed); i++) {
        if (p->paths[i] == NULL)
            continue;
        int fd = open(p->paths[i], O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
            continue;
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
            posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED) == 0)
            p->advised++;
        close(fd);
    }
    return NULL;
}

static void prefetch_free(struct cm_prefetch *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->paths[i]);
    free(p->paths);
    free(p);
}

struct cm_prefetch *cm_prefetch_start(const char *const *paths, size_t n)
{
    if (n == 0)
        return NULL;
    struct cm_prefetch *p = calloc(1, sizeof *p);
    if (p == NULL || (p->paths = calloc(n, sizeof *p->paths)) == NULL) {
        free(p);
        return NULL;
    }
    atomic_init(&p->stop, false);
    for (; p->n < n; p->n++)
        if (paths[p->n] != NULL && (p->paths[p->n] = strdup(paths[p->n])) == NULL)
            break;
    if (p->n < n || pthread_create(&p->tid, NULL, run, p) != 0) {
        prefetch_free(p);
        return NULL;
    }
    return p;
}

size_t cm_prefetch_end(struct cm_prefetch *p)
{
    if (p == NULL)
        return 0;
    atomic_store(&p->stop, true);
    pthread_join(p->tid, NULL);
    size_t advised = p->advised;
    prefetch_free(p);
    return advised;
}
