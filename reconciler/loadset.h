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

/* What this load read of a manifest file: its identity when read (fstat
 * of the open file), its size and the SHA-256 of its bytes. */
struct rc_mfile_read {
    struct rc_fid id;
    size_t len;
    unsigned char digest[32];
};

/* One manifest file of the load: 40 bytes, one per file (10,000s), the
 * facts of a file that was not read being prev_mfile's own. */
struct rc_mfile {
    const char *path; /* as walked */
    /* What this load read (in the load set's arena), or NULL when its
     * documents were taken from the running model's prev_mfile, whose
     * identity, size and digest are the file's: it was not opened. */
    const struct rc_mfile_read *read;
    const struct rc_kept_mfile *prev_mfile;
    size_t n_docs;     /* documents of this file in the load set */
    bool damaged;      /* could not be read, or is not valid YAML: none of its documents count */
    bool unidentified; /* a document without a known kind or a name */
    bool settled;      /* its identity may be trusted by the next load */
    bool watchable;    /* changes.h */
};

/* f's identity, size and digest: what this load read, or prev_mfile's. */
static inline const struct rc_fid *rc_mfile_id(const struct rc_mfile *f)
{
    return f->read ? &f->read->id : &f->prev_mfile->id;
}
static inline size_t rc_mfile_len(const struct rc_mfile *f)
{
    return f->read ? f->read->len : f->prev_mfile->len;
}
static inline const unsigned char *rc_mfile_digest(const struct rc_mfile *f)
{
    return f->read ? f->read->digest : f->prev_mfile->digest;
}

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
