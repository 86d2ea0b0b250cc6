/* Reading a whole file into memory, for the manifest walk (load.c) and the
 * certificate/key file table (filecache.c). */
#ifndef ALBD_RECONCILER_READALL_H
#define ALBD_RECONCILER_READALL_H

#include <stdbool.h>
#include <stddef.h>

/* Reads fd to its end into a malloc'd buffer (*out, NUL-terminated; *len
 * excludes the NUL; the caller frees it). size_hint: the expected size (0:
 * unknown), used for the first allocation when at most max. More than max
 * bytes: -EFBIG. secret: the bytes are wiped before a buffer holding them
 * is freed on failure (private keys). Does not close fd. Returns 0 or a
 * negative errno; on failure *out is untouched. */
int rc_read_all(int fd, size_t size_hint, size_t max, bool secret, char **out, size_t *len);

#endif
