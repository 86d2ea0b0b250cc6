/* Loading with per-resource containment (the default of `albd run`): a
 * resource that fails keeps its last good version, or stays absent if it
 * never had one, and so does everything that depends on it, while every
 * other change applies. rc_load_dir() (rc.h) is the strict, all-or-nothing
 * form that `albd validate` and `albd plan` use. */
#ifndef ALBD_RECONCILER_LOAD_H
#define ALBD_RECONCILER_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "reconciler/changes.h"
#include "reconciler/err-t.h"
#include "reconciler/model-t.h"

/* A resource the caller knows to be invalid although its manifest is fine:
 * what only applying can reveal, such as a Listener whose port will not
 * bind. */
struct rc_invalid {
    const char *kind; /* "Listener" */
    const char *name;
    const char *reason; /* shown in the status ("cannot listen on ...") */
    bool absent;        /* its last good version fails too: drop it */
};

struct rc_load_opts {
    time_t now; /* for certificate validity */
    /* The running model (the caller keeps its reference), or NULL. The
     * source of its last good versions and of parsed certificate facts: a
     * certificate whose PEM bytes are unchanged is not parsed again. */
    const struct rc_model *prev;
    bool strict; /* all or nothing: any error fails the whole load */
    /* A document of another API in the folder (apiVersion not "albd/...": a
     * kustomization.yaml, a Kubernetes Deployment) is an error instead of
     * a skipped document with a note (--refuse-foreign). */
    bool refuse_foreign;
    const struct rc_invalid *invalid;
    size_t n_invalid;
    /* Every path under the folder that changed since prev's load began
     * (changes.h), from the agent's watcher; a file it does not name that
     * prev recorded as watchable is taken from prev without a stat. NULL:
     * unknown — the first load, SIGHUP, an inotify overflow, plan and
     * validate — and every file is checked. */
    const struct rc_changes *changes;
    /* The time the load begins, that file timestamps are judged settled
     * against (filecache.h); NULL: clock_gettime(CLOCK_REALTIME). Only
     * tests set it, so that "read within the settle window" does not
     * depend on how fast the machine is. */
    void (*realtime)(struct timespec *now);
    /* The certificate cache the agent's certificate-service client writes
     * (model-t.h RC_CERT_CACHE_*): service certificates are read from it
     * like source.files. NULL: service certificates are not looked up
     * (validate). */
    const char *cert_cache_dir;
    /* A service certificate not in the cache: when true a listener naming
     * it is invalid (run: it waits, others serve); when false only a
     * warning (plan: it cannot show the certificate's facts). */
    bool cert_pending_is_error;
    /* A certificate's privateKey file that does not exist is a warning,
     * and the certificate is compared by its public facts (plan in a CI
     * checkout without keys); false: an error (run, validate). */
    bool keys_optional;
    /* A one-shot command (validate, plan): no TLS context will take the
     * parsed certificates, so the load keeps only their facts, freeing each
     * one's OpenSSL objects as it is parsed (certstore.h
     * rc_certstore_acquire_facts()), and sweeps the store after: peak
     * memory holds no parsed key. Never set in a process that serves (the
     * sweep is process-wide). No later load takes
     * the model's records either, so what only such a load would use
     * (whether files are watchable: changes.h) is not worked out. */
    bool release_parsed;
    /* Called once, as soon as the model *out will return is complete (its
     * digest and root set) and before the rest of the load: the records a later load takes
     * from it (reconciler/source.h: rc_model_sources() is NULL until then), the status, the
     * expiry warnings of certificates copied from prev, freeing the
     * scratch. A caller that serves the model (agent/run.c) applies it
     * from here, those milliseconds sooner; rc_load_dir_ex then returns
     * this model with 0 or 1 whatever else fails (a record it could not
     * keep costs the next load a full read, never the applied model).
     * The callee keeps m only by its own reference. NULL: not called. */
    void (*ready)(void *arg, struct rc_model *m);
    void *ready_arg;
    /* With ready: where the load leaves the expiry warnings of the
     * certificates it copied from prev, instead of adding them to errs,
     * when they are certificates of the model it returns (not after a
     * containing pass: then they go to errs). The caller reports them
     * (rc_late_expiries_report) while it holds that model, or drops them.
     * At 10,000 short-lived certificates they are ~2 MiB of strings, and
     * the agent writes them once the load's scratch is given back rather
     * than beside it at the reload's peak. NULL: to errs. */
    struct rc_late_expiries *late_expiry;
};

/* Expiry warnings a load left to its caller (rc_load_opts.late_expiry):
 * the certificates they are about. */
struct rc_late_expiries {
    const struct rc_certificate **v; /* malloc'd */
    size_t n;
    time_t now; /* the load's rc_load_opts.now */
};

/* Adds them to errs, as the load would have, and frees them (x is empty
 * after). Their certificates are the returned model's: hold it. */
void rc_late_expiries_report(struct rc_late_expiries *x, struct rc_errs *errs);

/* Frees them unreported (the model was not kept). */
void rc_late_expiries_drop(struct rc_late_expiries *x);

enum rc_res_state {
    RC_RES_READY,   /* the version in the manifests is in the model */
    RC_RES_KEPT,    /* invalid: the model keeps its last good version */
    RC_RES_ABSENT,  /* invalid and never good: not in the model */
    RC_RES_BLOCKED, /* valid, but not applied: --strict and something else is invalid */
};

/* One resource of the manifests or of the previous model. Resources that
 * were deleted (and are not kept for a dependent) are not listed. */
struct rc_res_status {
    const char *kind; /* static string */
    char *name;       /* in rc_status.names */
    enum rc_res_state state;
    /* Why it is not READY: the first error ("spec.port: ..."), never secret;
     * NULL when READY. file is NULL and line 0 when unknown. */
    char *message;
    char *file;
    int line, col;
};

struct rc_status {
    struct rc_res_status *v; /* sorted by kind, then name */
    size_t n;
    char *names; /* one block holding every entry's name */
    /* Certificates whose PEM was parsed, and those whose facts were taken
     * from a byte-identical earlier parse (prev, or an earlier pass). */
    size_t certs_parsed, certs_reused;
    /* Certificate and key files opened and read, and those whose bytes were
     * taken from prev because their identity (filecache.h) is unchanged. */
    size_t files_read, files_reused;
    /* Files (certificate, key and manifest) taken from prev without a stat
     * because the watcher reported no change under their path. */
    size_t files_unstatted;
    unsigned passes; /* build passes the load took (1 when all is valid) */
    /* Resources of the model copied from the running model (byte-identical
     * document, unchanged inputs) instead of being built again. */
    size_t resources_copied;
    /* Unchanged resources built again instead of copied because the memory
     * they would have kept alive was mostly unused (reuse.h, compaction). */
    size_t resources_compacted;
    /* Manifest files opened and read; those whose documents were taken
     * from the running model because the file's identity is unchanged
     * (not opened); and YAML documents this load parsed. */
    size_t manifests_read, manifests_skipped, docs_parsed;
};

void rc_status_init(struct rc_status *st);
void rc_status_cleanup(struct rc_status *st);
/* "Ready", "KeptLastGood", "Absent", "Blocked". */
const char *rc_res_state_name(enum rc_res_state s);
/* The entry for kind/name, or NULL. */
const struct rc_res_status *rc_status_find(const struct rc_status *st, const char *kind,
                                           const char *name);

/* Loads dir like rc_load_dir() and, unless o->strict, contains invalid
 * resources: the model holds every valid resource; for each invalid one
 * (an error in its document, a reference to a resource that is invalid and
 * absent, an entry of o->invalid, or a document in a file that does not
 * parse) its version from o->prev, rebuilt from the source o->prev keeps
 * (certificates from o->prev's PEM bytes, never from files that may have
 * changed), or nothing when o->prev has none or it no longer fits; and the
 * resources o->prev had from a file that does not parse keep their versions.
 *
 * Every error goes to errs as rc_load_dir() reports it, plus one for each
 * resource that fails only because of what it depends on. st (may be NULL;
 * rc_status_init'ed, its old entries are replaced) gets one entry per
 * resource.
 *
 * Returns 0 with *out set (one reference) when every resource is READY;
 * 1 with *out set when some are contained (the model differs from the
 * manifests: its digest then also covers which resources were kept or left
 * out, so that the same files with different outcomes give different
 * digests); -1 with *out NULL when nothing can be applied: --strict and an
 * error, the directory cannot be read, or out of memory.
 *
 * Contract for the agent (ag_reconcile): call with prev = the running model
 * and strict = --strict; apply *out; when applying reports a Listener whose
 * port will not bind, call again with that Listener added to invalid (and
 * absent = true if it was already there), then apply that result. */
int rc_load_dir_ex(const char *dir, const struct rc_load_opts *o, struct rc_model **out,
                   struct rc_errs *errs, struct rc_status *st);

/* Whether a file of this name is read as a manifest (*.yaml, *.yml), when
 * no ignore rule says otherwise. */
bool rc_is_manifest_name(const char *name);

#endif
