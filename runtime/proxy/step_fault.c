/* Step fault: fault injection for tests of the callers (chaos). The route's fault_delay holds
 * that share of calls for its time before they go on; fault_abort ends that share with its
 * gRPC status (plain HTTP: the matching HTTP status), never forwarded. With fault_headers = on a
 * request header asks for a fault on its own call: x-meshlet-fault-delay: MS (1..3600000),
 * x-meshlet-fault-abort: STATUS (a gRPC status other than ok, by name or number); a malformed one
 * is refused with INVALID_ARGUMENT rather than ignored (a test that asked for a fault would pass
 * without it). The delay comes first (a delayed call may then be aborted). The draws use the
 * proxy's random source, seeded by MESHLET_RANDOM_SEED in tests, and both are drawn for every call
 * on a route that has them, so one seed gives one sequence. */
#include "proxy/step.h"

#include "core/loop.h"
#include "core/rand.h"
#include "core/stats.h"
#include "core/timer.h"
#include "grpc/status.h"
#include "proxy/call_int.h"
#include "proxy/proxy_int.h"

#include <stdio.h>
#include <string.h>

/* The longest status name ("failed-precondition" is 19). */
#define FAULT_STATUS_TEXT_MAX 32

/* The longest delay a header may ask for: fault_delay's own bound in the schema (1 h). */
#define FAULT_HEADER_DELAY_MAX_MS 3600000u

/* A header's decimal value in 1..max; -1 when absent, -2 when malformed. */
static long header_number(struct ml_call *call, const char *name, unsigned long max)
{
    struct ml_slice v = ml_call_header(call, name);
    unsigned long n = 0;

    if (v.n == 0) {
        return -1;
    }
    for (size_t i = 0; i < v.n; i++) {
        if (v.p[i] < '0' || v.p[i] > '9' || n > max) {
            return -2;
        }
        n = n * 10 + (unsigned long)(v.p[i] - '0');
    }
    return n >= 1 && n <= max ? (long)n : -2;
}

/* x-meshlet-fault-abort: a status other than ok, by name ("resource-exhausted") or number, as
 * fault_abort takes it; -1 when absent, -2 when malformed. */
static long header_status(struct ml_call *call)
{
    struct ml_slice v = ml_call_header(call, "x-meshlet-fault-abort");
    char text[FAULT_STATUS_TEXT_MAX + 1];
    int code;

    if (v.n == 0) {
        return -1;
    }
    if (v.n > FAULT_STATUS_TEXT_MAX) {
        return -2;
    }
    memcpy(text, v.p, v.n);
    text[v.n] = '\0';
    code = ml_grpc_status_parse(text);
    return code > 0 ? code : -2;
}

static bool drawn(struct ml_call *call, uint32_t ppm)
{
    return ppm > 0 && ml_rand_below(&call->proxy->rng, ML_CFG_PPM) < ppm;
}

/* After the delay (or none): the abort, if one was drawn; else the next steps. */
static enum ml_step_rv fault_abort(struct ml_call *call)
{
    char msg[80];

    if (call->fault_abort == 0) {
        return ML_STEP_CONTINUE;
    }
    ml_stats_route(call->obs.stats, call->route, ML_STATS_ROUTE_FAULT_ABORTED);
    snprintf(msg, sizeof(msg), "fault injected: abort (grpc-status %d)", call->fault_abort);
    ml_call_answer(call, call->fault_abort, ml_call_http_status(call->fault_abort), msg);
    return ML_STEP_ANSWERED;
}

static void on_delay_over(void *user)
{
    struct ml_call *call = user;

    if (call->down == NULL || call->up_done) {
        return; /* the client went, or the deadline answered it meanwhile */
    }
    if (fault_abort(call) == ML_STEP_CONTINUE) {
        ml_call_steps_run(call); /* the steps after this one */
    }
    ml_call_maybe_done(call);
}

static enum ml_step_rv fault_run(struct ml_call *call)
{
    const struct ml_cfg_route *route = &call->snap->routes[call->route];
    long delay_ms = drawn(call, route->fault_delay_ppm) ? (long)route->fault_delay_ms : 0;
    long status = drawn(call, route->fault_abort_ppm) ? route->fault_abort_status : 0;

    if (route->fault_headers) {
        long h_delay = header_number(call, "x-meshlet-fault-delay", FAULT_HEADER_DELAY_MAX_MS);
        long h_abort = header_status(call);

        if (h_delay == -2 || h_abort == -2) {
            ml_call_answer(call, ML_GRPC_INVALID_ARGUMENT, 400,
                           "x-meshlet-fault-delay wants 1..3600000 (ms), x-meshlet-fault-abort a "
                           "gRPC status other than ok (a name or 1..16)");
            return ML_STEP_ANSWERED;
        }
        delay_ms = h_delay > 0 ? h_delay : delay_ms;
        status = h_abort > 0 ? h_abort : status;
    }
    call->fault_abort = (int)status;
    if (delay_ms == 0) {
        return fault_abort(call);
    }
    ml_timer_free(call->hold);
    if ((call->hold = ml_timer_new(call->proxy->loop, on_delay_over, call)) == NULL) {
        ml_call_unavailable(call, "out of memory for a fault delay");
        return ML_STEP_ANSWERED;
    }
    ml_stats_route(call->obs.stats, call->route, ML_STATS_ROUTE_FAULT_DELAYED);
    ml_timer_arm(call->hold, (uint32_t)delay_ms);
    return ML_STEP_WAIT; /* the deadline and the client's going still end the call meanwhile */
}

const struct ml_step ml_step_fault = {.name = "fault", .run = fault_run};
