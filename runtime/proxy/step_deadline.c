/* Step deadline: the call's deadline (the client's grpc-timeout and the route's timeout,
 * whichever is sooner) and its listener's stream_stall_timeout check. */
#include "proxy/step.h"

#include "proxy/call_int.h"

static enum ml_step_rv deadline_run(struct ml_call *call)
{
    if (ml_call_arm_deadline(call, &call->snap->routes[call->route]) < 0 ||
        ml_call_arm_stall(call, &call->snap->listeners[call->listener]) < 0) {
        return ML_STEP_ANSWERED;
    }
    return ML_STEP_CONTINUE;
}

const struct ml_step ml_step_deadline = {.name = "deadline", .run = deadline_run};
