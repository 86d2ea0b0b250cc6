/* Per-resource status across reloads (status_track.h). */
#include "agent/status_track.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"

/* A condition's status as one byte: 0 = never seen. */
enum { ST_NONE, ST_TRUE, ST_FALSE, ST_UNKNOWN, ST_OTHER };

struct ag_track_entry {
    uint64_t hash; /* cm_hash_str(key) */
    uint64_t generation;
    int64_t since[AG_COND_N];
    unsigned char status[AG_COND_N];
    char digest[65];
    char key[]; /* "Kind/name" */
};

/* A slot that held a record moved to another table: probing goes on
 * past it. Never dereferenced. */
static char moved_mark;
#define MOVED ((struct ag_track_entry *)(void *)&moved_mark)

struct ag_track {
    size_t cap; /* a power of two, at least twice the records it may hold */
    size_t n;   /* records */
    struct ag_track_entry **slot;
};

enum ag_cond_type ag_cond_type_of(const char *type)
{
    static const char *const names[AG_COND_N] = {"Accepted", "Programmed", "Ready", "Degraded"};
    for (int i = 0; i < AG_COND_N; i++)
        if (type && strcmp(type, names[i]) == 0)
            return (enum ag_cond_type)i;
    return AG_COND_N;
}

static unsigned char status_code(const char *s)
{
    if (s == NULL)
        return ST_OTHER;
    if (strcmp(s, "True") == 0)
        return ST_TRUE;
    if (strcmp(s, "False") == 0)
        return ST_FALSE;
    if (strcmp(s, "Unknown") == 0)
        return ST_UNKNOWN;
    return ST_OTHER;
}

static int table_init(struct ag_track *t, size_t n)
{
    size_t cap = 16;
    while (cap / 2 < n && cap < ((size_t)1 << 40))
        cap *= 2;
    t->slot = calloc(cap, sizeof(*t->slot));
    if (t->slot == NULL)
        return -1;
    t->cap = cap;
    t->n = 0;
    return 0;
}

struct ag_track *ag_track_new(size_t n)
{
    struct ag_track *t = calloc(1, sizeof(*t));
    if (t == NULL || table_init(t, n) != 0) {
        free(t);
        return NULL;
    }
    return t;
}

void ag_track_free(struct ag_track *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slot[i] != MOVED)
            free(t->slot[i]);
    free(t->slot);
    free(t);
}

size_t ag_track_count(const struct ag_track *t)
{
    return t ? t->n : 0;
}

/* The slot of key in t: where it is, or the empty slot that ends its
 * probe. */
static struct ag_track_entry **find(const struct ag_track *t, const char *key, uint64_t h)
{
    size_t i = (size_t)h & (t->cap - 1);
    for (;;) {
        struct ag_track_entry *e = t->slot[i];
        if (e == NULL || (e != MOVED && e->hash == h && strcmp(e->key, key) == 0))
            return &t->slot[i];
        i = (i + 1) & (t->cap - 1);
    }
}

struct ag_track_entry *ag_track_get(const struct ag_track *t, const char *key)
{
    return t && key ? *find(t, key, cm_hash_str(key)) : NULL;
}

/* Doubles t's slots (only the records move; no MOVED marks survive). */
static int grow(struct ag_track *t)
{
    struct ag_track old = *t;
    if (table_init(t, old.cap) != 0) {
        *t = old;
        return -1;
    }
    for (size_t i = 0; i < old.cap; i++) {
        struct ag_track_entry *e = old.slot[i];
        if (e != NULL && e != MOVED) {
            *find(t, e->key, e->hash) = e;
            t->n++;
        }
    }
    free(old.slot);
    return 0;
}

struct ag_track_entry *ag_track_carry(struct ag_track *t, struct ag_track *from, const char *key,
                                      const char *digest)
{
    uint64_t h = cm_hash_str(key);
    struct ag_track_entry **at = find(t, key, h);
    struct ag_track_entry *e = *at;
    if (e == NULL) {
        if (t->n >= t->cap / 2) { /* at most half full */
            if (grow(t) != 0)
                return NULL;
            at = find(t, key, h);
        }
        struct ag_track_entry **was = from ? find(from, key, h) : NULL;
        if (was && *was) {
            e = *was;
            *was = MOVED;
            from->n--;
        } else {
            size_t klen = strlen(key);
            e = calloc(1, sizeof(*e) + klen + 1);
            if (e == NULL)
                return NULL;
            e->hash = h;
            memcpy(e->key, key, klen + 1);
            memcpy(e->digest, digest, 64);
            e->generation = 1;
        }
        *at = e;
        t->n++;
    }
    if (strncmp(e->digest, digest, 64) != 0) {
        memcpy(e->digest, digest, 64);
        e->generation++;
    }
    return e;
}

uint64_t ag_track_generation(const struct ag_track_entry *e)
{
    return e->generation;
}

time_t ag_track_condition(struct ag_track_entry *e, enum ag_cond_type type, const char *status,
                          time_t now)
{
    if ((int)type < 0 || type >= AG_COND_N)
        return now;
    unsigned char s = status_code(status);
    if (e->status[type] != s) {
        e->status[type] = s;
        e->since[type] = (int64_t)now;
    }
    return (time_t)e->since[type];
}
