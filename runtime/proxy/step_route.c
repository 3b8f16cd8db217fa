/* Step route: the first route of the call's listener that matches its :authority, :path and
 * headers (proxy/route.c); none: UNIMPLEMENTED (HTTP 404). */
#include "proxy/step.h"

#include "grpc/status-t.h"
#include "proxy/call_int.h"
#include "proxy/route.h"

#include <stdio.h>

static enum ml_step_rv route_run(struct ml_call *call)
{
    struct ml_route_request req = {
        .path = call->fields.path,
        .authority = call->fields.authority,
        .hdrs = &call->req_hdrs,
    };
    char msg[CALL_PATH_MAX + 160];

    if (req.authority.n == 0) {
        req.authority = call->fields.host;
    }
    call->route = ml_route_match(call->snap, call->listener, &req);
    if (call->route < 0) {
        snprintf(msg, sizeof(msg), "no route for %s on listener %s", call->path,
                 call->snap->listeners[call->listener].name);
        ml_call_answer(call, ML_GRPC_UNIMPLEMENTED, 404, msg);
        return ML_STEP_ANSWERED;
    }
    return ML_STEP_CONTINUE;
}

const struct ml_step ml_step_route = {.name = "route", .run = route_run};
