/* Whether another process already listens on an address albd is about to
 * serve. SO_REUSEPORT (one socket per worker) lets a second process of the
 * same user bind the same port without an error, and the kernel then splits
 * new connections between the two: a second `albd run` started by mistake
 * would silently take half of the traffic. The check reads the kernel's
 * table of TCP sockets of this network namespace (/proc/net/tcp, tcp6) after
 * albd's own sockets listen, so two albd started at the same instant both
 * see each other (both refuse) rather than neither. */
#ifndef ALBD_PROXY_SHARECHECK_H
#define ALBD_PROXY_SHARECHECK_H

#include <stddef.h>
#include <sys/socket.h>

/* Looks for a listening TCP socket on addr's port whose address overlaps
 * addr's (equal, or either one the wildcard), of addr's family, that is
 * neither one of fds (n of them) nor any other socket of this process.
 * Returns 1 when there is one, 0 when there is none, -errno when the table
 * cannot be read (no /proc). Any thread; reads files, so call it only when
 * opening a new address. */
int px_sharecheck_others(const struct sockaddr *addr, const int *fds, size_t n);

#endif
