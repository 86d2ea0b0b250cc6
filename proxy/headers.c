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

/* Strips OWS from both ends of *v[0..n): moves *v, returns the new length. */
static size_t trim(const char **v, size_t n)
{
    while (n && is_ows(**v))
        (*v)++, n--;
    while (n && is_ows((*v)[n - 1]))
        n--;
    return n;
}

static unsigned char fold(char ch)
{
    unsigned char c = (unsigned char)ch;
    if (c == '_')
        return '-';
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

bool px_header_name_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++)
        if (fold(a[i]) != fold(b[i]))
            return false;
    return true;
}

bool px_header_is_forwarding(const char *name, size_t len)
{
    static const char fam[] = "x-forwarded-";
    const size_t fl = sizeof fam - 1;
    if (len >= fl && px_header_name_eq(name, fl, fam, fl))
        return true;
    return px_header_name_eq(name, len, "forwarded", 9) ||
           px_header_name_eq(name, len, "slb-id", 6);
}

static bool is_alnum(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

static bool is_hex(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* The end of the uri-host at the start of v[0..len), or 0 when there is
 * none (see px_authority_check). */
static size_t authority_host(const char *v, size_t len)
{
    size_t i = 0;
    if (v[0] == '[') {
        bool colon = false;
        for (i = 1; i < len && v[i] != ']'; i++) {
            unsigned char ch = (unsigned char)v[i];
            if (!is_hex(ch) && ch != ':' && ch != '.')
                return 0;
            colon = colon || ch == ':';
        }
        return i < len && colon ? i + 1 : 0;
    }
    static const char extra[] = "-._~!$&'()*+;=";
    while (i < len && v[i] != ':') {
        unsigned char ch = (unsigned char)v[i];
        if (ch == '%') {
            if (len - i < 3 || !is_hex((unsigned char)v[i + 1]) || !is_hex((unsigned char)v[i + 2]))
                return 0;
            i += 3;
            continue;
        }
        if (!is_alnum(ch) && !(ch && strchr(extra, ch)))
            return 0;
        i++;
    }
    return i;
}

bool px_authority_check(const char *v, size_t len)
{
    if (!v || len == 0)
        return false;
    size_t i = authority_host(v, len);
    if (i == 0)
        return false;
    if (i == len)
        return true;
    if (v[i] != ':')
        return false;
    size_t digits = len - i - 1;
    if (digits == 0 || digits > 5)
        return false;
    unsigned long port = 0;
    for (i++; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        port = port * 10 + (unsigned long)(v[i] - '0');
    }
    return port >= 1 && port <= 65535;
}

int px_target_parse(const char *t, size_t n, bool options, bool absolute_ok, struct px_target *out)
{
    *out = (struct px_target){.path_len = (uint32_t)n};
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)t[i] < 0x21 || (unsigned char)t[i] > 0x7e)
            return 400;
    if (n && t[0] == '/')
        return 0;
    if (n == 1 && t[0] == '*')
        return options ? 0 : 400;
    size_t a;
    if (!absolute_ok)
        return 400;
    if (n >= 7 && strncasecmp(t, "http://", 7) == 0)
        a = 7;
    else if (n >= 8 && strncasecmp(t, "https://", 8) == 0)
        a = 8;
    else
        return 400;
    size_t e = a;
    while (e < n && t[e] != '/' && t[e] != '?' && t[e] != '#')
        e++;
    if (!px_authority_check(t + a, e - a))
        return 400;
    out->auth_off = (uint32_t)a;
    out->auth_len = (uint32_t)(e - a);
    out->path_off = (uint32_t)e;
    out->path_len = (uint32_t)(n - e);
    out->path_slash = e == n || t[e] != '/';
    return 0;
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

bool px_headers_te_chunked_only(const struct px_hdr *h, size_t n)
{
    size_t tes = 0;
    for (size_t i = 0; i < n; i++) {
        if (!name_is(h[i].name, h[i].name_len, "transfer-encoding"))
            continue;
        const char *v = h[i].value;
        size_t vl = trim(&v, h[i].value_len);
        if (++tes > 1 || !name_is(v, vl, "chunked"))
            return false;
    }
    return true;
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
 * value (NULL: off), and the client's copy if it sent one under exactly
 * that name (albd then keeps the client's letter case). */
struct fwd_slot {
    const char *name;
    const char *value;
    size_t value_len;
    const struct px_hdr *client;
};

/* True when name is albd's to set on this request (the rule above struct
 * px_fwd): a client's copy is dropped. X-Forwarded-For spelled exactly so
 * follows the listener's mode instead. */
static bool owned_by_albd(const char *name, size_t len, const struct px_fwd *fwd)
{
    if (name_is(name, len, "x-forwarded-for"))
        return fwd->xff_mode != RC_XFF_PRESERVE;
    if (px_header_is_forwarding(name, len))
        return true;
    for (size_t i = 0; i < fwd->n_extra; i++)
        if (px_header_name_eq(name, len, fwd->extra[i].name, fwd->extra[i].name_len))
            return true;
    return false;
}

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

    for (size_t i = 0; i < n; i++) {
        if (!owned_by_albd(h[i].name, h[i].name_len, fwd))
            continue;
        drop[i] = true;
        for (size_t s = 0; s < n_slots; s++)
            if (!slots[s].client && name_is(h[i].name, h[i].name_len, slots[s].name))
                slots[s].client = &h[i];
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
            size_t vl = trim(&v, h[i].value_len);
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
    } else if (!minor && keepalive) {
        TRY(px_buf_puts(out, "Connection: keep-alive\r\n"));
    }
    return px_buf_append(out, "\r\n", 2);
}

/* A reason phrase albd may pass on: not empty, and only HTAB, SP, VCHAR and
 * obs-text (RFC 9112 4). */
static bool reason_ok(const char *r, size_t n)
{
    if (!r || !n)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)r[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return false;
    }
    return true;
}

int px_headers_response(struct px_buf *out, int minor, int status, const char *reason,
                        size_t reason_len, const struct px_hdr *h, size_t n,
                        enum px_framing framing, bool close)
{
    bool drop[PX_HDR_MAX];
    if (n > PX_HDR_MAX || status < 100 || status > 999)
        return -1;
    px_headers_mark_hop(h, n, drop);
    if (!reason_ok(reason, reason_len)) {
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

/* The head of albd's own error response; body_len is what Content-Length
 * announces. */
static int error_head(struct px_buf *out, int minor, int status, size_t body_len)
{
    const char *reason = px_status_reason(status);
    TRY(px_buf_puts(out, minor ? "HTTP/1.1 " : "HTTP/1.0 "));
    TRY(px_buf_num(out, (unsigned)status, 0));
    TRY(px_buf_append(out, " ", 1));
    TRY(px_buf_puts(out, reason));
    TRY(px_buf_puts(out, "\r\nContent-Type: text/plain\r\nCache-Control: no-store\r\n"
                         "Connection: close\r\nContent-Length: "));
    TRY(px_buf_num(out, body_len, 0));
    return px_buf_puts(out, "\r\n\r\n");
}

static size_t error_body_len(int status)
{
    return 4 + strlen(px_status_reason(status)) + 1; /* "NNN reason\n" */
}

int px_headers_error_body(struct px_buf *out, int status)
{
    TRY(px_buf_num(out, (unsigned)status, 0));
    TRY(px_buf_append(out, " ", 1));
    TRY(px_buf_puts(out, px_status_reason(status)));
    return px_buf_append(out, "\n", 1);
}

int px_headers_error(struct px_buf *out, int minor, int status)
{
    TRY(error_head(out, minor, status, error_body_len(status)));
    return px_headers_error_body(out, status);
}

int px_headers_error_head(struct px_buf *out, int minor, int status)
{
    return error_head(out, minor, status, error_body_len(status));
}
