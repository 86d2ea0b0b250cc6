/* What a model keeps of its resources' manifests so that a later load can
 * rebuild a resource's last good version when its new one is invalid.
 * Internal to the reconciler. */
#ifndef ALBD_RECONCILER_SOURCE_H
#define ALBD_RECONCILER_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "reconciler/filecache.h"
#include "reconciler/model-t.h"

struct rc_source {
    const char *kind; /* static kind string */
    const char *name;
    const char *file; /* the manifest file as walked */
    const char *dir;  /* its absolute folder (relative paths) */
    const char *text; /* the document's YAML, NUL-terminated */
    size_t len;
    int line, col; /* where text starts in file */
    /* The resource the model built from text (a struct in the model's own
     * arrays; NULL for kinds the model does not hold) and the arena its
     * strings and arrays live in: the model's data arena, or, for a
     * resource copied from an earlier model, that one's origin (the model
     * holds it: rc_arena_hold). A later load whose document is
     * byte-identical copies the resource instead of building it again. */
    const void *res;
    struct rc_arena *origin;
    /* The record itself lives in origin (the load that built res made
     * it): a later model whose copy of the resource is res itself (a
     * certificate shared by pointer, reuse.h) at the same place takes this
     * record instead of a copy of it; it holds origin already, for res. A
     * record of a copy that differs (a listener copied into the new
     * model's arrays, a document moved in its file) lives with its model
     * and is not taken. */
    bool home;
    /* The bytes of origin that this resource and its text take (what its
     * build allocated there, and the copies of text, name and paths): a
     * later load weighs them against origin's footprint to find arenas
     * kept alive for a few small resources (reuse.h rc_reuse_plan). 32
     * bits, next to home: a record per resource, 10,000s of them (a
     * manifest file is at most 8 MiB: reconciler/load.c). */
    uint32_t bytes;
};

/* A manifest file a model was loaded from. When its document's resources
 * are all in the model exactly as written and it caused no diagnostic
 * (clean), and its identity is the settled one recorded here (the rule of
 * filecache.h), the next load takes its documents from docs without
 * opening, reading or parsing it. */
struct rc_kept_mfile {
    const char *path; /* as walked */
    struct rc_fid id;
    bool settled, clean;
    /* The record (with path and docs) lives in the origin of every one of
     * its documents' sources, and each of those is home: a later model
     * that takes all those sources as they are (so holds that arena) and
     * finds the file unchanged takes this record too. */
    bool home;
    bool watchable;                /* changes.h: the next load may skip its stat */
    size_t len;                    /* its size in bytes */
    unsigned char digest[32];      /* SHA-256 of its bytes */
    const struct rc_source **docs; /* clean only: its documents, in file order */
    size_t n_docs;
};

/* Every resource of a model that came from a document, sorted by kind,
 * then name. Lives in the model's arena. */
struct rc_sources {
    /* Records a later model may share (home), so pointers: an unchanged
     * certificate's records are the same structs in every model, and a
     * reload of 10,000 certificates makes ~4 MiB less of them. */
    const struct rc_source **v;
    size_t n;
    /* The certificate/key files the model's certificates were read from,
     * with their identities: the next load skips reading unchanged ones. */
    struct rc_kept_files kept;
    /* The manifest files, sorted by path. */
    const struct rc_kept_mfile **mfiles;
    size_t n_mfiles;
    /* mfiles is the complete result of walking the folder (loadset.h). */
    bool walk_reusable;
};

/* The sources of m, or NULL for a model the loader did not build. */
const struct rc_sources *rc_model_sources(const struct rc_model *m);

/* The source of kind/name in s (may be NULL), or NULL. */
const struct rc_source *rc_sources_find(const struct rc_sources *s, const char *kind,
                                        const char *name);

#endif
