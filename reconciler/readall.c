/* rc_read_all: see readall.h. */
#include "reconciler/readall.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <unistd.h>

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
