/* grpc.health.v1 messages (runtime/grpc/health.proto, encoded with nanopb) inside their gRPC
 * length-prefixed frames: the Check request meshlet sends to backends, the response it reads
 * from them and the one it answers for itself. */
#ifndef ML_GRPC_HEALTH_H
#define ML_GRPC_HEALTH_H

#include <stddef.h>
#include <stdint.h>

/* The longest service name a Check request carries (health.options: max_size counts the NUL);
 * the config check refuses a longer cluster health_service. */
#define ML_GRPC_HEALTH_SERVICE_MAX 128

/* The largest framed message either way: the 5-byte prefix, the service field's tag and length
 * (3 bytes at most for 128) and the name. Responses are 2 bytes of protobuf. */
#define ML_GRPC_HEALTH_FRAME_MAX (5 + 3 + ML_GRPC_HEALTH_SERVICE_MAX)

/* The :path of the two methods. */
#define ML_GRPC_HEALTH_CHECK_PATH "/grpc.health.v1.Health/Check"
#define ML_GRPC_HEALTH_WATCH_PATH "/grpc.health.v1.Health/Watch"

/* HealthCheckResponse.ServingStatus, as numbered on the wire. */
enum ml_grpc_health_status {
    ML_GRPC_HEALTH_UNKNOWN = 0,
    ML_GRPC_HEALTH_SERVING = 1,
    ML_GRPC_HEALTH_NOT_SERVING = 2,
    ML_GRPC_HEALTH_SERVICE_UNKNOWN = 3,
};

/* A framed HealthCheckRequest for service (NUL-terminated; "" = the whole server) into buf.
 * Bytes written; -ENAMETOOLONG (service over ML_GRPC_HEALTH_SERVICE_MAX), -ENOBUFS (cap too small).
 */
int ml_grpc_health_request_encode(const char *service, uint8_t *buf, size_t cap);
/* A framed HealthCheckResponse with status into buf. Bytes written; -ENOBUFS. */
int ml_grpc_health_response_encode(enum ml_grpc_health_status status, uint8_t *buf, size_t cap);
/* The status of the one framed HealthCheckResponse that p[0..n) holds (a response body): the
 * wire value (0..3, or any other number a newer server sends), or -EPROTO for a body that is not
 * exactly one uncompressed frame of a decodable message. */
int ml_grpc_health_response_decode(const uint8_t *p, size_t n);

#endif
