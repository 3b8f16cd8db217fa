#include "grpc/message.h"

#include <stdio.h>
#include <strings.h>

char *ml_grpc_message_encode(const char *msg, char *buf, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;

    if (cap == 0) {
        return buf;
    }
    for (const unsigned char *p = (const unsigned char *)msg; *p != '\0'; p++) {
        if (*p >= 0x20 && *p <= 0x7e && *p != '%') {
            if (n + 1 >= cap) {
                break;
            }
            buf[n++] = (char)*p;
        } else {
            if (n + 3 >= cap) {
                break;
            }
            buf[n++] = '%';
            buf[n++] = hex[*p >> 4];
            buf[n++] = hex[*p & 15];
        }
    }
    buf[n] = '\0';
    return buf;
}

bool ml_grpc_is_content_type(struct ml_slice ct)
{
    static const char prefix[] = "application/grpc";
    const size_t n = sizeof(prefix) - 1;

    if (ct.n < n || strncasecmp((const char *)ct.p, prefix, n) != 0) {
        return false;
    }
    return ct.n == n || ct.p[n] == '+' || ct.p[n] == ';' || ct.p[n] == '-';
}
