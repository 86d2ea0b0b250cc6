/* Protocol handler choice per listener kind. */
#include "proxy/protos.h"

#include <string.h>

#include "proxy/h1.h"
#include "proxy/h2.h"

static const struct px_proto *choose_http1(const unsigned char *alpn, unsigned alpn_len)
{
    (void)alpn;
    (void)alpn_len;
    return &px_h1_proto;
}

static const struct px_proto *choose_alpn(const unsigned char *alpn, unsigned alpn_len)
{
    if (alpn && alpn_len == 2 && memcmp(alpn, "h2", 2) == 0)
        return &px_h2_proto;
    return &px_h1_proto;
}

const struct px_proto_choice px_protocols_http1 = {.name = "http/1.1", .choose = choose_http1};
const struct px_proto_choice px_protocols_alpn = {.name = "h2,http/1.1", .choose = choose_alpn};
