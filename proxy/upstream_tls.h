/* TLS to backend servers (HTTPS server groups, end-to-end TLS): the
 * client SSL_CTX of a group and the per-connection setup that
 * proxy/upstream.c runs on every new backend connection of such a group.
 *
 * Verification is always on: the backend's chain must lead to one of the
 * group's tls.caCertificates (the system's trust store when the group
 * names none), and its certificate must carry the name checked: the
 * group's tls.serverName, else the server's host name, else (an IP
 * literal) the IP address as an IP SAN. SNI is sent for names, never for
 * IP addresses. ALPN offers only http/1.1 (albd speaks HTTP/1.1 to
 * backends). Sessions resume: each worker keeps (a copy of) the last
 * session of each backend (struct px_pool.tls_session, so per worker and
 * per server, no lock) and offers a copy of it on the next handshake to
 * that server. Copies, because OpenSSL marks a connection's own session
 * not resumable when the connection ends without close_notify. */
#ifndef ALBD_PROXY_UPSTREAM_TLS_H
#define ALBD_PROXY_UPSTREAM_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

#include "reconciler/model-t.h"

struct px_pool;

/* Hex SHA-256 of everything the group's client SSL_CTX is made of (CA and
 * client certificate digests, their names): equal digests → the context
 * can be reused by a later snapshot. "" when out of memory. */
void px_upstream_tls_digest(const struct rc_server_group *g, char out[65]);

/* Builds the client SSL_CTX of HTTPS group g. Returns it with one reference
 * for the caller, or NULL with a message (naming the group and the
 * certificate at fault, never key material) in err. Any one thread; the
 * context is then shared by every worker. */
SSL_CTX *px_upstream_tls_ctx_new(const struct rc_server_group *g, char *err, size_t errlen);

/* Prepares a new client SSL (from a px_upstream_tls_ctx_new context) for a
 * connection to a server: name is the name verified (and sent as SNI when
 * it is not an IP literal); pool is the connection's per-worker pool,
 * whose cached session is offered and which receives the new one. 0, or
 * -1 when out of memory. Thread: the connection's worker. */
int px_upstream_tls_setup(SSL *ssl, const char *name, struct px_pool *pool);

/* Writes why a handshake failed to buf: the X509 verification error
 * ("certificate verify failed: unable to get local issuer certificate")
 * when the certificate was refused, else OpenSSL's reason, else
 * "handshake failed". Call right after the failure, on the same thread
 * (it reads and clears the thread's OpenSSL error queue). */
void px_upstream_tls_why(SSL *ssl, char *buf, size_t size);

#endif
