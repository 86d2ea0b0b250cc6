/* Certificate and key files read once per change, not once per load.
 *
 * A model keeps, for every certificate/key file its certificates were read
 * from, the file's identity and the bytes read (rc_kept_files, in the
 * model's private data). A later load stats the file and, when the identity
 * is the same and was settled when it was recorded, takes the bytes from
 * the previous model instead of opening and reading the file. Within one
 * load every path is read at most once (a key shared by many certificates).
 * Internal to the reconciler.
 *
 * The identity rule (what git, make and Kubernetes rely on): st_dev,
 * st_ino, st_size, st_mtim and st_ctim all equal. A rename-replace gives a
 * new inode; any write or chmod moves ctime, which no user can set back.
 * What it cannot see is a change within the same timestamp tick as the read
 * ("racy git"): a file whose mtime or ctime is later than RC_FID_SETTLE_NS
 * before the load began is recorded as unsettled and read again next time,
 * so only files that were already quiet when read are ever skipped. */
#ifndef ALBD_RECONCILER_FILECACHE_H
#define ALBD_RECONCILER_FILECACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "reconciler/changes.h"

struct rc_arena;
struct rc_model;

/* Well above the coarsest file timestamp tick Linux file systems use (one
 * jiffy, at most 10 ms). */
#define RC_FID_SETTLE_NS 100000000LL

struct rc_fid {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtim, ctim;
};

/* One file a model's certificates were read from. bytes live in an arena
 * the model holds (they are the certificate's own PEM). */
struct rc_kept_file {
    const char *path; /* absolute, as the certificate names it */
    uint64_t hash;    /* cm_hash_str(path) */
    struct rc_fid id;
    bool settled; /* id may be trusted by the next load */
    /* The record lives in the arena of bytes (the load that read the file
     * made both): a later model that keeps the same bytes under the same
     * identity takes this record, not a copy; it holds that arena for its
     * certificate's sake. */
    bool home;
    /* A plain file in the manifest folder's tree (changes.h): the next
     * load may trust it without a stat unless the watcher names it. */
    bool watchable;
    const char *bytes;
    size_t len;
};

struct rc_kept_files {
    /* In no particular order: found through index. Pointers: records are
     * shared between models (home). */
    const struct rc_kept_file **v;
    size_t n;
    /* Open-addressing index by path hash (1 + position in v, 0 = empty;
     * index_cap a power of two); NULL only when n is 0. */
    unsigned *index;
    size_t index_cap;
};

void rc_fid_from_stat(struct rc_fid *id, const struct stat *st);
bool rc_fid_equal(const struct rc_fid *a, const struct rc_fid *b);
/* Whether a file of identity id had been quiet for RC_FID_SETTLE_NS when a
 * load that began at start read it. */
bool rc_fid_settled(const struct rc_fid *id, const struct timespec *start);

/* The load-scoped table of the files read so far. */
struct rc_filecache;

/* A new table for a load that began at start (CLOCK_REALTIME), taking
 * reusable bytes from prev (the previous model's kept files, may be NULL;
 * it must outlive the table). root is the real path of the manifest folder
 * (NULL: unknown) and changes what the watcher saw change under it since
 * prev was loaded (NULL: unknown); both must outlive the table. NULL when
 * out of memory. */
struct rc_filecache *rc_filecache_new(const struct rc_kept_files *prev,
                                      const struct timespec *start, const char *root,
                                      const struct rc_changes *changes);
void rc_filecache_free(struct rc_filecache *fc);

/* The load is a one-shot command's (rc_load_opts.release_parsed): no later
 * load takes its records, so whether a file is watchable (changes.h) is
 * not worked out; its files all record watchable false. */
void rc_filecache_one_shot(struct rc_filecache *fc);

/* The bytes of path (hash: cm_hash_str(path)) (NUL-terminated) in *out
 * and *len, and path itself in *apath; both in arena a and shared by
 * every call for the same path and arena in this load, so that 10,000
 * certificates with one key hold one copy of it, and a later load finds
 * their path by pointer. Returns 0, or -errno (-ENOMEM when out of memory,
 * -EFBIG past 1 MiB, -RC_ENOTREG when path is not a regular file:
 * readall.h); *apath is set only on 0. May contain a secret:
 * callers never print the bytes. */
int rc_filecache_read(struct rc_filecache *fc, struct rc_arena *a, const char *path, uint64_t hash,
                      const char **apath, const char **out, size_t *len);
/* A build pass with a new arena begins: copies made so far are not shared
 * with it (their arena may be freed, and a new one take its address). */
void rc_filecache_new_arena(struct rc_filecache *fc);

/* Whether path (hash: cm_hash_str(path)) still holds bytes (len), the
 * bytes a previous model read from it: the watcher reported no change to
 * it (changes.h), its identity is the settled one prev recorded (one
 * stat), or
 * this load read the same bytes. Counts as reused, once per path, and
 * later reads of path in this load take those bytes. False when it
 * changed, cannot be stat'ed, or is unknown (the caller then reads it). */
bool rc_filecache_unchanged(struct rc_filecache *fc, const char *path, uint64_t hash,
                            const char *bytes, size_t len);

/* Files opened and read by this load, and files whose bytes were taken
 * from the previous model because their identity was unchanged. */
size_t rc_filecache_n_read(const struct rc_filecache *fc);
size_t rc_filecache_n_reused(const struct rc_filecache *fc);
/* Of the reused ones, those not even stat'ed: the watcher vouched for them
 * (changes.h). */
size_t rc_filecache_n_unstatted(const struct rc_filecache *fc);

/* Fills out (its arrays in m's arena) with the files m's certificates were
 * read from in this load and whose bytes m holds unchanged: prev's record
 * when it is home and says the same, else a new one in data (m's data
 * arena, the one this load's last build pass read into). Returns 0 or -1
 * (out of memory). */
int rc_filecache_keep(const struct rc_filecache *fc, const struct rc_model *m,
                      struct rc_arena *data, struct rc_kept_files *out);

#endif
