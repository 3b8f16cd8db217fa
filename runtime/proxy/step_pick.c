/* Step pick: the route's cluster (weighted split), admitted under its max_requests, then a host
 * by the cluster's LB policy (balance/lb.h) with the call's hash key and the hosts it tried, and
 * a connection to it. A replay (and later a retry) runs this step again: the cluster stays, the
 * host is another one where there is one. */
#include "proxy/step.h"

#include "balance/balance.h"
#include "balance/lb.h"
#include "grpc/status-t.h"
#include "h2/h2.h"
#include "proxy/call_int.h"
#include "proxy/obs.h"
#include "proxy/proxy_int.h"
#include "proxy/route.h"

#include <errno.h>
#include <stdio.h>

/* The request's key for hash policies, as the cluster's hash = says; empty without one. */
static struct ml_slice hash_key(struct ml_call *call)
{
    const struct ml_cfg_cluster *cfg = &call->snap->clusters[ml_cluster_index(call->cluster)];
    struct ml_slice none = {(const uint8_t *)"", 0};

    switch (cfg->hash) {
    case ML_CFG_HASH_HEADER:
        return ml_call_header(call, cfg->hash_header);
    case ML_CFG_HASH_AUTHORITY:
        return ml_call_header(call, ":authority");
    case ML_CFG_HASH_PATH:
        return ml_call_header(call, ":path");
    case ML_CFG_HASH_NONE:
        break;
    }
    return none;
}

/* The cluster of the route's weighted split, counted in its max_requests (which keeps its
 * balance alive across a hot apply). 0; else the call was answered. */
static int admit(struct ml_call *call)
{
    struct ml_proxy *p = call->proxy;
    struct ml_cluster *cl = ml_balance_cluster(
        p->balance, ml_route_pick_cluster(&call->snap->routes[call->route], ml_proxy_random(p)));
    char msg[200];

    ml_call_obs_route(&call->obs, p, call->route, cl);
    if (ml_cluster_call_begin(cl, msg, sizeof(msg)) < 0) {
        ml_call_unavailable(call, msg);
        return -EBUSY;
    }
    call->cluster = cl;
    return 0;
}

static enum ml_step_rv pick_run(struct ml_call *call)
{
    struct ml_lb_pick_ctx ctx;
    struct ml_h2_conn *conn;
    char msg[200];
    int rv;

    if (call->cluster == NULL && admit(call) < 0) {
        return ML_STEP_ANSWERED;
    }
    ctx = (struct ml_lb_pick_ctx){
        .hash_key = hash_key(call),
        .tried = &call->tried,
        .rand = &call->proxy->rng,
    };
    rv = ml_cluster_pick(call->cluster, &call->waiter, &ctx, &conn, msg, sizeof(msg));
    ml_call_obs_endpoint(&call->obs, call->proxy, call->waiter.endpoint);
    if (call->waiter.endpoint >= 0) {
        ml_lb_tried_add(&call->tried, (uint32_t)call->waiter.endpoint);
    }
    if (rv == 0) {
        return ml_call_open_upstream(call, conn) == 0 ? ML_STEP_CONTINUE : ML_STEP_ANSWERED;
    }
    if (rv == -EINPROGRESS) {
        return ML_STEP_WAIT; /* the waiter's on_ready opens the stream, on_fail answers */
    }
    ml_call_unavailable(call, msg);
    return ML_STEP_ANSWERED;
}

const struct ml_step ml_step_pick = {.name = "pick", .run = pick_run};
