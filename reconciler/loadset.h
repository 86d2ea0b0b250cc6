/* What reading a manifest directory produces (load.c) and what the build
 * passes with containment consume (contain.c). Internal to the reconciler. */
#ifndef ALBD_RECONCILER_LOADSET_H
#define ALBD_RECONCILER_LOADSET_H

#include <stdbool.h>
#include <stddef.h>

#include "reconciler/doc.h"
#include "reconciler/err.h"
#include "reconciler/load.h"
#include "reconciler/source.h"

struct rc_mfile {
    const char *path;  /* as walked */
    bool damaged;      /* could not be read, or is not valid YAML: none of its documents count */
    bool unidentified; /* a document without a known kind or a name */
    /* Its identity when read (fstat of the open file), whether that was
     * settled, its size and the SHA-256 of its bytes. */
    struct rc_fid id;
    bool settled;
    bool watchable; /* changes.h */
    size_t len;
    unsigned char digest[32];
    /* Its documents were taken from the running model (prev_mfile): the
     * file was not opened. */
    const struct rc_kept_mfile *prev_mfile;
    size_t n_docs; /* documents of this file in the load set */
};

struct rc_loadset {
    struct rc_arena *tmp; /* load-scoped: file names, documents */
    struct rc_mfile *files;
    size_t n_files;
    /* Folders below the manifest directory that could not be read: what
     * the previous model had from files below them is kept. */
    const char **bad_dirs;
    size_t n_bad_dirs;
    struct rc_doc **docs; /* in file order, then document order */
    size_t n_docs;
    char digest[65];  /* SHA-256 over the files' relative paths and bytes */
    const char *root; /* realpath of the manifest folder, or NULL */
    /* What the model's root becomes: root, or the folder as given. */
    const char *model_root;
    /* The walk found every file with no error and entered no linked
     * folder: a later load told that nothing was created, removed or
     * renamed (changes.h) may take the same list. walk_reused: this load
     * did (and so inherits walk_reusable from prev). */
    bool walk_reusable, walk_reused;
    size_t errs_before; /* errs->n when the load began */
};

/* Builds the model from S's documents (schema-validated already), with
 * containment unless o->strict; see rc_load_dir_ex(). */
int rc_contain_build(struct rc_loadset *S, const struct rc_load_opts *o, struct rc_model **out,
                     struct rc_errs *errs, struct rc_status *st);

#endif
