/* rc_read_all: see readall.h. */
#include "reconciler/readall.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int rc_open_regular(const char *path, struct stat *st)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, st) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        return -RC_ENOTREG;
    }
    return fd;
}

const char *rc_read_strerror(int err)
{
    if (err == RC_ENOTREG)
        return "not a regular file (a FIFO, device, socket or folder is never read)";
    return strerror(err);
}

int rc_read_all(int fd, size_t size_hint, size_t max, bool secret, char **out, size_t *len)
{
    size_t cap = size_hint > 0 && size_hint <= max ? size_hint + 2 : 4096;
    char *buf = malloc(cap);
    size_t n = 0;
    int rc = buf ? 0 : -ENOMEM;
    while (rc == 0) {
        if (n + 1 == cap) {
            if (cap > max) {
                rc = -EFBIG;
                break;
            }
            char *p = realloc(buf, cap * 2);
            if (p == NULL) {
                rc = -ENOMEM;
                break;
            }
            buf = p;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = -errno;
        else if (r == 0)
            break;
        else
            n += (size_t)r;
    }
    if (rc == 0 && n > max)
        rc = -EFBIG;
    if (rc != 0) {
        if (buf) {
            if (secret)
                OPENSSL_cleanse(buf, n);
            free(buf);
        }
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}
