/* The grpc-timeout header (gRPC over HTTP/2, "Timeout"): TimeoutValue, 1 to 8 ASCII digits, then
 * one TimeoutUnit: H (hours), M (minutes), S (seconds), m (milliseconds), u (microseconds),
 * n (nanoseconds). Pure functions: no state, no I/O. */
#ifndef ML_GRPC_TIMEOUT_H
#define ML_GRPC_TIMEOUT_H

#include "core/slice-t.h"

#include <stddef.h>
#include <stdint.h>

/* Longest value ml_grpc_timeout_format writes ("99999999m"), with its NUL. */
#define ML_GRPC_TIMEOUT_TEXT_MAX 10

/* value (borrowed) → *ns, the timeout in nanoseconds (at most 99999999 hours: fits). "0n" and
 * the like are accepted and mean "already expired" (the grammar asks for a positive value; a
 * zero is read leniently rather than failing the call). 0, or -EINVAL when value does not
 * follow the grammar (empty, more than 8 digits, a sign, spaces, an unknown unit). */
int ml_grpc_timeout_parse(struct ml_slice value, uint64_t *ns);

/* ms as a grpc-timeout value in buf (cap >= ML_GRPC_TIMEOUT_TEXT_MAX): milliseconds while they
 * fit in 8 digits, else the largest unit that fits, rounded down so the peer never gets more
 * time than ms. Returns buf. */
char *ml_grpc_timeout_format(uint64_t ms, char *buf, size_t cap);

#endif
