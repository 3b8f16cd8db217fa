/* core/-private: the records of struct ml_stats, shared by the counting (stats.c) and the
 * renderings (stats_render.c). */
#ifndef ML_CORE_STATS_INT_H
#define ML_CORE_STATS_INT_H

#include "core/stats-t.h"

#include <stdint.h>

struct ml_snapshot;

/* A counter changes only on its own worker's thread, while worker 0 may read it for the admin
 * endpoint (core/stats_sum.c, relaxed atomic loads). So every change is a relaxed atomic store
 * of the new value: the same instructions as a plain store on 64-bit targets, no torn value on
 * 32-bit ones, and no data race in the C sense. Never a read-modify-write: one writer. */
#define ML_STAT_ADD(x, n) __atomic_store_n(&(x), (x) + (n), __ATOMIC_RELAXED)
#define ML_STAT_SET(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

/* Every record starts with its reference count (see rec_ref / rec_unref). */
struct stats_listener {
    int refs;
    uint64_t cx_accepted, cx_active, cx_refused;
    uint64_t cx_handshake_timeout, cx_reclaimed;
    uint64_t rq_stalled; /* calls reset by stream_stall_timeout */
    uint64_t tls_handshake, tls_busy;
    uint64_t tls_failed[ML_STATS_TLS_FAIL_KINDS]; /* by reason, as stats_render.c names them */
    struct ml_stats_calls calls;
};

struct stats_endpoint {
    int refs;
    uint64_t cx_opened, cx_active, cx_failed;
    uint64_t unhealthy;  /* 1 while active health checks have it out */
    uint64_t ejected;    /* 1 while outlier detection has it ejected */
    uint64_t ejections;  /* times ejected */
    uint64_t cx_backoff; /* connects not started: connect backoff */
    struct ml_stats_calls calls;
};

/* The whole proxy, a route, a cluster. */
struct stats_calls {
    int refs;
    struct ml_stats_calls calls;
    uint64_t route_ev[ML_STATS_ROUTE_N_EVENTS];        /* routes only: enum ml_stats_route_event */
    uint64_t dns_resolutions, dns_failures, dns_hosts; /* a cluster with dns = (ml_stats_dns) */
    /* circuit breakers, clusters only */
    uint64_t rq_pending_overflow, cb_max_requests, cb_max_retries;
    /* TLS to the endpoints, clusters with tls = on | mtls only */
    uint64_t up_tls_handshake;
    uint64_t up_tls_failed[ML_STATS_UP_TLS_FAIL_KINDS]; /* as ML_STATS_CL_TLS_FAIL_* */
};

/* An endpoint's place in one table. */
struct stats_ep_slot {
    struct stats_endpoint *e;
    int cluster;  /* index into snap->clusters */
    int endpoint; /* index into its endpoints */
};

struct ml_stats {
    int refs;
    const struct ml_snapshot *snap; /* names, for rendering; borrowed */
    /* Sizes, kept here: counting never reads snap (an old table may outlive its use). */
    uint32_t n_listeners, n_routes, n_clusters, n_eps;
    uint32_t *ep_counts;               /* as snap->clusters: endpoints per cluster */
    uint32_t *first_ep;                /* as snap->clusters: its endpoints in eps */
    struct stats_calls *all;           /* every call */
    struct stats_listener **listeners; /* as snap->listeners */
    struct stats_calls **routes;       /* as snap->routes */
    struct stats_calls **clusters;     /* as snap->clusters */
    struct stats_ep_slot *eps;         /* every cluster's endpoints, cluster by cluster */
    /* [authz] decisions: per section, one slot per rule then one for the default. Plain
     * counts (no shared records): a decision is counted when the call starts, in the table of
     * the snapshot in force, so copying them over at an apply loses nothing. */
    uint32_t n_authz;
    uint32_t *authz_first;    /* as snap->authz, and one more: first slots in authz_ctr */
    uint64_t (*authz_ctr)[2]; /* [slot][allowed?] */
};

#endif
