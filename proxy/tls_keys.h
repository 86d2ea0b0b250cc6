/* Session ticket keys: a key ring shared by every SSL_CTX of the process so
 * that a ticket issued under one configuration still resumes after a swap
 * (and, with keys loaded from files, on every member of a fleet).
 *
 * The ring holds a current key, which encrypts new tickets, and older keys
 * that still decrypt (a ticket decrypted with an older key is renewed).
 * Keys are secret: they are never logged, printed or copied out, and are
 * wiped when the ring is freed. All functions are thread-safe; the ticket
 * callback takes a read lock, rotation a write lock. */
#ifndef ALBD_PROXY_TLS_KEYS_H
#define ALBD_PROXY_TLS_KEYS_H

#include <openssl/evp.h>
#include <stddef.h>

/* Ticket lifetime and the rotation period the owner should use: with the
 * current and the previous key kept, a ticket stays decryptable for at
 * least its whole lifetime. */
#define PX_TLS_TICKET_LIFETIME_S 300
#define PX_TLS_KEYS_ROTATE_S 300

/* Most keys a ring holds (current first). */
#define PX_TLS_KEYS_MAX 8

struct px_tls_keys;

/* A ring with one fresh random key (AES-256-CBC + HMAC-SHA256). The caller
 * owns the one reference. NULL with errno set on failure. */
struct px_tls_keys *px_tls_keys_new(void);

/* A ring read from files in the format of nginx's ssl_session_ticket_key:
 * each file holds exactly one key of 48 bytes (16 name, 16 HMAC key,
 * 16 AES-128 key) or 80 bytes (16 name, 32 HMAC key, 32 AES-256 key).
 * paths[0] is the current key; the others only decrypt. 1 <= n <=
 * PX_TLS_KEYS_MAX. Each must be a regular file (a FIFO or device is
 * refused at once, never waited on); one readable by group or others is
 * loaded with a warning in the log. On failure returns NULL with a message
 * in err naming the file (never its contents). Such a ring is not rotated: the operator
 * replaces the files on every member and reloads. */
struct px_tls_keys *px_tls_keys_new_from_files(const char *const *paths, size_t n, char *err,
                                               size_t errlen);

/* Reference counting, safe from any thread. unref(NULL) is a no-op; the
 * last unref wipes and frees the keys. */
struct px_tls_keys *px_tls_keys_ref(struct px_tls_keys *k);
void px_tls_keys_unref(struct px_tls_keys *k);

/* Makes a new random key current and keeps the old current one for
 * decryption only (older keys are dropped). Call every
 * PX_TLS_KEYS_ROTATE_S seconds from the ring's owner. Returns 0, -ENOMEM /
 * -EIO when no randomness was available (the ring is unchanged), or
 * -ENOTSUP for a ring loaded from files. */
int px_tls_keys_rotate(struct px_tls_keys *k);

/* How many TLS 1.3 session tickets a full handshake ends with (every
 * SSL_CTX built with the ring sends that many; a resumption gets one new
 * ticket whatever the number, tls_ctx.c). One by default: a TLS 1.3 client
 * uses a ticket once, and since each resumption brings the next, one keeps
 * a client that connects again and again resuming. A second ticket is of
 * use only to a client that opens two connections at once before its first
 * has resumed, and costs every full handshake ~13 us of CPU (the ticket's
 * encoding, encryption and MAC: 4-7 % of a full handshake's proxy CPU,
 * measured in ../shared/bench's h1_handshake). OpenSSL's default (and so
 * nginx's and HAProxy's) is two; Go's crypto/tls sends one. */
#define PX_TLS_TICKETS_DEFAULT 1
#define PX_TLS_TICKETS_MAX 8

/* Sets the number (clamped to 1..PX_TLS_TICKETS_MAX) for contexts built
 * from now on; call before the first apply. Thread-safe. */
void px_tls_keys_set_tickets(struct px_tls_keys *k, unsigned n);
unsigned px_tls_keys_tickets(struct px_tls_keys *k);

/* Number of keys in the ring (tests, /metrics). */
size_t px_tls_keys_count(struct px_tls_keys *k);

/* The body of OpenSSL's ticket key callback (SSL_CTX_set_tlsext_ticket_key_evp_cb),
 * for proxy/tls_ctx.c: enc = 1 sets up encryption under the current key and
 * writes its name and a random IV; enc = 0 finds the key named key_name.
 * Returns 1 (use it), 2 (decrypted with an older key: issue a new ticket),
 * 0 (unknown key: full handshake) or -1 (error). */
int px_tls_keys_ticket_cb(struct px_tls_keys *k, unsigned char key_name[16], unsigned char *iv,
                          EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc);

#endif
