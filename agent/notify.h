/* The systemd service notification protocol (sd_notify(3)): one datagram
 * of "KEY=value" lines to the unix socket named by $NOTIFY_SOCKET. */
#ifndef ALBD_AGENT_NOTIFY_H
#define ALBD_AGENT_NOTIFY_H

/* Sends msg ("READY=1\nSTATUS=...") to $NOTIFY_SOCKET: a path, or an
 * abstract socket when it starts with '@'. Returns 1 when sent, 0 when
 * NOTIFY_SOCKET is not set (not started by systemd with Type=notify), or a
 * negative errno. Never blocks for long (the socket is a datagram socket and
 * the send is non-blocking). Any thread. */
int ag_notify(const char *msg);

#endif
