/* Session ticket key ring (see tls_keys.h). */
#include "proxy/tls_keys.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

struct ticket_key {
    unsigned char name[16];
    unsigned char hmac[32];
    unsigned char aes[32];
    size_t size; /* 16 (AES-128, 48-byte file) or 32 (AES-256) */
};

struct px_tls_keys {
    atomic_int refs;
    pthread_rwlock_t lock;
    bool from_files;
    atomic_uint tickets; /* TLS 1.3 tickets after a full handshake */
    size_t n;
    struct ticket_key keys[PX_TLS_KEYS_MAX]; /* [0] is current */
};

static int key_random(struct ticket_key *k)
{
    k->size = 32;
    if (RAND_bytes(k->name, sizeof k->name) != 1 || RAND_priv_bytes(k->hmac, sizeof k->hmac) != 1 ||
        RAND_priv_bytes(k->aes, sizeof k->aes) != 1) {
        OPENSSL_cleanse(k, sizeof *k);
        return -EIO;
    }
    return 0;
}

static struct px_tls_keys *ring_alloc(void)
{
    struct px_tls_keys *k = calloc(1, sizeof *k);
    if (k == NULL)
        return NULL;
    if (pthread_rwlock_init(&k->lock, NULL) != 0) {
        free(k);
        errno = ENOMEM;
        return NULL;
    }
    atomic_init(&k->refs, 1);
    atomic_init(&k->tickets, PX_TLS_TICKETS_DEFAULT);
    return k;
}

static void ring_free(struct px_tls_keys *k)
{
    pthread_rwlock_destroy(&k->lock);
    OPENSSL_cleanse(k->keys, sizeof k->keys);
    free(k);
}

struct px_tls_keys *px_tls_keys_new(void)
{
    struct px_tls_keys *k = ring_alloc();
    if (k == NULL)
        return NULL;
    if (key_random(&k->keys[0]) != 0) {
        ring_free(k);
        errno = EIO;
        return NULL;
    }
    k->n = 1;
    return k;
}

/* Reads one key file; 0 or -1 with err filled. The file must be a regular
 * file: it is opened non-blocking so that a FIFO or a device given by
 * mistake is refused at once instead of hanging the agent, and at most one
 * byte more than the longest key is read. A key readable by group or others
 * is loaded with a warning (the path and mode only, never the key). */
static int key_read_file(const char *path, struct ticket_key *key, char *err, size_t errlen)
{
    unsigned char buf[81];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, errlen, "session ticket key %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "session ticket key %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "session ticket key %s: not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        px_log_warn("session ticket key %s: readable by %s (mode %04o); anyone who can read it "
                    "can decrypt recorded sessions: chmod 600 it",
                    path, st.st_mode & S_IRWXO ? "others" : "its group",
                    (unsigned)(st.st_mode & 07777));
    size_t got = 0;
    while (got < sizeof buf) {
        ssize_t r = read(fd, buf + got, sizeof buf - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "session ticket key %s: %s", path, strerror(errno));
            close(fd);
            OPENSSL_cleanse(buf, sizeof buf);
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    int rc = 0;
    if (got == 48) {
        memcpy(key->name, buf, 16);
        memcpy(key->hmac, buf + 16, 16);
        memcpy(key->aes, buf + 32, 16);
        key->size = 16;
    } else if (got == 80) {
        memcpy(key->name, buf, 16);
        memcpy(key->hmac, buf + 16, 32);
        memcpy(key->aes, buf + 48, 32);
        key->size = 32;
    } else {
        snprintf(err, errlen, "session ticket key %s: must be 48 or 80 bytes long", path);
        rc = -1;
    }
    OPENSSL_cleanse(buf, sizeof buf);
    return rc;
}

struct px_tls_keys *px_tls_keys_new_from_files(const char *const *paths, size_t n, char *err,
                                               size_t errlen)
{
    if (n == 0 || n > PX_TLS_KEYS_MAX) {
        snprintf(err, errlen, "session ticket keys: between 1 and %d files expected",
                 PX_TLS_KEYS_MAX);
        return NULL;
    }
    struct px_tls_keys *k = ring_alloc();
    if (k == NULL) {
        snprintf(err, errlen, "session ticket keys: out of memory");
        return NULL;
    }
    k->from_files = true;
    for (size_t i = 0; i < n; i++) {
        if (key_read_file(paths[i], &k->keys[i], err, errlen) != 0) {
            ring_free(k);
            return NULL;
        }
        for (size_t j = 0; j < i; j++) {
            if (CRYPTO_memcmp(k->keys[j].name, k->keys[i].name, 16) == 0) {
                snprintf(err, errlen, "session ticket key %s: same key name as %s", paths[i],
                         paths[j]);
                ring_free(k);
                return NULL;
            }
        }
        k->n = i + 1;
    }
    return k;
}

struct px_tls_keys *px_tls_keys_ref(struct px_tls_keys *k)
{
    if (k != NULL)
        atomic_fetch_add_explicit(&k->refs, 1, memory_order_relaxed);
    return k;
}

void px_tls_keys_unref(struct px_tls_keys *k)
{
    if (k != NULL && atomic_fetch_sub_explicit(&k->refs, 1, memory_order_acq_rel) == 1)
        ring_free(k);
}

int px_tls_keys_rotate(struct px_tls_keys *k)
{
    if (k->from_files)
        return -ENOTSUP;
    struct ticket_key fresh;
    int rc = key_random(&fresh);
    if (rc != 0)
        return rc;
    pthread_rwlock_wrlock(&k->lock);
    /* Keep the current key as the previous one; older ones go. */
    k->keys[1] = k->keys[0];
    k->keys[0] = fresh;
    k->n = 2;
    pthread_rwlock_unlock(&k->lock);
    OPENSSL_cleanse(&fresh, sizeof fresh);
    return 0;
}

void px_tls_keys_set_tickets(struct px_tls_keys *k, unsigned n)
{
    if (n < 1)
        n = 1;
    if (n > PX_TLS_TICKETS_MAX)
        n = PX_TLS_TICKETS_MAX;
    atomic_store_explicit(&k->tickets, n, memory_order_relaxed);
}

unsigned px_tls_keys_tickets(struct px_tls_keys *k)
{
    return atomic_load_explicit(&k->tickets, memory_order_relaxed);
}

size_t px_tls_keys_count(struct px_tls_keys *k)
{
    pthread_rwlock_rdlock(&k->lock);
    size_t n = k->n;
    pthread_rwlock_unlock(&k->lock);
    return n;
}

/* The ticket ciphers, fetched once per process: EVP_CipherInit_ex given
 * OpenSSL's built-in EVP_aes_*_cbc() fetches the provider's implementation
 * again on every call, i.e. for every ticket issued or opened. Never
 * freed (two objects for the life of the process); NULL when the fetch
 * failed, and then the built-in ones are used. */
static pthread_once_t cipher_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER *cipher_128, *cipher_256;

static void cipher_fetch(void)
{
    cipher_128 = EVP_CIPHER_fetch(NULL, "AES-128-CBC", NULL);
    cipher_256 = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
    ERR_clear_error();
}

static const EVP_CIPHER *key_cipher(size_t size)
{
    pthread_once(&cipher_once, cipher_fetch);
    if (size == 16)
        return cipher_128 != NULL ? cipher_128 : EVP_aes_128_cbc();
    return cipher_256 != NULL ? cipher_256 : EVP_aes_256_cbc();
}

/* Keys the cipher and the HMAC for key; 1 or -1. */
static int key_setup(const struct ticket_key *key, unsigned char *iv, EVP_CIPHER_CTX *cctx,
                     EVP_MAC_CTX *hctx, int enc)
{
    const EVP_CIPHER *cipher = key_cipher(key->size);
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)key->hmac, key->size);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    if (EVP_CipherInit_ex(cctx, cipher, NULL, key->aes, iv, enc) != 1 ||
        EVP_MAC_CTX_set_params(hctx, params) != 1)
        return -1;
    return 1;
}

int px_tls_keys_ticket_cb(struct px_tls_keys *k, unsigned char key_name[16], unsigned char *iv,
                          EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    int rc = 0;
    pthread_rwlock_rdlock(&k->lock);
    if (enc) {
        const struct ticket_key *cur = &k->keys[0];
        int ivlen = EVP_CIPHER_get_iv_length(key_cipher(cur->size));
        memcpy(key_name, cur->name, 16);
        rc = RAND_bytes(iv, ivlen) == 1 ? key_setup(cur, iv, cctx, hctx, 1) : -1;
    } else {
        for (size_t i = 0; i < k->n; i++) {
            if (CRYPTO_memcmp(key_name, k->keys[i].name, 16) != 0)
                continue;
            rc = key_setup(&k->keys[i], iv, cctx, hctx, 0);
            if (rc == 1 && i > 0)
                rc = 2;
            break;
        }
    }
    pthread_rwlock_unlock(&k->lock);
    return rc;
}
