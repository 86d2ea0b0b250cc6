/* Header fields of a message head received in pieces (llhttp hands names
 * and values over in as many chunks as the input had): their bytes go to a
 * buffer owned by the caller, the list keeps offsets, since the buffer may
 * move while it grows. Shared by the HTTP/1.1 request and response parsers
 * and the HTTP/2 stream's backend response parser. */
#ifndef ALBD_PROXY_HDRLIST_H
#define ALBD_PROXY_HDRLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/buf.h"
#include "proxy/headers.h"

/* One field: name and value as offsets into the buffer. */
struct px_hdr_ent {
    uint32_t no, nl, vo, vl;
};

struct px_hdrlist {
    struct px_hdr_ent *ents; /* PX_HDR_MAX entries, owned by the caller */
    size_t n;
    size_t bytes;  /* the head's size as HTTP/1.1 ("name: value\r\n" each) */
    bool in_value; /* the last name is complete; value bytes may follow */
};

/* Empties the list (not the buffer). */
void px_hdrlist_reset(struct px_hdrlist *l);

/* Appends a piece of a name (value false) or of a value to buf and l.
 * Returns 0, or -1 when the message must be refused: more than PX_HDR_MAX
 * fields, the head over limit bytes, pieces out of order, or no memory. */
int px_hdrlist_add(struct px_hdrlist *l, struct px_buf *buf, const char *at, size_t len, bool value,
                   size_t limit);

/* The current name is complete (on_header_field_complete): its value,
 * possibly empty, starts at the end of buf. */
void px_hdrlist_name_done(struct px_hdrlist *l, const struct px_buf *buf);

/* Fills out[0..l->n) with pointers into buf (valid until buf changes) and
 * returns l->n. */
size_t px_hdrlist_get(const struct px_hdrlist *l, const struct px_buf *buf, struct px_hdr *out);

#endif
