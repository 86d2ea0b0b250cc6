/* Another process listening on the same address: see sharecheck.h. */
#include "proxy/sharecheck.h"

#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Parses 8*words hex digits as the kernel prints an address in
 * /proc/net/tcp*: each 32-bit word with %08X of its in-memory value. */
static bool parse_addr(const char *hex, uint32_t *out, int words)
{
    if (strlen(hex) != (size_t)words * 8)
        return false;
    for (int i = 0; i < words; i++) {
        char w[9];
        memcpy(w, hex + i * 8, 8);
        w[8] = '\0';
        char *end;
        out[i] = (uint32_t)strtoul(w, &end, 16);
        if (*end)
            return false;
    }
    return true;
}

static bool all_zero(const uint32_t *a, int words)
{
    for (int i = 0; i < words; i++)
        if (a[i])
            return false;
    return true;
}

/* Whether socket inode ino is held by this process (a listener being
 * replaced still holds its old socket): scans /proc/self/fd. */
static bool ours(unsigned long ino)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return false;
    char want[64];
    snprintf(want, sizeof want, "socket:[%lu]", ino);
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        char path[300], link[64];
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(path, link, sizeof link - 1);
        if (n > 0) {
            link[n] = '\0';
            found = strcmp(link, want) == 0;
        }
    }
    closedir(d);
    return found;
}

int px_sharecheck_others(const struct sockaddr *addr, const int *fds, size_t n)
{
    int words;
    uint32_t want[4] = {0};
    unsigned port;
    const char *table;
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)addr;
        words = 1;
        memcpy(want, &a->sin_addr, 4);
        port = ntohs(a->sin_port);
        table = "/proc/net/tcp";
    } else if (addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)addr;
        words = 4;
        memcpy(want, &a->sin6_addr, 16);
        port = ntohs(a->sin6_port);
        table = "/proc/net/tcp6";
    } else {
        return -EAFNOSUPPORT;
    }
    FILE *f = fopen(table, "re");
    if (!f)
        return -errno;
    char line[512];
    int result = 0;
    if (!fgets(line, sizeof line, f)) /* the column titles */
        result = -EIO;
    while (result == 0 && fgets(line, sizeof line, f)) {
        char hex[40];
        unsigned lport, state;
        unsigned long ino;
        if (sscanf(line, " %*u: %39[0-9A-Fa-f]:%x %*s %x %*s %*s %*s %*u %*d %lu", hex, &lport,
                   &state, &ino) != 4)
            continue;
        uint32_t have[4];
        if (state != 0x0A /* TCP_LISTEN */ || lport != port || !parse_addr(hex, have, words))
            continue;
        if (memcmp(have, want, (size_t)words * 4) != 0 && !all_zero(have, words) &&
            !all_zero(want, words))
            continue;
        bool mine = false;
        for (size_t i = 0; i < n && !mine; i++) {
            struct stat st;
            mine = fstat(fds[i], &st) == 0 && (unsigned long)st.st_ino == ino;
        }
        if (!mine && !ours(ino))
            result = 1;
    }
    fclose(f);
    return result;
}
