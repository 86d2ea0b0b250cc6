/* A bump allocator: one per model, freed at once. Not thread-safe for
 * allocation; a model's arena is only written while rc_load_dir() builds it. */
#ifndef ALBD_RECONCILER_ARENA_H
#define ALBD_RECONCILER_ARENA_H

#include <stddef.h>

struct rc_arena;

/* A new, empty arena, or NULL when out of memory. */
struct rc_arena *rc_arena_new(void);

/* Drops one reference (rc_arena_new gives one); the last frees every block
 * of the arena, the arena itself, and its holds on other arenas. NULL is a
 * no-op. References are atomic: models share arenas across threads. */
void rc_arena_free(struct rc_arena *a);
struct rc_arena *rc_arena_ref(struct rc_arena *a);

/* Makes a keep other alive (one reference, taken once however often it is
 * asked) until a is freed: a model whose resources were copied from an
 * earlier load's points into that load's arena. other == a or NULL is a
 * no-op. Returns 0 or -1 when out of memory. */
int rc_arena_hold(struct rc_arena *a, struct rc_arena *other);

/* n zeroed bytes aligned for any type, valid until rc_arena_free(); NULL
 * when out of memory. n == 0 returns a valid unique pointer. */
void *rc_arena_alloc(struct rc_arena *a, size_t n);

/* Copies of s (NUL-terminated) and of the first n bytes of s (plus a NUL);
 * NULL when out of memory or when s is NULL. */
char *rc_arena_strdup(struct rc_arena *a, const char *s);
char *rc_arena_strndup(struct rc_arena *a, const char *s, size_t n);
/* rc_arena_strndup for secret bytes (a private key): the copy is wiped
 * (OPENSSL_cleanse) when the arena is freed. */
char *rc_arena_strndup_secret(struct rc_arena *a, const char *s, size_t n);

/* The memory a takes: its blocks (with their headers and unused tails)
 * and its own records. rc_arena_used: the bytes handed out by
 * rc_arena_alloc (and the str* copies) so far, each rounded up to the
 * alignment; the difference of two readings is what was allocated in
 * between. rc_arena_footprint_held: a's footprint plus that of each arena
 * it holds (one level: a model's arena holds its data arenas, which hold
 * none). All three are 0 for NULL. Read them only while nothing allocates
 * in the arena (a model's arenas are immutable once it is built). */
size_t rc_arena_footprint(const struct rc_arena *a);
size_t rc_arena_used(const struct rc_arena *a);
size_t rc_arena_footprint_held(const struct rc_arena *a);

/* One pointer the arena's owner may attach (the reconciler keeps a model's
 * private data, such as its resources' sources, there). NULL until set. */
void rc_arena_set_user(struct rc_arena *a, void *p);
void *rc_arena_user(const struct rc_arena *a);

#endif
