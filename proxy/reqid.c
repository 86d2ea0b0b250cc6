/* Request IDs (see reqid.h). */
#include "proxy/reqid.h"

#include "proxy/buf.h"
#include "proxy/exchange-t.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

_Static_assert(PX_REQID_SIZE == PX_EXCHANGE_REQID_SIZE, "struct px_exchange's req_id fits an ID");

static char prefix[17];
static pthread_once_t prefix_once = PTHREAD_ONCE_INIT;

static void prefix_init(void)
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) {
        /* No CSPRNG (cannot happen on Linux >= 3.17): time and pid still
         * differ across restarts. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 16);
    }
    snprintf(prefix, sizeof prefix, "%016llx", (unsigned long long)r);
}

/* "<prefix>-<worker, hex>-<counter, hex>", formatted by hand: this runs
 * for every request, and snprintf was a measurable part of its cost. */
size_t px_reqid_new(char *out, int wid)
{
    static _Thread_local uint64_t counter;
    pthread_once(&prefix_once, prefix_init);
    _Static_assert(PX_REQID_SIZE > 16 + 1 + PX_NUM_MAX + 1 + PX_NUM_MAX, "an ID fits");
    memcpy(out, prefix, 16);
    size_t n = 16;
    out[n++] = '-';
    n += px_num_fmt(out + n, (unsigned)wid, 1);
    out[n++] = '-';
    n += px_num_fmt(out + n, ++counter, 1);
    out[n] = '\0';
    return n;
}

bool px_reqid_valid(const char *v, size_t n)
{
    if (n == 0 || n > PX_REQID_CLIENT_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x21 || (unsigned char)v[i] > 0x7e)
            return false;
    return true;
}

static bool is_reqid(const struct px_hdr *h)
{
    return h->name_len == 12 && strncasecmp(h->name, "x-request-id", 12) == 0;
}

int px_reqid_echo_h1(struct px_buf *b, const char *id)
{
    if (b->len < 4 || memcmp(b->data + b->len - 4, "\r\n\r\n", 4) != 0)
        return -1;
    size_t keep = b->len;
    b->len -= 2;
    if (px_buf_puts(b, "X-Request-Id: ") < 0 || px_buf_puts(b, id) < 0 ||
        px_buf_puts(b, "\r\n\r\n") < 0) {
        b->len = keep;
        memcpy(b->data + keep - 4, "\r\n\r\n", 4);
        return -1;
    }
    return 0;
}

size_t px_reqid_apply(struct px_hdr *hdrs, size_t n, bool trust_client, int wid, char *id)
{
    id[0] = '\0';
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_reqid(&hdrs[i])) {
            hdrs[k++] = hdrs[i];
            continue;
        }
        /* The first valid one, when trusted; every other one goes. */
        if (trust_client && !id[0] && px_reqid_valid(hdrs[i].value, hdrs[i].value_len)) {
            memcpy(id, hdrs[i].value, hdrs[i].value_len);
            id[hdrs[i].value_len] = '\0';
        }
    }
    size_t len = id[0] ? strlen(id) : px_reqid_new(id, wid);
    if (k < PX_HDR_MAX)
        hdrs[k++] = (struct px_hdr){"X-Request-Id", 12, id, len};
    return k;
}
