/* The state of one rc_load_dir() run, shared by the files that turn the
 * loaded documents into the model. Internal to the reconciler. */
#ifndef ALBD_RECONCILER_BUILD_H
#define ALBD_RECONCILER_BUILD_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <time.h>

#include "reconciler/doc.h"
#include "reconciler/err.h"
#include "reconciler/filecache.h"
#include "reconciler/model-t.h"

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
    bool oom;
    /* Certificates whose PEM this load parsed, and those whose facts it took
     * from an earlier parse of byte-identical PEM. */
    size_t certs_parsed, certs_reused;
    /* Certificate/key files read by this load (filecache.h), across passes. */
    struct rc_filecache *files;
};

/* Builds every model array from the documents that passed the schema and
 * runs the semantic checks (build.c). Errors go to L->errs. Returns -1 when
 * out of memory, else 0. */
int rc_build_model(struct rc_load *L);

/* Fills c from a Certificate document (cert.c): reads and parses the PEM,
 * checks key match and validity. Returns 0, -1 after appending errors, or
 * -2 when out of memory. */
int rc_build_certificate(struct rc_load *L, struct rc_doc *d, struct rc_certificate *c);

/* Whether c, valid at L->now, is far enough from its expiry that building
 * it would report nothing about its validity (cert.c). */
bool rc_cert_time_quiet(const struct rc_load *L, const struct rc_certificate *c);

/* Fills p from a TLSPolicy document (policy.c). Returns 0, -1 after
 * appending errors, or -2 when out of memory. */
int rc_build_policy(struct rc_load *L, struct rc_doc *d, struct rc_tls_policy *p);

/* The number of system policies and the i-th one, built into p (policy.c).
 * Returns 0 or -1 when out of memory. */
size_t rc_system_policy_count(void);
int rc_system_policy(struct rc_load *L, size_t i, struct rc_tls_policy *p);
/* Whether name is a system policy's name. */
bool rc_is_system_policy(const char *name);

/* Reports the fields of d that the contract accepts but albd does not
 * implement yet and that would be unsafe to ignore (unsupported.c). */
void rc_check_unsupported(struct rc_load *L, struct rc_doc *d);

/* Helpers shared by the builders (build.c). */
/* The node at a dotted path below n ("spec.tls.policy"), or NULL. */
yaml_node_t *rc_at(struct rc_doc *d, yaml_node_t *n, const char *dotted);
/* Appends an error at node n (or the document root when n is NULL). */
void rc_doc_err(struct rc_load *L, struct rc_doc *d, enum rc_severity sev, const yaml_node_t *n,
                const char *path, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Fills meta from d's envelope (kind, name, loc, labels) and digest from
 * the canonical spec followed by extra (may be NULL/0). Returns 0 or -1. */
int rc_fill_meta(struct rc_load *L, struct rc_doc *d, struct rc_meta *meta, const void *extra,
                 size_t extra_len, const void *extra2, size_t extra2_len);
/* Hex SHA-256 of data into out[65]. */
void rc_sha256_hex(const void *data, size_t len, char out[65]);

#endif
