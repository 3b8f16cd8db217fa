/* proxy/step.h: the order of a call's request-policy steps. */
#include "proxy/step.h"

#include "core/kconfig.h"
#include "core/log.h"
#include "proxy/call_int.h"

#include <stddef.h>

/* In this order: what each needs is decided by the ones before it. Steps whose feature does not
 * exist yet, or that Kconfig leaves out (their files are then not compiled), have no entry
 * (their config keys are refused, config/unimplemented.c or the schema's FEATURE column, so
 * nothing fails open). authz goes before rate_limit (a denied call takes no token from the bucket
 * of calls that are allowed, costs no backend and no fault delay); retry is not a step before the
 * upstream but the end of an attempt (step_retry.c, called where call.c ends one): it runs
 * ml_step_pick again with the hosts tried. */
/* One entry a line: clang-format cannot tell that ML_IF_ENABLED ends with a comma. */
/* clang-format off */
static const struct ml_step *const steps[] = {
    &ml_step_health,     /* grpc.health.v1 Check for meshlet itself: no route, no backend */
    &ml_step_route,      /* the route: UNIMPLEMENTED when none matches */
    &ml_step_deadline,   /* grpc-timeout and the route's timeout; stream_stall_timeout */
    &ml_step_authz,      /* the listener's [authz]: PERMISSION_DENIED, no backend reached */
    /* the route's token bucket: RESOURCE_EXHAUSTED when empty */
    ML_IF_ENABLED(CONFIG_ML_RATE_LIMIT, (&ml_step_rate_limit,))
    /* fault_delay, fault_abort, fault_headers */
    ML_IF_ENABLED(CONFIG_ML_FAULT, (&ml_step_fault,))
    &ml_step_pick,       /* the cluster (weighted split, max_requests), a host, a connection */
};
/* clang-format on */

#define N_STEPS (sizeof(steps) / sizeof(steps[0]))

void ml_call_steps_run(struct ml_call *call)
{
    while (call->next_step < N_STEPS) {
        const struct ml_step *step = steps[call->next_step++];

        switch (step->run(call)) {
        case ML_STEP_CONTINUE:
            continue;
        case ML_STEP_ANSWERED:
            call->next_step = N_STEPS; /* nothing more runs */
            ML_LOG_DBG("call %llu: answered by step %s", (unsigned long long)call->id, step->name);
            return;
        case ML_STEP_WAIT:
            return;
        }
    }
}
