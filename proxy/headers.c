#include "proxy/headers.h"

#include <string.h>
#include <strings.h>

static bool name_is(const char *name, size_t len, const char *lit)
{
    size_t l = strlen(lit);
    return len == l && strncasecmp(name, lit, l) == 0;
}

bool px_header_is_hop(const char *name, size_t len)
{
    static const char *const hop[] = {"connection", "keep-alive",        "proxy-connection", "te",
                                      "trailer",    "transfer-encoding", "upgrade"};
    for (size_t i = 0; i < sizeof hop / sizeof hop[0]; i++)
        if (name_is(name, len, hop[i]))
            return true;
    return false;
}

static bool is_ows(char ch)
{
    return ch == ' ' || ch == '\t';
}

bool px_header_has_token(const char *v, size_t len, const char *tok)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (is_ows(v[i]) || v[i] == ','))
            i++;
        size_t start = i;
        while (i < len && v[i] != ',')
            i++;
        size_t end = i;
        while (end > start && is_ows(v[end - 1]))
            end--;
        if (end > start && name_is(v + start, end - start, tok))
            return true;
    }
    return false;
}

/* Drops every header named by the comma-separated tokens of one
 * Connection value. */
static void mark_connection_tokens(const struct px_hdr *h, size_t n, bool *drop, const char *v,
                                   size_t vlen)
{
    size_t i = 0;
    while (i < vlen) {
        while (i < vlen && (is_ows(v[i]) || v[i] == ','))
            i++;
        size_t start = i;
        while (i < vlen && v[i] != ',')
            i++;
        size_t end = i;
        while (end > start && is_ows(v[end - 1]))
            end--;
        if (end == start)
            continue;
        const char *tok = v + start;
        size_t tlen = end - start;
        /* Framing and routing must not be strippable by the client. */
        if (name_is(tok, tlen, "host") || name_is(tok, tlen, "content-length"))
            continue;
        for (size_t k = 0; k < n; k++)
            if (h[k].name_len == tlen && strncasecmp(h[k].name, tok, tlen) == 0)
                drop[k] = true;
    }
}

void px_headers_mark_hop(const struct px_hdr *h, size_t n, bool *drop)
{
    for (size_t i = 0; i < n; i++)
        drop[i] = px_header_is_hop(h[i].name, h[i].name_len);
    for (size_t i = 0; i < n; i++)
        if (name_is(h[i].name, h[i].name_len, "connection") ||
            name_is(h[i].name, h[i].name_len, "proxy-connection"))
            mark_connection_tokens(h, n, drop, h[i].value, h[i].value_len);
}

#define TRY(x)                                                                                     \
    do {                                                                                           \
        int rc_ = (x);                                                                             \
        if (rc_)                                                                                   \
            return rc_;                                                                            \
    } while (0)

static int put_header(struct px_buf *out, const char *name, size_t nlen, const char *value,
                      size_t vlen)
{
    TRY(px_buf_append(out, name, nlen));
    TRY(px_buf_append(out, ": ", 2));
    TRY(px_buf_append(out, value, vlen));
    return px_buf_append(out, "\r\n", 2);
}

/* One header albd sets on requests: the name albd writes by default, the
 * value (NULL: off), and the client's spelling of the name if it sent one. */
struct fwd_slot {
    const char *name;
    const char *value;
    size_t value_len;
    const struct px_hdr *client;
};

int px_headers_request(struct px_buf *out, const char *method, const char *target,
                       size_t target_len, int minor, const struct px_hdr *h, size_t n,
                       const struct px_fwd *fwd, enum px_framing framing, bool keepalive)
{
    bool drop[PX_HDR_MAX];
    if (n > PX_HDR_MAX)
        return -1;
    px_headers_mark_hop(h, n, drop);

    const struct px_hdr *host = NULL;
    for (size_t i = 0; i < n; i++)
        if (!host && name_is(h[i].name, h[i].name_len, "host"))
            host = &h[i];

    struct fwd_slot slots[] = {
        {"X-Forwarded-Proto", fwd->proto, fwd->proto ? strlen(fwd->proto) : 0, NULL},
        {"X-Forwarded-Port", fwd->port, fwd->port ? strlen(fwd->port) : 0, NULL},
        {"X-Forwarded-Host", fwd->host && host ? host->value : NULL, host ? host->value_len : 0,
         NULL},
        {"X-Forwarded-Client-srcport", fwd->client_port,
         fwd->client_port ? strlen(fwd->client_port) : 0, NULL},
        {"SLB-ID", fwd->slb_id, fwd->slb_id ? strlen(fwd->slb_id) : 0, NULL},
    };
    const size_t n_slots = sizeof slots / sizeof slots[0];
    /* X-Forwarded-Host is "on" even when the client sent no Host: the
     * client's own copy must still go. */
    bool slot_on[sizeof slots / sizeof slots[0]] = {fwd->proto != NULL, fwd->port != NULL,
                                                    fwd->host, fwd->client_port != NULL,
                                                    fwd->slb_id != NULL};

    for (size_t i = 0; i < n; i++) {
        for (size_t s = 0; s < n_slots; s++) {
            if (slot_on[s] && name_is(h[i].name, h[i].name_len, slots[s].name)) {
                if (!slots[s].client)
                    slots[s].client = &h[i];
                drop[i] = true;
            }
        }
        if (fwd->xff_mode != RC_XFF_PRESERVE &&
            name_is(h[i].name, h[i].name_len, "x-forwarded-for"))
            drop[i] = true;
    }

    TRY(px_buf_puts(out, method));
    TRY(px_buf_append(out, " ", 1));
    TRY(px_buf_append(out, target, target_len));
    TRY(px_buf_puts(out, minor ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n"));
    for (size_t i = 0; i < n; i++)
        if (!drop[i])
            TRY(put_header(out, h[i].name, h[i].name_len, h[i].value, h[i].value_len));

    if (fwd->xff_mode == RC_XFF_APPEND) {
        TRY(px_buf_puts(out, "X-Forwarded-For: "));
        for (size_t i = 0; i < n; i++) {
            if (!name_is(h[i].name, h[i].name_len, "x-forwarded-for"))
                continue;
            const char *v = h[i].value;
            size_t vl = h[i].value_len;
            while (vl && is_ows(*v))
                v++, vl--;
            while (vl && is_ows(v[vl - 1]))
                vl--;
            if (!vl)
                continue;
            TRY(px_buf_append(out, v, vl));
            TRY(px_buf_append(out, ", ", 2));
        }
        TRY(px_buf_puts(out, fwd->client_ip ? fwd->client_ip : "unknown"));
        TRY(px_buf_append(out, "\r\n", 2));
    }
    for (size_t s = 0; s < n_slots; s++) {
        if (!slots[s].value)
            continue;
        const char *name = slots[s].client ? slots[s].client->name : slots[s].name;
        size_t nlen = slots[s].client ? slots[s].client->name_len : strlen(slots[s].name);
        TRY(put_header(out, name, nlen, slots[s].value, slots[s].value_len));
    }
    for (size_t i = 0; i < fwd->n_extra; i++)
        TRY(put_header(out, fwd->extra[i].name, fwd->extra[i].name_len, fwd->extra[i].value,
                       fwd->extra[i].value_len));
    if (framing == PX_FRAME_CHUNKED)
        TRY(px_buf_puts(out, "Transfer-Encoding: chunked\r\n"));
    if (fwd->upgrade) {
        TRY(px_buf_puts(out, "Connection: Upgrade\r\nUpgrade: "));
        TRY(px_buf_puts(out, fwd->upgrade));
        TRY(px_buf_append(out, "\r\n", 2));
    } else if (minor && !keepalive) {
        TRY(px_buf_puts(out, "Connection: close\r\n"));
    }
    return px_buf_append(out, "\r\n", 2);
}

int px_headers_response(struct px_buf *out, int minor, int status, const char *reason,
                        size_t reason_len, const struct px_hdr *h, size_t n,
                        enum px_framing framing, bool close)
{
    bool drop[PX_HDR_MAX];
    if (n > PX_HDR_MAX || status < 100 || status > 999)
        return -1;
    px_headers_mark_hop(h, n, drop);
    if (!reason || !reason_len) {
        reason = px_status_reason(status);
        reason_len = strlen(reason);
    }
    TRY(px_buf_puts(out, minor ? "HTTP/1.1 " : "HTTP/1.0 "));
    TRY(px_buf_num(out, (unsigned)status, 0));
    TRY(px_buf_append(out, " ", 1));
    TRY(px_buf_append(out, reason, reason_len));
    TRY(px_buf_append(out, "\r\n", 2));
    for (size_t i = 0; i < n; i++)
        if (!drop[i])
            TRY(put_header(out, h[i].name, h[i].name_len, h[i].value, h[i].value_len));
    if (framing == PX_FRAME_CHUNKED)
        TRY(px_buf_puts(out, "Transfer-Encoding: chunked\r\n"));
    if (status >= 200) {
        if (close)
            TRY(px_buf_puts(out, "Connection: close\r\n"));
        else if (!minor)
            TRY(px_buf_puts(out, "Connection: keep-alive\r\n"));
    }
    return px_buf_append(out, "\r\n", 2);
}

int px_headers_response_upgrade(struct px_buf *out, const char *reason, size_t reason_len,
                                const struct px_hdr *h, size_t n, const char *upgrade)
{
    size_t start = out->len;
    TRY(px_headers_response(out, 1, 101, reason, reason_len, h, n, PX_FRAME_NONE, false));
    out->len -= 2; /* reopen the head: px_headers_response ended it with CRLF */
    if (px_buf_puts(out, "Connection: Upgrade\r\nUpgrade: ") || px_buf_puts(out, upgrade) ||
        px_buf_append(out, "\r\n\r\n", 4)) {
        out->len = start;
        return -1;
    }
    return 0;
}

const char *px_status_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 103:
        return "Early Hints";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 411:
        return "Length Required";
    case 413:
        return "Payload Too Large";
    case 417:
        return "Expectation Failed";
    case 414:
        return "URI Too Long";
    case 421:
        return "Misdirected Request";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

int px_headers_error(struct px_buf *out, int minor, int status)
{
    const char *reason = px_status_reason(status);
    size_t body_len = 4 + strlen(reason) + 1; /* "NNN reason\n" */
    TRY(px_buf_puts(out, minor ? "HTTP/1.1 " : "HTTP/1.0 "));
    TRY(px_buf_num(out, (unsigned)status, 0));
    TRY(px_buf_append(out, " ", 1));
    TRY(px_buf_puts(out, reason));
    TRY(px_buf_puts(out, "\r\nContent-Type: text/plain\r\nCache-Control: no-store\r\n"
                         "Connection: close\r\nContent-Length: "));
    TRY(px_buf_num(out, body_len, 0));
    TRY(px_buf_puts(out, "\r\n\r\n"));
    TRY(px_buf_num(out, (unsigned)status, 0));
    TRY(px_buf_append(out, " ", 1));
    TRY(px_buf_puts(out, reason));
    return px_buf_append(out, "\n", 1);
}
