/* Errors as values: a list of located problems (file:line:col, resource,
 * field path, message) that the reconciler fills and only the agent prints,
 * sorted and formatted one line each. */
#ifndef ALBD_RECONCILER_ERR_H
#define ALBD_RECONCILER_ERR_H

#include <stdio.h>
#include "reconciler/err-t.h"

void rc_errs_init(struct rc_errs *e);
void rc_errs_cleanup(struct rc_errs *e);

/* Makes room for n entries at once (a reload that will report about as
 * many as the last one: 10,000 certificates near expiry), instead of
 * doubling and copying as they come. Best effort: out of memory, it does
 * nothing. */
void rc_errs_reserve(struct rc_errs *e, size_t n);

/* Appends one error. loc may be NULL; kind, name, path may be NULL. The
 * message is printf-formatted. All strings are copied. Allocation failure
 * aborts the process (out of memory while reporting is not recoverable). */
void rc_errs_add(struct rc_errs *e, enum rc_severity sev, const struct rc_loc *loc,
                 const char *kind, const char *name, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* "error", "warning" or "note": how entries of sev are printed and shown
 * in /status. */
const char *rc_severity_name(enum rc_severity sev);

/* Number of entries with severity RC_ERROR. */
size_t rc_errs_count_errors(const struct rc_errs *e);

/* Sorts by file, line, column, then message, so output is deterministic. */
void rc_errs_sort(struct rc_errs *e);

/* Writes one line per entry: "file:line:col: error: path: message (Kind/name)"
 * ("warning:" for RC_WARNING, "note:" for RC_NOTE). Parts that are unknown are left out: no
 * ":line:col" when line is 0, no "file:..." prefix without a file, no
 * "path: " without a path, no "(Kind/name)" without a kind. */
void rc_errs_print(const struct rc_errs *e, FILE *out);

/* Formats one entry the same way into buf (truncated to size). Control
 * characters in any part (the message may quote manifest text) are
 * escaped, so that one entry is always one line: "\n", "\x1b", "\u0085". */
void rc_err_format(const struct rc_err *err, char *buf, size_t size);

#endif
