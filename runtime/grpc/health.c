/* grpc/health.h: grpc.health.v1 messages in gRPC frames, through nanopb. */
#include "grpc/health.h"

#include "grpc/health.pb.h" /* generated into the build dir from health.proto + health.options */

#include <errno.h>
#include <pb_decode.h>
#include <pb_encode.h>
#include <string.h>

/* gRPC's message prefix: 1 byte compressed flag, 4 bytes big-endian length. */
#define FRAME_PREFIX_BYTES 5

static void put_prefix(uint8_t *buf, size_t len)
{
    buf[0] = 0; /* never compressed: we send no grpc-encoding */
    buf[1] = (uint8_t)(len >> 24);
    buf[2] = (uint8_t)(len >> 16);
    buf[3] = (uint8_t)(len >> 8);
    buf[4] = (uint8_t)len;
}

/* fields/msg framed into buf. Bytes written; -ENOBUFS. */
static int encode_framed(const pb_msgdesc_t *fields, const void *msg, uint8_t *buf, size_t cap)
{
    pb_ostream_t out;

    if (cap < FRAME_PREFIX_BYTES) {
        return -ENOBUFS;
    }
    out = pb_ostream_from_buffer(buf + FRAME_PREFIX_BYTES, cap - FRAME_PREFIX_BYTES);
    if (!pb_encode(&out, fields, msg)) {
        return -ENOBUFS;
    }
    put_prefix(buf, out.bytes_written);
    return (int)(FRAME_PREFIX_BYTES + out.bytes_written);
}

int ml_grpc_health_request_encode(const char *service, uint8_t *buf, size_t cap)
{
    grpc_health_v1_HealthCheckRequest req = grpc_health_v1_HealthCheckRequest_init_zero;
    size_t n = strlen(service);

    if (n > ML_GRPC_HEALTH_SERVICE_MAX || n >= sizeof(req.service)) {
        return -ENAMETOOLONG;
    }
    memcpy(req.service, service, n + 1);
    return encode_framed(grpc_health_v1_HealthCheckRequest_fields, &req, buf, cap);
}

int ml_grpc_health_response_encode(enum ml_grpc_health_status status, uint8_t *buf, size_t cap)
{
    grpc_health_v1_HealthCheckResponse resp = grpc_health_v1_HealthCheckResponse_init_zero;

    resp.status = (grpc_health_v1_HealthCheckResponse_ServingStatus)status;
    return encode_framed(grpc_health_v1_HealthCheckResponse_fields, &resp, buf, cap);
}

int ml_grpc_health_response_decode(const uint8_t *p, size_t n)
{
    grpc_health_v1_HealthCheckResponse resp = grpc_health_v1_HealthCheckResponse_init_zero;
    pb_istream_t in;
    uint32_t len;

    if (n < FRAME_PREFIX_BYTES || p[0] != 0) {
        return -EPROTO; /* cut short, or compressed although we accept no encoding */
    }
    len = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
    if (len != n - FRAME_PREFIX_BYTES) {
        return -EPROTO; /* Check is unary: exactly one message */
    }
    in = pb_istream_from_buffer(p + FRAME_PREFIX_BYTES, len);
    if (!pb_decode(&in, grpc_health_v1_HealthCheckResponse_fields, &resp)) {
        return -EPROTO;
    }
    return (int)resp.status;
}
