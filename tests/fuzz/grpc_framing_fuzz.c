/* libFuzzer: gRPC message framing (grpc/framing.c) over a body cut into pieces the input
 * chooses. Invariants: the boundaries found do not depend on how the body was cut, and they
 * agree with a straightforward reference walk over the whole body. */
#include "grpc/framing.h"

#include <stdint.h>
#include <stdlib.h>

/* Reference: walk the body prefix by prefix; count whole messages and the last boundary. */
static void reference(const uint8_t *p, size_t n, uint64_t *n_messages, uint64_t *boundary)
{
    size_t off = 0;

    *n_messages = 0;
    *boundary = 0;
    while (n - off >= 5) {
        uint64_t len = (uint64_t)p[off + 1] << 24 | (uint64_t)p[off + 2] << 16 |
                       (uint64_t)p[off + 3] << 8 | p[off + 4];
        if (len > n - off - 5) {
            return;
        }
        off += 5 + (size_t)len;
        (*n_messages)++;
        *boundary = off;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ml_grpc_framer whole, pieces;
    uint64_t ref_messages, ref_boundary;
    size_t step, off;

    if (size < 1) {
        return 0;
    }
    step = (size_t)data[0] % 17 + 1; /* the first byte picks the piece size */
    data++;
    size--;

    ml_grpc_framer_init(&whole);
    ml_grpc_framer_feed(&whole, data, size);
    ml_grpc_framer_init(&pieces);
    for (off = 0; off < size; off += step) {
        ml_grpc_framer_feed(&pieces, data + off, size - off < step ? size - off : step);
    }
    reference(data, size, &ref_messages, &ref_boundary);
    if (whole.n_in != size || pieces.n_in != size || whole.boundary != pieces.boundary ||
        whole.n_messages != pieces.n_messages || whole.boundary != ref_boundary ||
        whole.n_messages != ref_messages || whole.boundary > whole.n_in) {
        abort();
    }
    return 0;
}
