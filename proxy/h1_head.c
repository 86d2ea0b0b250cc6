/* The request-head checks of h1_head.h. */
#include "proxy/h1_head.h"

#include <string.h>
#include <strings.h>

#include "proxy/headers.h"

/* Follows the name of a header line byte by byte, to know when the bytes
 * are a Content-Length value. */
static void scan_cl_name(struct px_h1_scan *s, unsigned char ch)
{
    static const char cl[] = "content-length";
    if (s->cl_value)
        return;
    if (ch == ':') {
        s->cl_value = s->cl_name == sizeof cl - 1;
        return;
    }
    if (s->cl_name < sizeof cl - 1 && (ch | 0x20) == (unsigned char)cl[s->cl_name])
        s->cl_name++;
    else
        s->cl_name = 0xff;
}

int px_h1_scan_head(struct px_h1_scan *s, const char *data, size_t len, size_t *stop)
{
    *stop = len;
    for (size_t i = 0; i < len && !s->done; i++) {
        unsigned char ch = (unsigned char)data[i];
        if (s->cr) {
            if (ch != '\n')
                return -1;
            s->cr = false;
            if (s->col == 0) {
                if (s->line > 0)
                    s->done = true;
                continue;
            }
            if (s->line == 0 && (s->sp != 2 || s->prev_sp))
                return -1;
            s->line++;
            s->col = 0;
            continue;
        }
        if (ch == '\r') {
            s->cr = true;
            continue;
        }
        if (ch == '\n')
            return -1;
        if (s->line == 0) {
            if (ch == ' ') {
                if (s->col == 0 || s->prev_sp)
                    return -1;
                s->sp++;
            } else if (ch < 0x21 || ch == 0x7f) {
                return -1;
            }
            s->prev_sp = ch == ' ';
        } else {
            if (s->col == 0 && (ch == ' ' || ch == '\t'))
                return -1;
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
                return -1;
            if (s->col == 0) {
                s->cl_name = 0;
                s->cl_value = false;
            }
            scan_cl_name(s, ch);
            if (s->cl_value && ch == '\t') {
                s->col++;
                *stop = i;
                return 0;
            }
        }
        s->col++;
    }
    return 0;
}

int px_h1_te_status(const char *v, size_t vl)
{
    if (vl == 7 && strncasecmp(v, "chunked", 7) == 0)
        return 0;
    size_t i = vl;
    while (i && v[i - 1] != ',')
        i--;
    if (i == 0)
        return 400;
    const char *last = v + i;
    size_t ll = vl - i;
    while (ll && (*last == ' ' || *last == '\t'))
        last++, ll--;
    if (ll != 7 || strncasecmp(last, "chunked", 7) != 0 || px_header_has_token(v, i - 1, "chunked"))
        return 400;
    return 501;
}

int px_h1_check_request(const struct px_hdr *h, size_t n, const char *target, size_t target_len,
                        int minor, bool options, bool get_no_body, struct px_h1_req_info *out)
{
    size_t hosts = 0, tes = 0;
    bool conn_upgrade = false, up_ws = false;
    *out = (struct px_h1_req_info){0};
    for (size_t i = 0; i < n; i++) {
        const struct px_hdr *x = &h[i];
        size_t vl = px_h1_trim_ows(x->value, x->value_len);
        if (x->name_len == 0)
            return 400;
        if (px_h1_hdr_is(x, "host")) {
            if (++hosts > 1 || !px_authority_check(x->value, vl))
                return 400;
        } else if (px_h1_hdr_is(x, "transfer-encoding")) {
            if (++tes > 1 || minor == 0)
                return 400;
            int te = px_h1_te_status(x->value, vl);
            if (te)
                return te;
        } else if (px_h1_hdr_is(x, "expect") && minor) {
            if (vl != 12 || strncasecmp(x->value, "100-continue", 12) != 0)
                return 417;
            out->expect_continue = true;
        } else if (px_h1_hdr_is(x, "connection")) {
            conn_upgrade = conn_upgrade || px_header_has_token(x->value, vl, "upgrade");
        } else if (px_h1_hdr_is(x, "upgrade")) {
            up_ws = up_ws || px_header_has_token(x->value, vl, "websocket");
        }
    }
    if (hosts == 0 && minor)
        return 400;
    int st = px_target_parse(target, target_len, options, true, &out->target);
    if (st)
        return st;
    out->ws = conn_upgrade && up_ws && minor && get_no_body;
    return 0;
}
