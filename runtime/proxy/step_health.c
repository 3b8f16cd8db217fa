/* Step health: meshlet answers grpc.health.v1.Health/Check itself, on every listener, before
 * any route is matched and without reaching a backend: its own readiness, SERVING while it
 * serves, NOT_SERVING once it drains (a load balancer in front stops sending it calls while the
 * ones in flight finish). The request's service name is not read (the answer comes with the
 * headers, before any body): meshlet answers for itself whatever the name. Watch, a stream of
 * changes, is UNIMPLEMENTED: probes use Check. Other requests go on to the route. */
#include "proxy/step.h"

#include "core/buf.h"
#include "grpc/health.h"
#include "grpc/status-t.h"
#include "h2/h2.h"
#include "h2/hdrs.h"
#include "meshlet_config.h"
#include "proxy/call_int.h"
#include "proxy/proxy_int.h"

#include <string.h>

static bool path_is(const struct ml_call *call, const char *path)
{
    struct ml_slice p = call->fields.path;

    return p.n == strlen(path) && memcmp(p.p, path, p.n) == 0;
}

/* A whole gRPC response: headers, one HealthCheckResponse, trailers with grpc-status 0. The
 * body and trailers go as downstream pulls them (call.c's down_read). */
static void answer_check(struct ml_call *call, enum ml_grpc_health_status status)
{
    uint8_t frame[ML_GRPC_HEALTH_FRAME_MAX];
    struct ml_h2_hdrs h;
    int n = ml_grpc_health_response_encode(status, frame, sizeof(frame));
    int rv = n < 0 ? n : 0;

    call->up_done = true; /* request bytes that come are dropped */
    call->no_replay = true;
    call->resp_started = true;
    call->resp_ended = true;
    ml_call_obs_answer(&call->obs, true, ML_GRPC_OK, 200);
    ml_h2_hdrs_init(&h, CONFIG_ML_MAX_HEADER_LIST_BYTES);
    rv = rv < 0 ? rv : ml_buf_append(&call->resp, frame, (size_t)n);
    rv = rv < 0 ? rv : ml_h2_hdrs_add_str(&call->resp_trailers, "grpc-status", "0");
    rv = rv < 0 ? rv : ml_h2_hdrs_add_str(&h, ":status", "200");
    rv = rv < 0 ? rv : ml_h2_hdrs_add_str(&h, "content-type", "application/grpc");
    rv = rv < 0 ? rv : ml_h2_stream_respond(call->down, &h, false);
    ml_h2_hdrs_deinit(&h);
    if (rv < 0) {
        ml_h2_stream_reset(call->down, ML_H2_INTERNAL_ERROR);
        call->down = NULL;
    }
}

static enum ml_step_rv health_run(struct ml_call *call)
{
    if (!call->grpc || call->down == NULL) {
        return ML_STEP_CONTINUE;
    }
    if (path_is(call, ML_GRPC_HEALTH_CHECK_PATH)) {
        answer_check(call,
                     call->proxy->draining ? ML_GRPC_HEALTH_NOT_SERVING : ML_GRPC_HEALTH_SERVING);
        return ML_STEP_ANSWERED;
    }
    if (path_is(call, ML_GRPC_HEALTH_WATCH_PATH)) {
        ml_call_answer(call, ML_GRPC_UNIMPLEMENTED, 404,
                       "grpc.health.v1.Health/Watch is not served by meshlet: use Check");
        return ML_STEP_ANSWERED;
    }
    return ML_STEP_CONTINUE;
}

const struct ml_step ml_step_health = {.name = "health", .run = health_run};
