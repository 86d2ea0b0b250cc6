/* The manifest folder's ignore file, .albdignore, in gitignore syntax: the
 * files and folders the load (load.c) does not read and the agent's watcher
 * (agent/watch.c) does not reconcile for. Pure matching over paths
 * relative to the manifest folder; only rc_ignore_load touches the file
 * system. Used by the reconciler and the agent.
 *
 * Syntax, as gitignore(5): one pattern a line; blank lines and lines
 * starting with '#' match nothing; trailing spaces are dropped unless
 * escaped with '\'; "!" negates (a later line overrides an earlier one;
 * "\!" and "\#" start a pattern with a literal '!' or '#'); a trailing '/'
 * matches folders only; a pattern with a '/' at its start or in its middle
 * is anchored to the manifest folder ("/a.yaml" is only the top-level
 * a.yaml), one without matches a name at any depth; "*", "?" and "[...]"
 * match within one path segment (fnmatch(3), so "*" also matches a
 * leading dot); "**" as a whole segment matches segments: first, in
 * every folder; last, everything below the folder before it (one segment
 * or more); in the middle, zero or more folders; "**" within a segment is
 * a "*". A file below an ignored folder
 * cannot be re-included by a negation: the folder is never read. Only
 * the ignore file at the top of the manifest folder is read. */
#ifndef ALBD_RECONCILER_IGNORE_H
#define ALBD_RECONCILER_IGNORE_H

#include <stdbool.h>
#include <stddef.h>

/* The ignore file's name, at the top of the manifest folder. */
#define RC_IGNORE_FILE ".albdignore"

/* The largest ignore file read (RC_IGNORE_MAX_BYTES), and the most path
 * segments a pattern may have (lines with more are left out: no path the
 * walk reaches is that deep). */
#define RC_IGNORE_MAX_BYTES (1u << 20)
#define RC_IGNORE_MAX_SEGMENTS 64

struct rc_ignore;

/* Parses text (len bytes, gitignore syntax; need not be NUL-terminated).
 * Returns a new matcher (rc_ignore_free), or NULL when out of memory. */
struct rc_ignore *rc_ignore_parse(const char *text, size_t len);

/* Reads dir/.albdignore. Returns 0 with *out the matcher, or with *out NULL
 * when there is no such file; or a negative errno, -RC_ENOTREG
 * (readall.h) when it is not a regular file, -EFBIG past
 * RC_IGNORE_MAX_BYTES, with *out NULL (rc_read_strerror says what). */
int rc_ignore_load(const char *dir, struct rc_ignore **out);

/* The number of patterns ig holds (0 for NULL). */
size_t rc_ignore_count(const struct rc_ignore *ig);

/* Whether rel (a path relative to the manifest folder, '/'-separated, no
 * leading "./" or '/') is ignored by its own name: the last pattern that
 * matches it decides, none means not ignored. is_dir: rel names a folder.
 * Does not look at the folders above rel (see rc_ignore_path). NULL ig
 * ignores nothing. */
bool rc_ignore_match(const struct rc_ignore *ig, const char *rel, bool is_dir);

/* Whether rel is ignored, by its own name or because a folder above it
 * is: what a walk that never enters an ignored folder skips. */
bool rc_ignore_path(const struct rc_ignore *ig, const char *rel, bool is_dir);

/* Frees ig; NULL is a no-op. */
void rc_ignore_free(struct rc_ignore *ig);

#endif
