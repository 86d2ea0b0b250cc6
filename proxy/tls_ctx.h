/* TLS server contexts: one SSL_CTX per HTTPS listener, built from the
 * model. It picks one certificate per handshake from the client's SNI and
 * what its ClientHello can verify, in the reference's order (usable by the
 * client; exact name > wildcard; then ECDSA > RSA; then SHA > MD5, longer
 * key, later expiry: px_sni_cand_better()); a name no certificate covers
 * gets the default certificate (or one of its kind for the other key
 * type); a name covered only by certificates the client cannot verify
 * fails the handshake. It applies the listener's TLS policy, offers ALPN, issues
 * session tickets from a shared key ring and, with mutual TLS, requires a
 * client certificate signed by the listener's CA certificates.
 *
 * An SSL_CTX built here owns copies of everything it uses (parsed
 * certificates and keys, names, an index over them): it does not point
 * into the model, so it may outlive it and be reused by a later snapshot
 * whose listener has byte-identical TLS inputs. */
#ifndef ALBD_PROXY_TLS_CTX_H
#define ALBD_PROXY_TLS_CTX_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

#include "proxy/tls_ctx-t.h"
#include "proxy/tls_keys.h"
#include "reconciler/model-t.h"

/* ECDH groups offered, in preference order. */
#define PX_TLS_GROUPS "X25519:P-256:P-384"

/* Builds the SSL_CTX of HTTPS listener l (l->tls: certificate, extension
 * certificates, policy, mutual authentication; l->http2; l->meta.name).
 *
 * keys: the session ticket key ring; the context takes its own reference
 * and drops it when freed. NULL: OpenSSL's own per-context ticket keys
 * (tickets then do not survive a configuration swap).
 * h2_supported: whether the data plane can speak HTTP/2 on this listener;
 * "h2" is selected by ALPN only when both this and l->http2 are true.
 *
 * Policy: versions become the min/max protocol version, a version gap is
 * disabled (SSL_OP_NO_TLSv1_1 for {1.0, 1.2}); a policy with TLS 1.0 or
 * 1.1 runs at OpenSSL security level 0 (OpenSSL 3 refuses them above it;
 * SHA-1 MAC suites need no such downgrade with TLS 1.2, and 3DES is not
 * built into Debian's OpenSSL, so DES-CBC3-SHA in a list never
 * negotiates). Server cipher preference, no renegotiation, no compression.
 *
 * Sessions: tickets only (no server-side session cache, so nothing is
 * lost when the context is swapped and no lock is shared by the workers),
 * lifetime PX_TLS_TICKET_LIFETIME_S, which is also the lifetime hint;
 * px_tls_keys_tickets(keys) TLS 1.3 tickets after a full handshake
 * (PX_TLS_TICKETS_DEFAULT without keys), one after a resumption. The
 * session id context is derived from the listener's name and its mutual
 * TLS trust anchors: changing the CA set invalidates old sessions.
 *
 * Returns a new SSL_CTX with one reference owned by the caller
 * (SSL_CTX_free), or NULL with a message in err naming the listener and
 * certificate at fault (never key material). Call from any one thread;
 * the returned context is safe to share between worker threads. */
SSL_CTX *px_tls_ctx_new(const struct rc_listener *l, struct px_tls_keys *keys, bool h2_supported,
                        char *err, size_t errlen);

/* Strict SNI / domain fronting: true when host (len bytes, the Host header
 * or :authority; a ":port" suffix is ignored) is covered, exactly or by a
 * wildcard, by the certificate this handshake selected from the client's
 * SNI (or by the default certificate when there was no usable SNI). IP
 * literals are never covered. ssl must come from a px_tls_ctx_new()
 * context and have completed its handshake. Thread: the connection's. */
bool px_tls_host_allowed(SSL *ssl, const char *host, size_t len);

/* Fills out from the client certificate of ssl (after the handshake) for
 * the X-Forwarded-Clientcert-* headers. Without a client certificate,
 * out->present is false and out->verify is "NONE". Returns 0, or -ENOSPC
 * when a DN does not fit (out->present is still set, the DN truncated at a
 * character boundary), or -ENOMEM. */
int px_tls_client_cert_info(SSL *ssl, struct px_client_cert *out);

#endif
