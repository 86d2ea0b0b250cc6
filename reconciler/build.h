/* The state of one rc_load_dir() run, shared by the files that turn the
 * loaded documents into the model, and the build driver. Internal to the
 * reconciler.
 *
 * Who calls whom (no file calls back into a file that calls it):
 *   load.c, contain.c -> build.c (rc_build_model)
 *   build.c -> instance.c cert.c policy.c group.c listener.c unsupported.c
 *              resolve.c (documents by kind), field.c
 *   the kind files -> resolve.c reuse.c meta.c field.c (leaves)
 *   resolve.c, meta.c -> field.c */
#ifndef ALBD_RECONCILER_BUILD_H
#define ALBD_RECONCILER_BUILD_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <time.h>

#include "reconciler/doc.h"
#include "reconciler/err.h"
#include "reconciler/filecache.h"
#include "reconciler/model-t.h"

struct rc_reuse_plan;

/* A resource that is invalid and has no version to fall back to: a
 * reference to it is a dependency failure, and an Instance of that name
 * still counts (no implicit "default" instance appears in its place). */
struct rc_broken {
    const char *kind; /* static kind string */
    const char *name;
};

/* A reference that did not resolve during a containment pass: lets the
 * load keep a deleted resource that a kept (last good) version still uses. */
struct rc_missing {
    const struct rc_doc *from; /* the referring document */
    const char *kind;          /* static kind string of the target */
    const char *name;          /* the target's name (points into from->y) */
    size_t err_index;          /* the error reported for it in L->errs */
};

/* A forwarding rule a containment pass left out of its listener because a
 * ServerGroup it forwards to is invalid and has no version to use
 * (rules.c): the listener and its other rules apply without it. */
struct rc_contained_rule {
    const struct rc_doc *d; /* the listener's document */
    const char *rule;       /* the rule's name (L->arena) */
    int priority;
    const char *group; /* the group's name (points into d->y) */
    struct rc_loc loc; /* the rule's */
    size_t index;      /* spec.rules[index] */
};

/* A certificate whose PEM cert.c queued for parsing with the others of its
 * pass (rc_finish_certificates()), with what its checks report at. */
struct rc_cert_todo {
    struct rc_doc *d;
    struct rc_certificate *c;
    yaml_node_t *files; /* spec.source.files, or spec.source.service */
    yaml_node_t *where;
    const char *wpath;
    int rc; /* what rc_build_certificate() found before the parse */
};

struct rc_cert_batch {
    struct rc_cert_todo *v; /* malloc'd by build.c, one per Certificate document */
    size_t n, cap;
};

/* One build pass: the documents to build from and where the model goes. A
 * load runs one pass, or several when it contains invalid resources
 * (contain.c); each pass builds a new model in its own arena. */
struct rc_load {
    struct rc_model *m;
    struct rc_arena *arena; /* == m->arena */
    struct rc_errs *errs;
    time_t now;
    struct rc_doc **dv; /* the documents of this pass */
    size_t n_dv;
    SSL_CTX *scratch; /* security level 0, to ask OpenSSL which cipher names it knows */

    int pass;                       /* 1 for the first build of a load */
    bool contain;                   /* report references to missing resources as this
                                     * resource's own failure and record them in missing */
    const struct rc_model *prev;    /* the running model: certificate facts to reuse; may be NULL */
    const struct rc_broken *broken; /* sorted by kind, then name */
    size_t n_broken;
    struct rc_missing *missing; /* malloc'd, grows */
    size_t n_missing, cap_missing;
    struct rc_contained_rule *contained; /* malloc'd, grows; this pass's */
    size_t n_contained, cap_contained;
    bool oom;
    /* Certificates whose PEM this load parsed, and those whose facts it took
     * from an earlier parse of byte-identical PEM. */
    size_t certs_parsed, certs_reused;
    /* Certificates of this pass waiting for their parse (cert.c); set by
     * build.c. */
    struct rc_cert_batch *cert_batch;
    /* Certificate/key files read by this load (filecache.h), across passes. */
    struct rc_filecache *files;
    /* rc_load_opts.cert_cache_dir, cert_pending_is_error, keys_optional. */
    const char *cert_cache_dir;
    bool cert_pending_is_error;
    bool keys_optional;
    /* rc_load_opts.release_parsed. */
    bool release_parsed;
    /* Arenas of earlier loads this load builds from instead of copying
     * (rc_reuse_plan), and the resources it did not copy because of them. */
    const struct rc_reuse_plan *plan;
    size_t compacted;
    /* rc_doc_own_file's last copy (made by pass own_file_pass):
     * consecutive documents of one file share it. */
    const char *own_file_src, *own_file;
    int own_file_pass;
    /* Certificates copied by pass 1 that are near expiry, when their
     * warnings wait until the model is served (defer_expiry:
     * rc_load_opts.ready is set): 10,000 warnings are formatted after the
     * apply, not before it (cert.c, contain.c). malloc'd. */
    bool defer_expiry;
    /* What copied listeners are checked against (reuse.h), while the
     * listeners are built (build.c); else NULL. */
    struct rc_copy_ctx *copy_ctx;
    const struct rc_certificate **late_expiry; /* in pass 1's model */
    size_t n_late_expiry, cap_late_expiry;
};

/* Points d->file at a copy in the pass's data arena, once per pass (the
 * copy is shared with the file's other documents built next to it). Every
 * build of a document calls it first: locations it stores in the model
 * (rc_y_loc) then live as long as the model. Copied documents never need
 * it, so that 10,000 unchanged files cost the new arena nothing. Returns
 * 0 or -1 when out of memory. */
int rc_doc_own_file(struct rc_load *L, struct rc_doc *d);

/* Builds every model array from the documents that passed the schema and
 * runs the semantic checks (build.c, the driver: each kind is built and
 * copied by its own file, instance.c, cert.c, policy.c, group.c,
 * listener.c). Errors go to L->errs. Returns -1 when out of memory,
 * else 0. */
int rc_build_model(struct rc_load *L);

#endif
