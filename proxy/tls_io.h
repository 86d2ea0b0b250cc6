/* TLS without sockets: the event loop moves ciphertext, OpenSSL never
 * touches a socket. The owner lends (or feeds) what it read, pumps the
 * handshake and reads, and writes plaintext. What OpenSSL produces goes to
 * the owner's sink (the connection's output queue: one copy) or, without
 * one, waits in a memory BIO for px_tls_io_take. */
#ifndef ALBD_PROXY_TLS_IO_H
#define ALBD_PROXY_TLS_IO_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct px_tls_io;

/* The sink: every byte OpenSSL writes goes to append(arg, bytes, n) as it
 * is written (a TLS record, or part of one). append returns 0, or < 0 when
 * it could not take them (the TLS call then fails). The owner sends what it
 * gathered after each call. */
typedef int (*px_tls_io_append_fn)(void *arg, const char *data, size_t n);

/* A server-side session on ctx (reference taken by SSL_new), its output to
 * append(arg) — or, with append NULL, to a memory BIO for px_tls_io_take.
 * NULL on allocation failure. */
struct px_tls_io *px_tls_io_new(SSL_CTX *ctx, px_tls_io_append_fn append, void *arg);
void px_tls_io_free(struct px_tls_io *t);

/* Hands n bytes of ciphertext from the peer to OpenSSL, copied. 0 or
 * -ENOMEM. */
int px_tls_io_feed(struct px_tls_io *t, const char *data, size_t n);

/* The same without the copy: OpenSSL reads straight from data (into its
 * record buffer) until px_tls_io_unlend, which the owner must call before
 * data changes or goes away — at the end of the read callback that lent
 * it; what OpenSSL has not read by then is copied and kept. 0 or -ENOMEM
 * (nothing lent: the connection is unusable). */
int px_tls_io_lend(struct px_tls_io *t, const char *data, size_t n);
int px_tls_io_unlend(struct px_tls_io *t);
/* Frees the copy kept of received bytes (px_tls_io_feed, unlend) once
 * OpenSSL has read all of it. */
void px_tls_io_trim(struct px_tls_io *t);

/* Advances the handshake: 1 finished, 0 needs more input, -EPROTO failed
 * (send the pending output, e.g. an alert, then close). */
int px_tls_io_handshake(struct px_tls_io *t);

/* Decrypts into buf: > 0 bytes, 0 needs more input, -EPIPE the peer sent
 * close_notify, -EPROTO a TLS error. */
ssize_t px_tls_io_read(struct px_tls_io *t, char *buf, size_t cap);

/* Encrypts n bytes (memory BIOs accept everything). 0 or -EPROTO. */
int px_tls_io_write(struct px_tls_io *t, const char *data, size_t n);

/* Queues a close_notify alert. */
void px_tls_io_shutdown(struct px_tls_io *t);

/* Why the handshake failed after px_tls_io_handshake returned < 0: an
 * enum px_obs_tls_fail, and OpenSSL's reason text in *text (static; NULL
 * when there is none). */
int px_tls_io_fail(const struct px_tls_io *t, const char **text);

/* Without a sink: the ciphertext waiting to be sent, and a way to take it
 * (returns bytes). */
size_t px_tls_io_out_pending(struct px_tls_io *t);
size_t px_tls_io_take(struct px_tls_io *t, char *buf, size_t cap);
/* Ciphertext received and not yet decrypted. */
size_t px_tls_io_in_pending(struct px_tls_io *t);

/* The ALPN protocol selected in the handshake ("" when none). */
void px_tls_io_alpn(struct px_tls_io *t, const unsigned char **proto, unsigned *len);

/* An idle connection lets go of its buffers: OpenSSL's record buffers
 * (SSL_free_buffers, from OpenSSL 3.0.14 / 3.1.6 / 3.2.2 / 3.3.1 on, which
 * refuse while part of a record is buffered; taken again by the next read
 * or write), the received bytes kept after a lend (px_tls_io_unlend) and,
 * without a sink, the output memory BIO's storage. Returns false, releasing
 * nothing, while any byte is in flight: ciphertext not yet decrypted or
 * not yet taken, plaintext not yet read, a record partly received, or the
 * handshake not finished. */
bool px_tls_io_park(struct px_tls_io *t);

/* The underlying SSL, for peer certificate / SNI inspection. */
SSL *px_tls_io_ssl(struct px_tls_io *t);

#endif
