/* SSL_CTX per HTTPS listener. (Interim: the TLS work replaces this file.) */
#ifndef ALBD_PROXY_TLS_CTX_H
#define ALBD_PROXY_TLS_CTX_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

#include "reconciler/model-t.h"

struct px_tls_keys;

struct px_tls_keys *px_tls_keys_new(void);
void px_tls_keys_free(struct px_tls_keys *k);

/* A new SSL_CTX for listener l (one reference, caller frees), or NULL with a
 * reason in err. */
SSL_CTX *px_tls_ctx_new(const struct rc_listener *l, struct px_tls_keys *keys, bool h2_supported,
                        char *err, size_t errlen);

#endif
