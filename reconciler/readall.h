/* Reading a whole file into memory, for the manifest walk (load.c) and the
 * certificate/key file table (filecache.c). */
#ifndef ALBD_RECONCILER_READALL_H
#define ALBD_RECONCILER_READALL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

/* What rc_open_regular returns (negated) for a path that names something
 * other than a regular file; outside the errno range. */
#define RC_ENOTREG 4096

/* Opens path, a file a manifest names or a manifest itself, for reading
 * without ever blocking: O_NONBLOCK (a FIFO's open would wait for a
 * writer), O_NOCTTY, O_CLOEXEC; then refuses anything fstat does not call
 * a regular file (FIFO, device, socket, folder). Returns the descriptor
 * (the caller closes it) with *st filled, or a negative errno, or
 * -RC_ENOTREG. */
int rc_open_regular(const char *path, struct stat *st);

/* strerror for the errors of rc_open_regular and rc_read_all (positive). */
const char *rc_read_strerror(int err);

/* Reads fd to its end into a malloc'd buffer (*out, NUL-terminated; *len
 * excludes the NUL; the caller frees it). size_hint: the expected size (0:
 * unknown), used for the first allocation when at most max. More than max
 * bytes: -EFBIG. secret: the bytes are wiped before a buffer holding them
 * is freed on failure (private keys). Does not close fd. Returns 0 or a
 * negative errno; on failure *out is untouched. */
int rc_read_all(int fd, size_t size_hint, size_t max, bool secret, char **out, size_t *len);

#endif
