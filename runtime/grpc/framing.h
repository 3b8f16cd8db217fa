#ifndef ML_GRPC_FRAMING_H
#define ML_GRPC_FRAMING_H

#include "grpc/framing-t.h"

#include <stdbool.h>
#include <stddef.h>

/* Caller embeds the framer; nothing to deinit. */
void ml_grpc_framer_init(struct ml_grpc_framer *f);
/* Follows n more body bytes (p borrowed for the call). Never fails: any byte sequence is a
 * sequence of prefixes and messages, possibly cut short at the end. */
void ml_grpc_framer_feed(struct ml_grpc_framer *f, const uint8_t *p, size_t n);
/* true when the bytes fed so far end exactly at a message boundary (or none were fed). */
bool ml_grpc_framer_at_boundary(const struct ml_grpc_framer *f);

#endif
