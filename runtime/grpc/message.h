/* What gRPC's HTTP/2 mapping asks of header values meshlet writes or reads itself. */
#ifndef ML_GRPC_MESSAGE_H
#define ML_GRPC_MESSAGE_H

#include "core/slice-t.h"

#include <stdbool.h>
#include <stddef.h>

/* msg as a grpc-message value: percent-encoded (every byte outside 0x20..0x7E, and '%', becomes
 * %XX), cut at a whole escape to fit cap bytes with the NUL. Returns buf. */
char *ml_grpc_message_encode(const char *msg, char *buf, size_t cap);

/* true for a gRPC content-type: "application/grpc" alone or followed by '+', ';' or '-'
 * (application/grpc+proto, application/grpc-web, ...), case-insensitively. */
bool ml_grpc_is_content_type(struct ml_slice content_type);

#endif
