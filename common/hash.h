/* One fast, non-cryptographic hash for the in-memory tables of the
 * reconciler and the proxy (file paths, document texts, server names).
 * Used by reconciler/ and proxy/, so it lives in common/.
 * Eight bytes per step, then a full avalanche, so that the low bits a
 * power-of-two table uses depend on every byte. Not for anything a client
 * could flood: the tables hold configuration, never request data. */
#ifndef ALBD_COMMON_HASH_H
#define ALBD_COMMON_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t cm_hash_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static inline uint64_t cm_hash(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (n * 0xc6a4a7935bd1e995ull);
    for (; n >= 8; s += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ cm_hash_mix(w)) * 0xc6a4a7935bd1e995ull;
        h ^= h >> 47;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    return cm_hash_mix(h ^ w);
}

static inline uint64_t cm_hash_str(const char *s)
{
    return cm_hash(s, strlen(s));
}

/* The n bytes at b as lowercase hex into out (2n characters and a NUL):
 * digests shown or compared as text, without a snprintf per byte. */
static inline void cm_hex(const unsigned char *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

#endif
