#ifndef ML_CORE_SLICE_T_H
#define ML_CORE_SLICE_T_H

#include <stddef.h>
#include <stdint.h>

/* A view of bytes that owns nothing; whoever hands one out says who owns the bytes and for how
 * long they stay valid. */
struct ml_slice {
    const uint8_t *p;
    size_t n;
};

#endif
