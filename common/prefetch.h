/* Reading ahead for cold loads: a thread of its own opens each file and
 * asks the kernel to read it (posix_fadvise POSIX_FADV_WILLNEED), so that
 * a load of thousands of small files on a cold page cache (a start after a
 * reboot, `albd validate` in CI) keeps the disk's queue full instead of
 * waiting for one small read at a time. 10,000 certificates in their own
 * files (../shared/bench/bigconfig.sh's layout, 30,000 files in all):
 * `albd validate` took 2.9-3.3 s after `echo 1 > /proc/sys/vm/drop_caches`
 * and 1.3 s warm; with the read-ahead 1.3 s either way. A hint only:
 * nothing depends on it having run, and files are opened as the loader
 * opens them (non-blocking, never a FIFO or device read). */
#ifndef ALBD_COMMON_PREFETCH_H
#define ALBD_COMMON_PREFETCH_H

#include <stddef.h>

struct cm_prefetch;

/* Starts reading paths[0..n) ahead, in order (NULL entries are skipped;
 * the strings are copied). NULL when no thread or memory was available:
 * then nothing is read ahead. */
struct cm_prefetch *cm_prefetch_start(const char *const *paths, size_t n);

/* Stops the thread after the file it is at, waits for it and frees; NULL
 * is a no-op. Returns how many regular files were advised. */
size_t cm_prefetch_end(struct cm_prefetch *p);

#endif
