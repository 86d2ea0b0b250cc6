/* A small HTTP/1.1 client for one GET: what `albd plan --against URL` needs
 * to read a running albd's /config. Plain TCP, or TLS through the OpenSSL
 * albd already links (the peer verified against the system's CAs and the
 * URL's host). It replaces libcurl, whose 26 shared libraries (Kerberos,
 * LDAP, SSH, RTMP, GnuTLS...) were mapped into the proxy process and its
 * image for this one request. */
#ifndef ALBD_AGENT_HTTP_GET_H
#define ALBD_AGENT_HTTP_GET_H

#include <stddef.h>

/* GETs url ("http://host[:port]/path", "https://...", IPv6 hosts in
 * brackets), following no redirect, within timeout_ms in all. Succeeds only
 * on a 2xx status with a body of at most max bytes (Content-Length, chunked,
 * or up to the close). Returns 0 with the body in *body (NUL-terminated,
 * malloc'd; the caller frees it) and its length in *len, or -1 with a
 * reason in err (the URL's host and the failure; never the body). Blocking;
 * any thread. */
int ag_http_get(const char *url, size_t max, int timeout_ms, char **body, size_t *len, char *err,
                size_t errlen);

#endif
