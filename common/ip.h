/* IP addresses and CIDR ranges, in one place for every folder: what
 * validation accepts (clientSourceIps, SourceIp conditions) and what the
 * proxy matches (the retrieved client IP, SourceIp, per-IP limits, the Sch
 * scheduler) cannot drift apart. IPv4 is held as an IPv4-mapped IPv6
 * address (::ffff:a.b.c.d), so one 16-byte form, one compare and one
 * prefix test serve both families; an IPv4 range matches only IPv4
 * addresses (and the same address written mapped); an IPv6 range that
 * covers ::ffff:0:0/96 (::/0 does) contains IPv4 addresses too. Pure: no allocation,
 * no locale, safe from any thread. */
#ifndef ALBD_COMMON_IP_H
#define ALBD_COMMON_IP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest text form cm_ip_format writes, NUL included (INET6_ADDRSTRLEN). */
#define CM_IP_TEXT_MAX 46

struct cm_ip {
    uint8_t b[16]; /* network order; IPv4 as ::ffff:a.b.c.d */
};

struct cm_cidr {
    struct cm_ip net; /* host bits cleared */
    int bits;         /* 0-128, counted on the 16-byte form (IPv4 /n is 96+n) */
};

/* Parses an address of exactly len bytes (no port, no brackets, no zone,
 * no surrounding space): dotted-quad IPv4 or RFC 4291 IPv6 text. True on
 * success; *out is untouched on failure. */
bool cm_ip_parse(const char *s, size_t len, struct cm_ip *out);

/* True when a is IPv4 (held mapped). */
bool cm_ip_is_v4(const struct cm_ip *a);

/* Writes a's canonical text (dotted quad for IPv4, RFC 5952 for IPv6)
 * into out (CM_IP_TEXT_MAX bytes); returns its length. */
size_t cm_ip_format(const struct cm_ip *a, char *out);

/* True when a and b are the same address. */
bool cm_ip_equal(const struct cm_ip *a, const struct cm_ip *b);

/* Parses "ADDR" (a single address: /32 or /128) or "ADDR/N" of exactly
 * len bytes, N 0-32 for IPv4 and 0-128 for IPv6. Host bits set beyond N
 * are accepted and cleared (as the reference's lists allow
 * "192.168.1.1/24"). True on success. */
bool cm_cidr_parse(const char *s, size_t len, struct cm_cidr *out);

/* True when range r contains address a. */
bool cm_cidr_contains(const struct cm_cidr *r, const struct cm_ip *a);

#endif
