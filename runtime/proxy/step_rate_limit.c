/* Step rate_limit: the route's local token bucket (rate_limit = N/s|N/m [burst B]). The bucket
 * holds up to B tokens and gains N per second (or minute), continuously; a call takes one, and
 * a call that finds it empty is refused RESOURCE_EXHAUSTED (plain HTTP: 429), costing no
 * backend. One bucket per route of this proxy; a hot apply keeps the bucket of a route whose
 * name and rate remain (a reload is no way around a limit), others start full. */
#include "proxy/step.h"

#include "config/snapshot.h"
#include "core/alloc.h"
#include "core/stats.h"
#include "core/timer.h"
#include "grpc/status-t.h"
#include "proxy/call_int.h"
#include "proxy/proxy_int.h"

#include <stdio.h>
#include <string.h>

/* Tokens are counted in 1/60000 parts (ML_RL_UNIT per token): a rate of R tokens per minute
 * adds exactly R parts per ms, so refills are exact integers at any rate the schema allows. */
#define ML_RL_UNIT 60000u

struct rl_bucket {
    uint64_t parts;   /* tokens × ML_RL_UNIT */
    uint64_t last_ms; /* ml_time_now_ms() of the last refill */
};

struct ml_rate_limits {
    struct ml_snapshot *snap; /* the routes the buckets are for (a reference: the next apply
                                 reads their names) */
    uint32_t n;
    struct rl_bucket buckets[]; /* as snap->routes */
};

void ml_rate_limits_free(struct ml_rate_limits *rl)
{
    if (rl != NULL) {
        ml_snapshot_unref(rl->snap);
        ml_free(rl);
    }
}

/* The buckets for snap's routes, carrying those of old whose route name and rate remain. NULL
 * when out of memory. */
static struct ml_rate_limits *rl_next(const struct ml_rate_limits *old, struct ml_snapshot *snap,
                                      uint64_t now)
{
    struct ml_rate_limits *rl =
        ml_calloc(1, sizeof(*rl) + (size_t)snap->n_routes * sizeof(rl->buckets[0]));

    if (rl == NULL) {
        return NULL;
    }
    rl->snap = ml_snapshot_ref(snap);
    rl->n = snap->n_routes;
    for (uint32_t i = 0; i < rl->n; i++) {
        const struct ml_cfg_route *r = &snap->routes[i];

        rl->buckets[i] = (struct rl_bucket){(uint64_t)r->rate_burst * ML_RL_UNIT, now};
        for (uint32_t j = 0; old != NULL && j < old->n; j++) {
            const struct ml_cfg_route *o = &old->snap->routes[j];

            if (strcmp(o->name, r->name) == 0 && o->rate_per_min == r->rate_per_min &&
                o->rate_burst == r->rate_burst) {
                rl->buckets[i] = old->buckets[j];
            }
        }
    }
    return rl;
}

static enum ml_step_rv rate_limit_run(struct ml_call *call)
{
    struct ml_proxy *p = call->proxy;
    const struct ml_cfg_route *route = &call->snap->routes[call->route];
    uint64_t now = ml_time_now_ms(), cap = (uint64_t)route->rate_burst * ML_RL_UNIT;
    struct rl_bucket *b;
    char msg[120];

    if (route->rate_per_min == 0) {
        return ML_STEP_CONTINUE;
    }
    if (p->rate_limits == NULL || p->rate_limits->snap != call->snap) {
        /* Steps run when the call comes, on the snapshot in force: the first call after an
         * apply moves the buckets over. */
        struct ml_rate_limits *next = rl_next(p->rate_limits, call->snap, now);

        if (next == NULL) {
            ml_call_unavailable(call, "out of memory for the route's rate limit");
            return ML_STEP_ANSWERED;
        }
        ml_rate_limits_free(p->rate_limits);
        p->rate_limits = next;
    }
    b = &p->rate_limits->buckets[call->route];
    if (now > b->last_ms) {
        b->parts += (now - b->last_ms) * route->rate_per_min;
        b->parts = b->parts > cap ? cap : b->parts;
        b->last_ms = now;
    }
    if (b->parts >= ML_RL_UNIT) {
        b->parts -= ML_RL_UNIT;
        return ML_STEP_CONTINUE;
    }
    ml_stats_route(call->obs.stats, call->route, ML_STATS_ROUTE_RATE_LIMITED);
    snprintf(msg, sizeof(msg), "rate limited: route %s allows %u calls per minute, burst %u",
             route->name, route->rate_per_min, route->rate_burst);
    ml_call_answer(call, ML_GRPC_RESOURCE_EXHAUSTED, 429, msg);
    return ML_STEP_ANSWERED;
}

const struct ml_step ml_step_rate_limit = {.name = "rate_limit", .run = rate_limit_run};
