#ifndef ML_BALANCE_BALANCE_T_H
#define ML_BALANCE_BALANCE_T_H

#include "core/list-t.h"

#include <stdbool.h>
#include <stdint.h>

struct ml_balance; /* every cluster of a snapshot, with their connection pools */
struct ml_cluster; /* one [cluster]: endpoints, LB policy, limits */
struct ml_pool;    /* the upstream connections to one endpoint */
struct ml_host;    /* one (cluster name, address): pool, health, counters */
struct ml_share;   /* one downstream connection's part of one cluster's stream slots */
struct ml_h2_conn;

/* A dns = cluster's resolver, counted (ml_cluster_dns_stats). */
struct ml_cluster_dns_stats {
    uint64_t resolutions; /* lookups answered, failed ones included */
    uint64_t failures;    /* lookups that failed or found no address: the last set stayed */
    uint32_t hosts;       /* hosts in use after the last good answer (draining ones included) */
};

/* A retired balance has no call left (ml_balance_commit). */
typedef void ml_balance_idle_fn(void *user);

/* A call waiting for a stream slot, embedded in the call (proxy/call). */
struct ml_balance_waiter {
    struct ml_list node;  /* in the pool's queue while waiting */
    struct ml_pool *pool; /* the pool it waits on; NULL when not waiting */
    int endpoint;         /* set by ml_cluster_pick: the endpoint picked (index into the
                             cluster's endpoints), -1 when none was */
    /* balance's: the host of the attempt in progress (a reference), from ml_cluster_pick's
     * choice to ml_cluster_attempt_end; NULL when none is. */
    struct ml_host *host;
    uint64_t picked_ms; /* balance's: ml_time_now_ms() at the choice (the outcome's latency) */
    /* Set by the caller before ml_cluster_pick: whose share of the cluster the call counts in
     * (the downstream connection it came on; compared, never dereferenced). NULL: none. */
    const void *tenant;
    struct ml_share *share; /* balance's: the share it holds a slot in or waits in; else NULL */
    bool holding;           /* balance's: it holds a stream slot (ml_balance_waiter_release) */
    /* A connection with a free stream slot: open the stream on it now. */
    void (*on_ready)(struct ml_balance_waiter *w, struct ml_h2_conn *conn);
    /* No slot will come (the endpoint cannot be reached): why is borrowed. */
    void (*on_fail)(struct ml_balance_waiter *w, int reason, const char *why);
};

#endif
