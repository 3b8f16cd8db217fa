/* Retries: the end of an attempt that failed. The call goes again through the pick step (its
 * tried set steers it to another host where there is one) when all of these hold:
 * - nothing of the response went downstream, the client is still there, and upstream took no
 *   more of the request than the call keeps for this (CALL_RETRY_BUFFER_BYTES: a client stream
 *   that sent more is never sent again);
 * - a refused stream (GOAWAY, REFUSED_STREAM: never processed) goes again at once, up to
 *   CALL_MAX_REPLAYS times, whatever the route says: that is safe for any call;
 * - anything else only as the route says: its cause in retry_on, fewer than `retries` retries so
 *   far, fewer than the cluster's max_retries retries in flight, and a backoff that ends before
 *   the call's deadline.
 * Backoff: retry k waits a uniform random time in [FROM, min(TO, FROM * 2^k)] of retry_backoff
 * = FROM..TO: exponential, with full jitter over each step, never outside the range. */
#include "proxy/step.h"

#include "balance/balance.h"
#include "config/snapshot-t.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/rand.h"
#include "core/stats.h"
#include "core/timer.h"
#include "grpc/status-t.h"
#include "proxy/call_int.h"
#include "proxy/proxy_int.h"

#include <errno.h>
#include <stdio.h>

/* The retry_on condition of an attempt that ended as cause; 0: none names it. */
static uint32_t condition(enum ml_retry_cause cause, int grpc_status)
{
    switch (cause) {
    case ML_RETRY_RESET:
        return ML_CFG_RETRY_RESET;
    case ML_RETRY_CONNECT_FAILED:
        return ML_CFG_RETRY_CONNECT_FAILURE;
    case ML_RETRY_STATUS:
        switch (grpc_status) {
        case ML_GRPC_UNAVAILABLE:
            return ML_CFG_RETRY_UNAVAILABLE;
        case ML_GRPC_RESOURCE_EXHAUSTED:
            return ML_CFG_RETRY_RESOURCE_EXHAUSTED;
        case ML_GRPC_CANCELLED:
            return ML_CFG_RETRY_CANCELLED;
        case ML_GRPC_DEADLINE_EXCEEDED:
            return ML_CFG_RETRY_DEADLINE_EXCEEDED;
        default:
            return 0;
        }
    case ML_RETRY_REFUSED:
        break;
    }
    return 0;
}

bool ml_call_retry_wanted(const struct ml_call *call, enum ml_retry_cause cause, int grpc_status)
{
    const struct ml_cfg_route *route;

    if (call->down == NULL || call->up_done || call->resp_started || call->no_replay ||
        call->cluster == NULL || call->route < 0) {
        return false;
    }
    if (cause == ML_RETRY_REFUSED) {
        return call->n_replays < CALL_MAX_REPLAYS;
    }
    route = &call->snap->routes[call->route];
    return (route->retry_on & condition(cause, grpc_status)) != 0 &&
           call->n_retries < route->retries &&
           (!call->has_deadline || ml_time_now_ms() < call->deadline_ms);
}

/* The wait before retry k (1 for the first): uniform in [from, min(to, from * 2^k)]. */
static uint32_t backoff_ms(struct ml_call *call, const struct ml_cfg_range_ms *r, unsigned k)
{
    uint64_t cap = r->from_ms;

    for (unsigned i = 0; i < k && cap < r->to_ms; i++) {
        cap *= 2;
    }
    if (cap > r->to_ms) {
        cap = r->to_ms;
    }
    if (cap <= r->from_ms) {
        return r->from_ms;
    }
    return r->from_ms + ml_rand_below(&call->proxy->rng, (uint32_t)(cap - r->from_ms) + 1);
}

/* The backoff is over: the call goes to the pick step again (which answers it if it cannot). */
static void on_backoff_over(void *user)
{
    struct ml_call *call = user;

    if (call->down == NULL || call->up_done) {
        return; /* ended meanwhile (client gone, deadline): the call is freed without us */
    }
    ML_LOG_DBG("call %llu: retry %u of %u", (unsigned long long)call->id, call->n_retries,
               call->snap->routes[call->route].retries);
    ml_step_pick.run(call);
    ml_call_maybe_done(call);
}

bool ml_call_retry(struct ml_call *call, enum ml_retry_cause cause, int grpc_status)
{
    const struct ml_cfg_route *route;
    uint32_t delay;
    char why[160];

    if (!ml_call_retry_wanted(call, cause, grpc_status) || ml_call_rewind_request(call) < 0) {
        return false;
    }
    if (cause == ML_RETRY_REFUSED) {
        call->n_replays++;
        ML_LOG_INF("call %llu: %s: cluster %s refused the stream (GOAWAY): sending it again",
                   (unsigned long long)call->id, call->path, ml_cluster_name(call->cluster));
        ml_step_pick.run(call); /* it answers the call itself when it cannot go */
        return true;
    }
    route = &call->snap->routes[call->route];
    delay = backoff_ms(call, &route->retry_backoff, call->n_retries + 1u);
    if (call->has_deadline && ml_time_now_ms() + delay >= call->deadline_ms) {
        ML_LOG_INF("call %llu: %s: not retried: its deadline comes before the backoff ends",
                   (unsigned long long)call->id, call->path);
        return false;
    }
    if (ml_cluster_retry_begin(call->cluster, why, sizeof(why)) < 0) {
        ML_LOG_INF("call %llu: %s: not retried: %s", (unsigned long long)call->id, call->path, why);
        ml_stats_route(call->obs.stats, call->route, ML_STATS_ROUTE_RETRY_OVERFLOW);
        return false;
    }
    call->retrying = true;     /* released when the retried attempt (or the call) ends */
    ml_timer_free(call->hold); /* a fault delay's, or the last backoff's */
    if ((call->hold = ml_timer_new(call->proxy->loop, on_backoff_over, call)) == NULL) {
        return false; /* out of memory: the failure stands (the slot goes with the call) */
    }
    call->n_retries++;
    ml_stats_route(call->obs.stats, call->route, ML_STATS_ROUTE_RETRY);
    ML_LOG_INF("call %llu: %s: attempt %u failed: retry %u in %u ms", (unsigned long long)call->id,
               call->path, (unsigned)call->n_attempts, (unsigned)call->n_retries, delay);
    ml_timer_arm(call->hold, delay);
    return true;
}
