/* Errors as values: every problem the reconciler finds is one struct rc_err
 * with the source location it concerns. Only the agent prints them. */
#ifndef ALBD_RECONCILER_ERR_T_H
#define ALBD_RECONCILER_ERR_T_H

#include <stddef.h>

/* A place in a manifest file. line and col are 1-based; 0 means unknown
 * (an error about a whole file has line 0). file is the path as found when
 * walking the manifest directory. */
struct rc_loc {
    const char *file;
    int line;
    int col;
};

enum rc_severity {
    RC_ERROR = 0,   /* the resource (or file) is invalid */
    RC_WARNING = 1, /* valid, but worth telling (e.g. certificate expires soon) */
    RC_NOTE = 2,    /* for information (e.g. a document of another API, skipped) */
};

/* The strings of an entry lie together, msg first, in memory of its list
 * (err.c): only rc_errs_cleanup frees them; never free or replace a
 * field. */
struct rc_err {
    enum rc_severity severity;
    char *file;    /* copy; NULL when not about a file */
    int line, col; /* 1-based; 0 = unknown */
    char *kind;    /* resource kind ("Listener"), NULL if not about one */
    char *name;    /* resource metadata.name, NULL if unknown */
    char *path;    /* field path, e.g. "spec.tls.certificate"; NULL if none */
    char *msg;     /* human-readable message, no trailing newline, never secret */
};

/* A growable list of errors. Zero-initialise or rc_errs_init(). */
struct rc_errs_block;
struct rc_errs {
    struct rc_err *v;
    size_t n, cap;
    struct rc_errs_block *blocks; /* where the entries' strings live (err.c) */
};

#endif
