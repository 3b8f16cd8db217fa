/* libFuzzer target: ml_grpc_health_response_decode (runtime/grpc/health.c), the body of a backend's
 * answer to meshlet's health check: any bytes give a status or -EPROTO, never a read past them;
 * a status that decodes is encoded again to the same message (for the statuses we send). In
 * memory, deterministic. */
#include "grpc/health.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *p = malloc(size > 0 ? size : 1); /* exactly the body: reading past it shows */
    uint8_t again[ML_GRPC_HEALTH_FRAME_MAX];
    int s, n;

    if (p == NULL) {
        return 0;
    }
    memcpy(p, data, size);
    s = ml_grpc_health_response_decode(p, size);
    if (s != -EPROTO && s < 0) {
        abort(); /* only -EPROTO is an error */
    }
    if (s >= ML_GRPC_HEALTH_UNKNOWN && s <= ML_GRPC_HEALTH_SERVICE_UNKNOWN) {
        n = ml_grpc_health_response_encode((enum ml_grpc_health_status)s, again, sizeof(again));
        if (n < 0 || ml_grpc_health_response_decode(again, (size_t)n) != s) {
            abort();
        }
    }
    free(p);
    return 0;
}
