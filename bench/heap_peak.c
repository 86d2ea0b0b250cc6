/* heap_peak.c — which allocations are live at a process's heap peak.
 *
 * An LD_PRELOAD library for bench/reload_hwm.sh (HEAP_PEAK=1): it counts
 * the bytes malloc has handed out and not taken back (malloc_usable_size,
 * every thread). Once the file $HEAP_PEAK_DIR/arm exists (checked every 64
 * allocations), it also records each new allocation with a backtrace of
 * DEPTH frames and, whenever the live count passes its highest value since
 * then by 64 KiB, replaces its summary of the recorded allocations still
 * live by call stack. At exit it writes that summary — the allocations made
 * since arming and live at the highest peak, largest stacks first — to
 * $HEAP_PEAK_DIR/out, frames as backtrace_symbols prints them (albd's as
 * offsets: bench/reload_hwm.sh resolves them with addr2line).
 *
 * Live bytes are not resident pages: a block malloc reserved but never
 * wrote (the unused end of a doubled array) counts here and not in RSS,
 * and what a peak costs in RSS depends on whether it lands in pages
 * already resident. Use it to see what is live at the peak, and VmHWM
 * (reload_hwm.sh without HEAP_PEAK) to judge a change. Slow (a global
 * lock and a backtrace per allocation once armed) and ~46 MiB for its
 * table: its own figures only. */
#define _GNU_SOURCE
#include <execinfo.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);
extern void *__libc_memalign(size_t align, size_t n);

#define DEPTH 8
#define SLOTS (1u << 19) /* recorded allocations live at once, at most 80 % */
#define SITES 4096       /* distinct call stacks in a summary */
#define STEP (64 * 1024) /* summarize again after the peak grew this much */
#define TOMB ((void *)1)

struct rec {
    void *p;
    size_t size;
    int depth;
    void *bt[DEPTH];
};

struct site {
    void *bt[DEPTH];
    int depth;
    size_t bytes, count;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static __thread int busy; /* inside the tracer: allocations pass through */
static struct rec *slots;
static size_t used;
static long long live, armed_at, peak, summarized;
static bool armed;
static unsigned long calls;
static struct site sites[SITES];
static int n_sites;
static long long sites_live;
static char arm_path[4096], out_path[4096];

static size_t slot_of(const void *p)
{
    return (size_t)(((uintptr_t)p >> 4) * 2654435761u) & (SLOTS - 1);
}

static void record(void *p, size_t size)
{
    if (slots == NULL && (slots = __libc_calloc(SLOTS, sizeof *slots)) == NULL)
        return;
    if (used >= SLOTS / 10 * 8)
        return; /* full: later allocations go unrecorded */
    size_t i = slot_of(p);
    while (slots[i].p != NULL && slots[i].p != TOMB)
        i = (i + 1) & (SLOTS - 1);
    if (slots[i].p == NULL)
        used++;
    slots[i].p = p;
    slots[i].size = size;
    slots[i].depth = backtrace(slots[i].bt, DEPTH);
}

static void forget(const void *p)
{
    if (slots == NULL)
        return;
    for (size_t i = slot_of(p); slots[i].p != NULL; i = (i + 1) & (SLOTS - 1))
        if (slots[i].p == p) {
            slots[i].p = TOMB;
            return;
        }
}

static void summarize(void)
{
    n_sites = 0;
    sites_live = live;
    for (size_t i = 0; slots != NULL && i < SLOTS; i++) {
        const struct rec *r = &slots[i];
        if (r->p == NULL || r->p == TOMB)
            continue;
        int j = 0;
        while (j < n_sites && !(sites[j].depth == r->depth &&
                                !memcmp(sites[j].bt, r->bt, sizeof(void *) * (size_t)r->depth)))
            j++;
        if (j == n_sites) {
            if (n_sites == SITES)
                continue;
            memcpy(sites[j].bt, r->bt, sizeof r->bt);
            sites[j].depth = r->depth;
            sites[j].bytes = sites[j].count = 0;
            n_sites++;
        }
        sites[j].bytes += r->size;
        sites[j].count++;
    }
}

static int by_bytes(const void *a, const void *b)
{
    const struct site *x = a, *y = b;
    return (x->bytes < y->bytes) - (x->bytes > y->bytes);
}

static void write_out(void)
{
    FILE *f = fopen(out_path, "w");
    if (f == NULL)
        return;
    qsort(sites, (size_t)n_sites, sizeof *sites, by_bytes);
    size_t total = 0;
    for (int j = 0; j < n_sites; j++)
        total += sites[j].bytes;
    fprintf(f,
            "live at arming %lld bytes, highest peak since %lld (+%lld); recorded and live "
            "at that peak: %zu bytes from %d call stacks\n",
            armed_at, peak, peak - armed_at, total, n_sites);
    for (int j = 0; j < n_sites && j < 40; j++) {
        fprintf(f, "\n%zu bytes in %zu allocations\n", sites[j].bytes, sites[j].count);
        char **names = backtrace_symbols(sites[j].bt, sites[j].depth);
        for (int k = 1; k < sites[j].depth; k++) /* [0] is this library */
            fprintf(f, "    %s\n", names ? names[k] : "?");
        __libc_free(names);
    }
    fclose(f);
}

static void on_alloc(void *p)
{
    if (p == NULL || busy)
        return;
    size_t size = malloc_usable_size(p);
    pthread_mutex_lock(&mu);
    busy++;
    live += (long long)size;
    struct stat st;
    if (!armed && (++calls & 63) == 0 && arm_path[0] && stat(arm_path, &st) == 0) {
        armed = true;
        armed_at = peak = summarized = live;
    }
    if (armed) {
        record(p, size);
        if (live > peak) {
            peak = live;
            if (peak - summarized >= STEP) {
                summarize();
                summarized = peak;
            }
        }
    }
    busy--;
    pthread_mutex_unlock(&mu);
}

static void on_free(void *p)
{
    if (p == NULL || busy)
        return;
    size_t size = malloc_usable_size(p);
    pthread_mutex_lock(&mu);
    busy++;
    live -= (long long)size;
    if (armed)
        forget(p);
    busy--;
    pthread_mutex_unlock(&mu);
}

void *malloc(size_t n)
{
    void *p = __libc_malloc(n);
    on_alloc(p);
    return p;
}

void *calloc(size_t n, size_t size)
{
    void *p = __libc_calloc(n, size);
    on_alloc(p);
    return p;
}

void free(void *p)
{
    on_free(p);
    __libc_free(p);
}

void *realloc(void *p, size_t n)
{
    on_free(p);
    void *q = __libc_realloc(p, n);
    on_alloc(q != NULL ? q : n != 0 ? p : NULL);
    return q;
}

void *memalign(size_t align, size_t n)
{
    void *p = __libc_memalign(align, n);
    on_alloc(p);
    return p;
}

void *aligned_alloc(size_t align, size_t n)
{
    return memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    void *p = memalign(align, n);
    if (p == NULL)
        return 12; /* ENOMEM */
    *out = p;
    return 0;
}

__attribute__((constructor)) static void init(void)
{
    const char *dir = getenv("HEAP_PEAK_DIR");
    if (dir != NULL && strlen(dir) < sizeof arm_path - 8) {
        snprintf(arm_path, sizeof arm_path, "%s/arm", dir);
        snprintf(out_path, sizeof out_path, "%s/out", dir);
    }
}

__attribute__((destructor)) static void fini(void)
{
    if (armed)
        write_out();
}
