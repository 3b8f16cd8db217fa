#include "grpc/framing.h"

#include <string.h>

void ml_grpc_framer_init(struct ml_grpc_framer *f)
{
    memset(f, 0, sizeof(*f));
}

void ml_grpc_framer_feed(struct ml_grpc_framer *f, const uint8_t *p, size_t n)
{
    while (n > 0) {
        if (f->msg_left > 0) {
            size_t k = n < f->msg_left ? n : f->msg_left;

            f->msg_left -= (uint32_t)k;
            f->n_in += k;
            p += k;
            n -= k;
        } else {
            f->prefix[f->prefix_n++] = *p++;
            f->n_in++;
            n--;
            if (f->prefix_n < ML_GRPC_PREFIX_BYTES) {
                continue;
            }
            f->prefix_n = 0;
            f->msg_left = (uint32_t)f->prefix[1] << 24 | (uint32_t)f->prefix[2] << 16 |
                          (uint32_t)f->prefix[3] << 8 | f->prefix[4];
        }
        if (f->msg_left == 0 && f->prefix_n == 0) {
            f->boundary = f->n_in;
            f->n_messages++;
        }
    }
}

bool ml_grpc_framer_at_boundary(const struct ml_grpc_framer *f)
{
    return f->boundary == f->n_in;
}
